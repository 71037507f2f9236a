"""Message classes as a namespace (runtime/message_types.py): array converters, stamps."""

from __future__ import annotations

import numpy as np
import pytest

from depth_node.runtime.message_types import (
    ros_float64_array,
    ros_uint8_array,
    rosbags_types,
    stamp_header,
    stamp_ns,
)


def test_rclpy_array_field_values():
    # rclpy's setters take array.array for variable-length arrays (CameraInfo.d, Image.data); the
    # converters must work on any numpy input (array.frombytes refuses non-byte buffer formats).
    d = ros_float64_array(np.array([0.1, -0.2, 0.0, 0.0, 0.3]))
    assert d.typecode == "d" and d.tolist() == [0.1, -0.2, 0.0, 0.0, 0.3]
    assert ros_float64_array(np.zeros((2, 2), np.float32)).tolist() == [0.0] * 4
    data = ros_uint8_array(np.arange(6, dtype=np.uint8).reshape(2, 3)[:, ::2])  # non-contiguous
    assert data.typecode == "B" and data.tolist() == [0, 2, 3, 5]


@pytest.mark.parametrize("nanoseconds", [0, 1, 999_999_999, 1_000_000_000, 1_700_000_000_123_456_789])
def test_stamps_round_trip_in_integer_nanoseconds(nanoseconds: int) -> None:
    header = stamp_header(rosbags_types(), nanoseconds, "camera_optical")
    assert stamp_ns(header) == nanoseconds and header.frame_id == "camera_optical"
    assert 0 <= header.stamp.nanosec < 1_000_000_000


def test_rosbags_types_build_messages_with_keyword_fields() -> None:
    types = rosbags_types()
    roi = types.RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    assert roi.do_rectify is False
    assert types.uint8_array(np.arange(4, dtype=np.uint8).reshape(2, 2)).tolist() == [0, 1, 2, 3]
