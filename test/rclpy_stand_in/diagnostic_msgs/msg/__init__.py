"""diagnostic_msgs messages: rosbags' real classes, with rclpy's ``byte`` semantics for the level.

In rclpy, ``DiagnosticStatus.level`` is a ``byte`` field: its constants are ``b'\\x00'`` ... and
the setter refuses an ``int``. rosbags uses ints, so this subclass restores rclpy's behaviour;
code that passes ``level=1`` fails here as it would on a ROS machine.
"""

from __future__ import annotations

from _stand_in_typestore import message_class

DiagnosticArray = message_class("diagnostic_msgs/msg/DiagnosticArray")
KeyValue = message_class("diagnostic_msgs/msg/KeyValue")
_RosbagsDiagnosticStatus = message_class("diagnostic_msgs/msg/DiagnosticStatus")


class DiagnosticStatus(_RosbagsDiagnosticStatus):  # type: ignore[misc, valid-type]
    """diagnostic_msgs/msg/DiagnosticStatus with ``byte`` level constants, as rclpy generates them."""

    OK = b"\x00"
    WARN = b"\x01"
    ERROR = b"\x02"
    STALE = b"\x03"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # rosidl_generator_py: "The 'level' field must be of type 'bytes' or 'ByteString'" (length 1).
        if not isinstance(self.level, bytes) or len(self.level) != 1:
            raise AssertionError(f"The 'level' field must be of type 'bytes' of length 1, got {self.level!r}")
        for value in self.values:
            if not isinstance(value.key, str) or not isinstance(value.value, str):
                raise AssertionError("KeyValue key and value must be str")


__all__ = ["DiagnosticArray", "DiagnosticStatus", "KeyValue"]
