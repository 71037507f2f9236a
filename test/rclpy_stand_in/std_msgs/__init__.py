"""Stand-in for the ROS 2 std_msgs package (tests only)."""
