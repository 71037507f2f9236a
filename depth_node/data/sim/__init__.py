"""Synthetic driving world with exact ground truth (numpy + OpenCV)."""
