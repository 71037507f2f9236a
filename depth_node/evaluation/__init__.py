"""Scoring depth against ground truth: bag input and topic selection, ground truth (depth topics,
LiDAR + tf), scoring shared by the replay and the eval node, the replay session, the HTML report."""
