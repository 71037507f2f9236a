"""sensor_msgs messages: rosbags' real classes."""

from _stand_in_typestore import message_class

CameraInfo = message_class("sensor_msgs/msg/CameraInfo")
CompressedImage = message_class("sensor_msgs/msg/CompressedImage")
Image = message_class("sensor_msgs/msg/Image")
PointCloud2 = message_class("sensor_msgs/msg/PointCloud2")
PointField = message_class("sensor_msgs/msg/PointField")
RegionOfInterest = message_class("sensor_msgs/msg/RegionOfInterest")

__all__ = ["CameraInfo", "CompressedImage", "Image", "PointCloud2", "PointField", "RegionOfInterest"]
