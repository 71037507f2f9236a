"""The rosbags typestore behind the stand-in message packages, and the stand-in's wire format.

Publishing goes through CDR serialization (rosbags' serializer), as it does in rclpy: a message
with a wrongly typed field (a float in an ``int`` field, a list where a typed array belongs) fails
to publish here as it would on a ROS machine, and every subscriber receives its own copy.
"""

from __future__ import annotations

from typing import Any

from rosbags.typesys import Stores, get_typestore

# Humble's message definitions: the fields of the sensor/std/diagnostic messages are the same in Jazzy.
TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)


def message_class(name: str) -> type:
    """The rosbags class of e.g. 'sensor_msgs/msg/Image'."""
    return TYPESTORE.types[name]


def _byte_levels_to_int(msg: Any) -> Any:
    # diagnostic_msgs' byte ``level`` is bytes in rclpy (and in the stand-in), an int on rosbags' wire.
    status_class = message_class("diagnostic_msgs/msg/DiagnosticStatus")
    statuses = [
        status_class(
            level=status.level[0] if isinstance(status.level, bytes) else status.level,
            name=status.name,
            message=status.message,
            hardware_id=status.hardware_id,
            values=list(status.values),
        )
        for status in msg.status
    ]
    return message_class("diagnostic_msgs/msg/DiagnosticArray")(header=msg.header, status=statuses)


def to_wire(msg: Any) -> tuple[str, bytes]:
    """Serialize a message of one of the stand-in's message classes (TypeError for anything else)."""
    typename = getattr(type(msg), "__msgtype__", None)
    if typename is None:
        raise TypeError(f"Invalid type passed to publish: {type(msg).__name__} is not a message class")
    if typename == "diagnostic_msgs/msg/DiagnosticArray":
        msg = _byte_levels_to_int(msg)
    return typename, bytes(TYPESTORE.serialize_cdr(msg, typename))


def from_wire(typename: str, data: bytes, msg_class: type) -> Any:
    """Deserialize into the subscription's message class."""
    msg = TYPESTORE.deserialize_cdr(data, typename)
    if typename == "diagnostic_msgs/msg/DiagnosticArray":
        from diagnostic_msgs.msg import DiagnosticStatus

        msg.status = [
            DiagnosticStatus(
                level=bytes([s.level]),
                name=s.name,
                message=s.message,
                hardware_id=s.hardware_id,
                values=s.values,
            )
            for s in msg.status
        ]
    return msg
