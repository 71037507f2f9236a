"""Output messages (runtime/messages.py): depth image, its CameraInfo and the cloud, with a real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx_models import linear_estimator
from rosbags.typesys import Stores, get_typestore

from depth_node.geometry import depth_to_points
from depth_node.runtime.conversions import image_msg_to_depth, numpy_to_image, to_rgb8
from depth_node.runtime.message_types import rosbags_types
from depth_node.runtime.messages import build_outputs, camera_info_from_K, scale_camera_info
from depth_node.runtime.pipeline import DepthPipeline, DepthResult, PipelineConfig
from depth_node.runtime.pointcloud import pointcloud2_to_array

TYPES = rosbags_types()
TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
HEADER = TYPES.Header(
    stamp=TYPESTORE.types["builtin_interfaces/msg/Time"](sec=7, nanosec=8), frame_id="camera_optical"
)
K_CAM = np.array([[40.0, 0.0, 31.5], [0.0, 40.0, 11.5], [0.0, 0.0, 1.0]])
CAM_W, CAM_H = 64, 24  # camera frames; the model is 16x12


def _camera_info() -> object:
    P = np.hstack([K_CAM, np.zeros((3, 1))])
    P[0, 0] = 38.0  # rectified P differs from K: the cloud must use P
    return TYPES.CameraInfo(
        header=HEADER,
        height=CAM_H,
        width=CAM_W,
        distortion_model="plumb_bob",
        d=np.array([0.1, -0.05, 0.0, 0.0, 0.0]),
        k=K_CAM.reshape(-1),
        r=np.eye(3).reshape(-1),
        p=P.reshape(-1),
        binning_x=2,
        binning_y=2,
        roi=TYPES.RegionOfInterest(x_offset=4, y_offset=2, height=10, width=10, do_rectify=True),
    )


def _two_tone() -> np.ndarray:
    """Left half black (model depth 1.0), right half white (model depth 11.0 > max_depth 8)."""
    rgb = np.zeros((CAM_H, CAM_W, 3), dtype=np.uint8)
    rgb[:, CAM_W // 2 :] = 255
    return rgb


@pytest.mark.parametrize("output_resolution", ["camera", "model"])
def test_build_outputs_end_to_end(tmp_path: Path, output_resolution: str) -> None:
    pipeline = DepthPipeline(linear_estimator(tmp_path), PipelineConfig(output_resolution=output_resolution))
    rgb_msg = numpy_to_image(_two_tone()[..., ::-1], "bgr8", HEADER, TYPES, step=CAM_W * 3 + 4)
    rgb = to_rgb8(rgb_msg)
    result = pipeline.process(rgb, K_CAM)
    outputs = build_outputs(
        result, rgb_msg.header, _camera_info(), TYPES, cloud=True, stride=1, organized=True, rgb=rgb
    )
    h, w = result.depth.shape
    for msg in (outputs.image, outputs.camera_info, outputs.points):
        assert msg.header is rgb_msg.header  # same stamp and frame_id as the input
    np.testing.assert_array_equal(image_msg_to_depth(outputs.image), result.depth)
    info = outputs.camera_info
    assert (info.width, info.height, info.binning_x, info.roi.width) == (w, h, 0, 0)
    np.testing.assert_allclose(info.k.reshape(3, 3), result.K)
    np.testing.assert_allclose(info.d, [0.1, -0.05, 0, 0, 0])
    fx_p = 38.0 * w / CAM_W
    cloud = pointcloud2_to_array(outputs.points)
    assert cloud.shape == (h, w, 4)
    v, u = 3, 2  # a valid (left-half) pixel
    z = result.depth[v, u]
    np.testing.assert_allclose(
        cloud[v, u, :3], [(u - info.p[2]) * z / fx_p, (v - info.p[6]) * z / info.p[5], z], rtol=1e-5
    )
    assert np.isnan(cloud[v, -1, :3]).all()
    for msg, name in (
        (outputs.image, "Image"),
        (outputs.camera_info, "CameraInfo"),
        (outputs.points, "PointCloud2"),
    ):
        TYPESTORE.serialize_cdr(msg, f"sensor_msgs/msg/{name}")


def test_build_outputs_16uc1_without_camera_info_or_cloud(tmp_path: Path) -> None:
    camera = PipelineConfig(output_resolution="camera")
    result = DepthPipeline(linear_estimator(tmp_path), camera).process(_two_tone(), K_CAM)
    outputs = build_outputs(result, HEADER, None, TYPES, encoding="16UC1")
    assert outputs.points is None and outputs.image.encoding == "16UC1"
    np.testing.assert_allclose(outputs.camera_info.k.reshape(3, 3), K_CAM)
    np.testing.assert_allclose(outputs.camera_info.p.reshape(3, 4)[:, :3], K_CAM)


def test_scale_camera_info_with_crop() -> None:
    info = scale_camera_info(_camera_info(), 16, 8, TYPES, crop=(8, 4, 32, 16))
    K = info.k.reshape(3, 3)
    np.testing.assert_allclose(K[0], [40.0 * 0.5, 0.0, (31.5 - 8) * 0.5])
    np.testing.assert_allclose(K[1], [0.0, 40.0 * 0.5, (11.5 - 4) * 0.5])
    assert info.header is HEADER and (info.width, info.height) == (16, 8)


@pytest.mark.parametrize("out_of_range", ["rep118", "rep117"])
def test_one_validity_rule_for_the_depth_image_and_the_cloud(out_of_range: str) -> None:
    """A pixel beyond max_range or nearer than min_range is invalid in the image (NaN, or REP 117's
    +-Inf) exactly when its point is missing from the cloud; 16UC1 says 0 either way."""
    from depth_node.runtime.pipeline import DepthResult

    rng = np.random.default_rng(3)
    depth = rng.uniform(0.2, 120.0, (CAM_H, CAM_W)).astype(np.float32)
    depth[0, :3] = [np.nan, -1.0, 0.0]  # no estimate: NaN in both modes
    result = DepthResult(
        depth=depth.copy(), K=K_CAM, scale=1.0, timings={}, input_size=(CAM_W, CAM_H), crop=None
    )
    out = build_outputs(
        result,
        HEADER,
        _camera_info(),
        TYPES,
        cloud=True,
        min_range=0.5,
        max_range=80.0,
        out_of_range=out_of_range,
    )
    published = np.frombuffer(out.image.data, np.float32).reshape(CAM_H, CAM_W)
    points = pointcloud2_to_array(out.points)
    in_cloud = np.isfinite(points[..., :3]).all(axis=-1)
    assert (np.isfinite(published) == in_cloud).all()
    # Euclidean distance of each point, with the P the cloud used (fx = 38, fy = 40)
    u, v = np.meshgrid(np.arange(CAM_W), np.arange(CAM_H))
    distance = depth * np.sqrt(((u - 31.5) / 38.0) ** 2 + ((v - 11.5) / 40.0) ** 2 + 1.0)
    with np.errstate(invalid="ignore"):
        too_far, too_near = (distance > 80.0) & (depth > 0), (distance < 0.5) & (depth > 0)
    assert too_far.sum() > 10 and too_near.sum() > 0 and in_cloud.sum() > 10
    expected_far, expected_near = (np.inf, -np.inf) if out_of_range == "rep117" else (np.nan, np.nan)
    np.testing.assert_array_equal(published[too_far], expected_far)
    np.testing.assert_array_equal(published[too_near], expected_near)
    assert np.isnan(published[0, :3]).all()
    mm = build_outputs(
        DepthResult(depth=depth.copy(), K=K_CAM, scale=1.0, timings={}, input_size=(CAM_W, CAM_H), crop=None),
        HEADER,
        _camera_info(),
        TYPES,
        min_range=0.5,
        max_range=80.0,
        out_of_range=out_of_range,
        encoding="16UC1",
    )
    assert ((np.frombuffer(mm.image.data, np.uint16).reshape(CAM_H, CAM_W) == 0) == ~in_cloud).all()


@pytest.mark.parametrize("organized", [True, False])
def test_auto_stride_cloud_follows_the_scaled_k(organized: bool) -> None:
    """stride 0: the stride follows the model (1242x375 image, 320x96 model: 4), and the points are
    the full-resolution back-projection with K scaled to the depth image, at pixels (4 u', 4 v')."""
    width, height = 1242, 375
    rng = np.random.default_rng(5)
    depth = rng.uniform(1.0, 100.0, (height, width)).astype(np.float32)
    K_full = np.array([[1443.0, 0.0, 1219.2], [0.0, 1443.0, 345.8], [0.0, 0.0, 1.0]])  # a 2484x750 camera
    K = np.diag([0.5, 0.5, 1.0]) @ K_full  # ... and its image downscaled 2x
    result = DepthResult(depth=depth.copy(), K=K, scale=1.0, input_size=(width, height), model_size=(320, 96))
    info = camera_info_from_K(K_full, 2 * width, 2 * height, HEADER, TYPES)
    out = build_outputs(
        result, HEADER, info, TYPES, cloud=True, stride=0, max_range=80.0, organized=organized
    )
    np.testing.assert_allclose(out.camera_info.k.reshape(3, 3), K)
    cloud = pointcloud2_to_array(out.points)
    expected = depth_to_points(result.depth, K[0, 0], K[1, 1], K[0, 2], K[1, 2])[::4, ::4]  # range applied
    if organized:
        assert cloud.shape == (94, 311, 3)
    else:
        expected = expected[np.isfinite(expected[..., 2])][None]
        assert 0 < cloud.shape[1] < 94 * 311
    np.testing.assert_allclose(cloud, expected, rtol=2e-6, atol=1e-5, equal_nan=True)


def test_the_cloud_takes_its_colour_from_the_model_image_at_model_resolution(tmp_path: Path) -> None:
    """output_resolution model: result.colour is the network's input image, the same as resizing the
    camera image to the depth image again (what build_outputs does with the camera image)."""
    pipeline = DepthPipeline(linear_estimator(tmp_path), PipelineConfig(output_resolution="model"))
    rgb = np.random.default_rng(2).integers(0, 256, (CAM_H, CAM_W, 3), dtype=np.uint8)
    result = pipeline.process(rgb, K_CAM)
    clouds = [
        pointcloud2_to_array(
            build_outputs(result, HEADER, None, TYPES, cloud=True, stride=1, rgb=colour).points
        )
        for colour in (result.colour, rgb)
    ]
    np.testing.assert_array_equal(clouds[0].view(np.uint32), clouds[1].view(np.uint32))
