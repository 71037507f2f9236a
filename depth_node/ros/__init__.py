"""The rclpy nodes (depth, eval) and their ROS-free support (mailbox, worker, statistics, diagnostics).

Glue only: every formula they run lives in :mod:`depth_node.runtime` or :mod:`depth_node.evaluation`."""
