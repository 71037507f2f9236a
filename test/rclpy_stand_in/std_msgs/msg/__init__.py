"""std_msgs messages: rosbags' real classes."""

from _stand_in_typestore import message_class

Header = message_class("std_msgs/msg/Header")
String = message_class("std_msgs/msg/String")

__all__ = ["Header", "String"]
