"""builtin_interfaces messages: rosbags' real classes."""

from _stand_in_typestore import message_class

Time = message_class("builtin_interfaces/msg/Time")
Duration = message_class("builtin_interfaces/msg/Duration")

__all__ = ["Duration", "Time"]
