"""Data on disk: the KITTI raw layout, the KITTI -> rosbag2 converter, the synthetic driving world."""
