"""Message classes as a namespace (from rclpy or from rosbags), and the helpers every builder needs.

The node builds messages with the ROS 2 Python classes, the replay and the bag tools with rosbags'
classes; everything else takes a :class:`MessageTypes` and works with either. Messages are always
constructed with every field as a keyword argument, which both libraries' classes accept.
"""

from __future__ import annotations

import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


def stamp_ns(header: Any) -> int:
    """A message header's stamp in integer nanoseconds (no float rounding: stamps are compared)."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def stamp_header(types: MessageTypes, nanoseconds: int, frame_id: str) -> Any:
    """std_msgs/Header for integer nanoseconds (the inverse of :func:`stamp_ns`)."""
    sec, nanosec = divmod(int(nanoseconds), 1_000_000_000)
    return types.Header(stamp=types.Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def numpy_uint8_array(data: np.ndarray) -> np.ndarray:
    """uint8[] field value for rosbags messages: a flat, contiguous numpy uint8 array (no copy)."""
    return np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)


def numpy_float64_array(data: Any) -> np.ndarray:
    """float64[] field value for rosbags messages."""
    return np.asarray(data, dtype=np.float64).reshape(-1)


def ros_uint8_array(data: np.ndarray) -> array.array:
    """uint8[] field value for rclpy messages: array('B') passes rclpy's setter without a per-byte check."""
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(data, dtype=np.uint8).reshape(-1))  # one memcpy
    return out


def ros_float64_array(data: Any) -> array.array:
    """float64[] (variable length, e.g. CameraInfo.d) value for rclpy messages."""
    out = array.array("d")
    # frombytes takes only byte-format buffers: view the float64 data as bytes (still one memcpy).
    out.frombytes(memoryview(np.ascontiguousarray(data, dtype=np.float64).reshape(-1)).cast("B"))
    return out


@dataclass(frozen=True)
class MessageTypes:
    """The message classes the runtime builds, from rclpy or from rosbags.

    ``uint8_array`` / ``float64_array`` turn numpy arrays into the value each library wants for
    variable-length uint8[] / float64[] fields (numpy for rosbags, ``array.array`` for rclpy).
    Fixed-size float64 arrays (K, R, P) are passed as numpy float64 arrays, which both accept.
    """

    Image: Any
    CompressedImage: Any
    CameraInfo: Any
    PointCloud2: Any
    PointField: Any
    Header: Any
    RegionOfInterest: Any
    Time: Any
    uint8_array: Callable[[np.ndarray], Any] = numpy_uint8_array
    float64_array: Callable[[Any], Any] = numpy_float64_array


def rosbags_types(store: str | None = None) -> MessageTypes:
    """MessageTypes from rosbags' typestore (default: ROS 2 Humble definitions)."""
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores(store) if store else Stores.ROS2_HUMBLE)
    t = typestore.types
    return MessageTypes(
        Image=t["sensor_msgs/msg/Image"],
        CompressedImage=t["sensor_msgs/msg/CompressedImage"],
        CameraInfo=t["sensor_msgs/msg/CameraInfo"],
        PointCloud2=t["sensor_msgs/msg/PointCloud2"],
        PointField=t["sensor_msgs/msg/PointField"],
        Header=t["std_msgs/msg/Header"],
        RegionOfInterest=t["sensor_msgs/msg/RegionOfInterest"],
        Time=t["builtin_interfaces/msg/Time"],
    )


def _is_rclpy_class(message_class: Any) -> bool:
    # rosidl-generated Python classes expose their field table; rosbags' classes are dataclasses.
    return hasattr(message_class, "get_fields_and_field_types") and not hasattr(
        message_class, "__dataclass_fields__"
    )


def ros_types() -> MessageTypes:
    """MessageTypes from the ROS 2 Python message packages (imported here, only when called).

    The array converters follow the classes found: ``array.array`` for rosidl-generated classes,
    numpy for rosbags-backed stand-ins (as the ROS-free test environment provides).
    """
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField, RegionOfInterest
    from std_msgs.msg import Header

    rclpy_style = _is_rclpy_class(Image)
    return MessageTypes(
        Image=Image,
        CompressedImage=CompressedImage,
        CameraInfo=CameraInfo,
        PointCloud2=PointCloud2,
        PointField=PointField,
        Header=Header,
        RegionOfInterest=RegionOfInterest,
        Time=Time,
        uint8_array=ros_uint8_array if rclpy_style else numpy_uint8_array,
        float64_array=ros_float64_array if rclpy_style else numpy_float64_array,
    )
