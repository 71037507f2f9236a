"""Depth -> PointCloud2 against an independent per-pixel loop (depth_image_proc's formula)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_node.geometry import depth_to_points
from depth_node.runtime.errors import BadInputError
from depth_node.runtime.message_types import rosbags_types
from depth_node.runtime.pointcloud import (
    auto_stride,
    cloud_intrinsics,
    depth_to_cloud,
    depth_to_pointcloud2,
    make_pointcloud2,
    pack_rgb,
    pointcloud2_to_array,
    read_fields,
)

TYPES = rosbags_types()
TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
HEADER = TYPES.Header(stamp=TYPESTORE.types["builtin_interfaces/msg/Time"](sec=5, nanosec=6), frame_id="cam")
FX, FY, CX, CY = 7.0, 6.0, 3.4, 2.6


def _scene(height: int = 7, width: int = 9) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    depth = rng.uniform(0.5, 20.0, size=(height, width)).astype(np.float32)
    depth[1, 2] = np.nan
    depth[4, 5] = np.nan
    rgb = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return depth, rgb


def _loop_points(depth, stride=1, min_range=0.0, max_range=math.inf, rgb=None):
    """Reference: one pixel at a time, plain Python floats."""
    rows = []
    for v in range(0, depth.shape[0], stride):
        row = []
        for u in range(0, depth.shape[1], stride):
            z = float(depth[v, u])
            x, y = (u - CX) * z / FX, (v - CY) * z / FY
            ok = not math.isnan(z) and min_range <= math.sqrt(x * x + y * y + z * z) <= max_range
            point = [x, y, z] if ok else [math.nan] * 3
            if rgb is not None:
                r, g, b = (int(c) for c in rgb[v, u])
                point.append((r << 16) | (g << 8) | b)
            row.append((ok, point))
        rows.append(row)
    return rows


def _compare(cloud_xyz: np.ndarray, expected: list[list[float]]) -> None:
    np.testing.assert_allclose(cloud_xyz, np.array(expected, dtype=np.float64), rtol=1e-5, equal_nan=True)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize(("min_range", "max_range"), [(0.0, math.inf), (3.0, 12.0)])
def test_organized_matches_loop(stride: int, min_range: float, max_range: float) -> None:
    depth, rgb = _scene()
    cloud = depth_to_cloud(depth, FX, FY, CX, CY, stride, min_range, max_range, organized=True, rgb=rgb)
    reference = _loop_points(depth, stride, min_range, max_range, rgb)
    assert cloud.shape == (len(reference), len(reference[0]), 4) and cloud.dtype == np.float32
    _compare(cloud[..., :3], [[p[:3] for _, p in row] for row in reference])
    packed = np.ascontiguousarray(cloud[..., 3]).view(np.uint32)
    np.testing.assert_array_equal(packed, [[p[3] for _, p in row] for row in reference])


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("min_range", "max_range"), [(0.0, math.inf), (3.0, 12.0)])
def test_unorganized_matches_loop(stride: int, min_range: float, max_range: float) -> None:
    depth, rgb = _scene()
    reference = [p for row in _loop_points(depth, stride, min_range, max_range, rgb) for ok, p in row if ok]
    xyz = depth_to_cloud(depth, FX, FY, CX, CY, stride, min_range, max_range, organized=False)
    assert xyz.shape == (len(reference), 3)
    _compare(xyz, [p[:3] for p in reference])
    coloured = depth_to_cloud(depth, FX, FY, CX, CY, stride, min_range, max_range, organized=False, rgb=rgb)
    np.testing.assert_array_equal(
        np.ascontiguousarray(coloured[:, 3]).view(np.uint32), [p[3] for p in reference]
    )


def test_rgb_packing_is_pcl_layout() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [18, 52, 86]]], dtype=np.uint8)
    packed = pack_rgb(rgb)
    assert packed.dtype == np.float32
    np.testing.assert_array_equal(packed.view(np.uint32), [[0xFF0000, 0x00FF00, 0x0000FF, 0x123456]])
    # rviz reads the 4 bytes little-endian as B, G, R, A
    np.testing.assert_array_equal(packed.view(np.uint8).reshape(4, 4)[3], [86, 52, 18, 0])


@pytest.mark.parametrize("organized", [True, False])
@pytest.mark.parametrize("colour", [False, True])
def test_pointcloud2_message(organized: bool, colour: bool) -> None:
    depth, rgb = _scene()
    msg = depth_to_pointcloud2(
        depth, FX, FY, CX, CY, HEADER, TYPES, stride=2, max_range=15.0, organized=organized,
        rgb=rgb if colour else None,
    )  # fmt: skip
    assert [f.name for f in msg.fields] == (["x", "y", "z", "rgb"] if colour else ["x", "y", "z"])
    assert [f.offset for f in msg.fields] == [0, 4, 8, 12][: len(msg.fields)]
    assert all(f.datatype == TYPES.PointField.FLOAT32 and f.count == 1 for f in msg.fields)
    assert msg.point_step == (16 if colour else 12) and msg.row_step == msg.point_step * msg.width
    assert msg.is_bigendian is False and msg.header is HEADER
    assert len(msg.data) == msg.row_step * msg.height
    if organized:
        assert (msg.height, msg.width) == (4, 5) and msg.is_dense is False
    else:
        assert msg.height == 1 and msg.is_dense is True
    expected = depth_to_cloud(depth, FX, FY, CX, CY, 2, 0.0, 15.0, organized, rgb if colour else None)
    back = pointcloud2_to_array(msg)
    np.testing.assert_array_equal(back.reshape(-1).view(np.uint32), expected.reshape(-1).view(np.uint32))
    # the message serializes with rosbags (field types are what the wire format wants)
    TYPESTORE.serialize_cdr(msg, "sensor_msgs/msg/PointCloud2")


def test_cloud_intrinsics_prefers_p_then_k() -> None:
    K = [500.0, 0, 320.0, 0, 510.0, 240.0, 0, 0, 1]
    P = [450.0, 0, 300.0, -30.0, 0, 460.0, 200.0, 0, 0, 0, 1, 0]
    assert cloud_intrinsics(SimpleNamespace(k=K, p=P)) == (450.0, 460.0, 300.0, 200.0)
    assert cloud_intrinsics(SimpleNamespace(k=K, p=[0.0] * 12)) == (500.0, 510.0, 320.0, 240.0)


def test_bad_cloud_inputs() -> None:
    depth, rgb = _scene()
    with pytest.raises(ValueError, match="rgb image"):
        depth_to_cloud(depth, FX, FY, CX, CY, rgb=rgb[:-1])
    with pytest.raises(ValueError, match="3 \\(xyz\\)"):
        make_pointcloud2(np.zeros((5, 2), np.float32), HEADER, TYPES)


def test_read_fields_names_a_field_past_point_step() -> None:
    fields = [TYPES.PointField(name=n, offset=4 * i, datatype=7, count=1) for i, n in enumerate("xyz")]
    msg = TYPES.PointCloud2(
        header=None,
        height=1,
        width=2,
        fields=fields,
        is_bigendian=False,
        point_step=8,  # z at offset 8 does not fit an 8-byte point
        row_step=16,
        data=np.zeros(16, np.uint8),
        is_dense=True,
    )
    with pytest.raises(BadInputError, match="z run past point_step 8"):
        read_fields(msg, ("x", "y", "z"))


@pytest.mark.parametrize(("min_range", "max_range"), [(0.0, math.inf), (1.0, math.inf), (0.0, 1e6)])
def test_pixels_without_depth_are_no_points(min_range: float, max_range: float) -> None:
    # Found by test_fuzz.py: depth -2.5 became a point behind the camera, 0 a point at the camera
    # centre, inf a point at infinity (and kept by a min_range-only filter). REP 118: none is a depth.
    depth = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0, -2.5, 4.0]], dtype=np.float32)
    organized = depth_to_cloud(depth, FX, FY, CX, CY, min_range=min_range, max_range=max_range)
    assert np.isnan(organized[0, :6]).all()
    np.testing.assert_allclose(organized[0, 6], [(6 - CX) * 4.0 / FX, (0 - CY) * 4.0 / FY, 4.0], rtol=1e-6)
    unorganized = depth_to_cloud(
        depth, FX, FY, CX, CY, min_range=min_range, max_range=max_range, organized=False
    )
    np.testing.assert_array_equal(unorganized, organized[0, 6:])
    assert make_pointcloud2(unorganized, HEADER, TYPES).is_dense is True


def test_empty_depth_and_unusable_intrinsics_are_named_errors() -> None:
    # Found by test_fuzz.py: an empty depth image with rgb raised cv2.error from pack_rgb.
    with pytest.raises(ValueError, match=r"not empty, got shape \(0, 4\)"):
        depth_to_cloud(np.zeros((0, 4), np.float32), FX, FY, CX, CY, rgb=np.zeros((0, 4, 3), np.uint8))
    for fx, fy, cx in ((0.0, FY, CX), (FX, -1.0, CX), (math.nan, FY, CX), (FX, FY, math.inf)):
        with pytest.raises(BadInputError, match="cloud intrinsics must be finite with fx, fy > 0"):
            depth_to_cloud(np.ones((2, 2), np.float32), fx, fy, cx, CY)


def test_read_fields_wants_exactly_row_step_times_height_bytes_in_any_buffer() -> None:
    # Found by test_fuzz.py: data longer than row_step * height was read from its first bytes, and
    # a bytes buffer (hand-built message) raised a bare ValueError.
    msg = depth_to_pointcloud2(np.full((2, 3), 2.0, np.float32), FX, FY, CX, CY, HEADER, TYPES)
    expected = pointcloud2_to_array(msg)
    as_bytes = SimpleNamespace(**{**msg.__dict__, "data": msg.data.tobytes()})
    np.testing.assert_array_equal(pointcloud2_to_array(as_bytes), expected)
    longer = SimpleNamespace(**{**msg.__dict__, "data": np.concatenate([msg.data, np.zeros(1, np.uint8)])})
    with pytest.raises(
        BadInputError, match=r"PointCloud2 data has 73 bytes, expected row_step\*height = 36\*2"
    ):
        read_fields(longer, ("x", "y", "z"))


@pytest.mark.parametrize(
    ("camera", "model", "stride"),
    [
        ((640, 192), (320, 96), 2),
        ((1242, 375), (320, 96), 4),  # 311x94 (0.95x the model's pixels) is nearer than 414x125 (1.68x)
        ((1920, 1080), (320, 96), 8),
        ((480, 270), (320, 96), 2),  # output_resolution auto's depth image of a 1080p camera
        ((414, 125), (320, 96), 1),  # ... and of a 1242x375 one
        ((640, 192), (640, 192), 1),
        ((960, 540), (640, 192), 2),  # output_resolution auto's depth image of a 1080p camera
        ((1242, 375), (640, 192), 2),  # 621x188 (0.95x), not every pixel (3.8x)
        ((1920, 1080), (640, 192), 4),
        ((320, 96), (640, 192), 1),  # a camera smaller than the model: every pixel
        ((5, 3), (1, 1), 5),  # a one-pixel model: a one-point cloud, and no endless search
    ],
)
def test_auto_stride_gives_the_point_count_nearest_the_models(camera, model, stride) -> None:
    assert auto_stride(camera, model) == stride

    def points(s: int) -> int:
        return math.ceil(camera[0] / s) * math.ceil(camera[1] / s)

    def off(s: int) -> float:  # how far from the model's pixel count, as a ratio
        return max(points(s), model[0] * model[1]) / min(points(s), model[0] * model[1])

    assert all(off(stride) <= off(other) for other in range(1, 33) if other != stride)


@pytest.mark.parametrize("organized", [True, False])
def test_auto_stride_cloud_follows_the_pinhole_model_at_full_resolution(organized: bool) -> None:
    """Points of a strided cloud are those of the full-resolution back-projection at pixels (s u', s v')."""
    width, height = 1242, 375
    rng = np.random.default_rng(11)
    depth = rng.uniform(1.0, 60.0, (height, width)).astype(np.float32)
    depth[rng.random((height, width)) < 0.1] = np.nan
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    fx, fy, cx, cy = 721.5, 721.5, 609.6, 172.9
    stride = auto_stride((width, height), (320, 96))
    cloud = depth_to_cloud(depth, fx, fy, cx, cy, stride, organized=organized, rgb=rgb)
    full = depth_to_points(depth, fx, fy, cx, cy)[::stride, ::stride]
    colour = pack_rgb(rgb[::stride, ::stride])
    if not organized:
        kept = np.isfinite(depth[::stride, ::stride])
        full, colour = full[kept], colour[kept]
    assert cloud.shape[:-1] == full.shape[:-1] == ((94, 311) if organized else (kept.sum(),))
    np.testing.assert_allclose(cloud[..., :3], full, rtol=2e-6, atol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(cloud[..., 3].view(np.uint32), colour.view(np.uint32))


def test_depth_to_points_writes_into_the_first_channels_of_a_cloud() -> None:
    depth, _ = _scene()
    cloud = np.full(depth.shape + (4,), 7.0, np.float32)
    assert depth_to_points(depth, FX, FY, CX, CY, out=cloud) is cloud
    np.testing.assert_array_equal(cloud[..., :3], depth_to_points(depth, FX, FY, CX, CY))
    assert (cloud[..., 3] == 7.0).all()
