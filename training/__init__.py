"""Self-supervised depth training (PyTorch)."""
