"""depth_node: monocular depth runtime (ROS-free core, thin rclpy node, rosbag replay)."""
