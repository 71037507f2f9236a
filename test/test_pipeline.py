"""DepthPipeline and build_outputs with a real (tiny, linear) ONNX model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx_models import linear_estimator
from rosbags.typesys import Stores, get_typestore

from depth_node.geometry import box_shrink, resize_area, scale_intrinsics
from depth_node.runtime.errors import BadInputError, ImageDataError
from depth_node.runtime.message_types import rosbags_types
from depth_node.runtime.pipeline import DepthPipeline, PipelineConfig

TYPES = rosbags_types()
TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
HEADER = TYPES.Header(
    stamp=TYPESTORE.types["builtin_interfaces/msg/Time"](sec=7, nanosec=8), frame_id="camera_optical"
)
K_CAM = np.array([[40.0, 0.0, 31.5], [0.0, 40.0, 11.5], [0.0, 0.0, 1.0]])
CAM_W, CAM_H = 64, 24  # camera frames; the model is 16x12


def _two_tone() -> np.ndarray:
    """Left half black (model depth 1.0), right half white (model depth 11.0 > max_depth 8)."""
    rgb = np.zeros((CAM_H, CAM_W, 3), dtype=np.uint8)
    rgb[:, CAM_W // 2 :] = 255
    return rgb


def test_uniform_image_gives_the_graphs_depth(tmp_path: Path) -> None:
    pipeline = DepthPipeline(linear_estimator(tmp_path), PipelineConfig(output_resolution="camera"))
    rgb = np.full((CAM_H, CAM_W, 3), 51, dtype=np.uint8)  # 51/255 = 0.2 -> depth 1 + 10 * 0.2 = 3
    result = pipeline.process(rgb, K_CAM)
    assert result.depth.shape == (CAM_H, CAM_W) and result.depth.dtype == np.float32
    np.testing.assert_allclose(result.depth, 3.0, rtol=1e-5)
    np.testing.assert_array_equal(result.K, K_CAM)
    assert result.scale == 1.0 and result.input_size == (CAM_W, CAM_H)
    assert set(result.timings) == {"preprocess", "inference", "postprocess", "scale"}
    assert all(t >= 0 for t in result.timings.values())


def test_out_of_range_depth_is_nan(tmp_path: Path) -> None:
    camera = PipelineConfig(output_resolution="camera")
    result = DepthPipeline(linear_estimator(tmp_path), camera).process(_two_tone(), K_CAM)
    left, right = result.depth[:, : CAM_W // 2 - 2], result.depth[:, CAM_W // 2 + 2 :]
    np.testing.assert_allclose(left, 1.0, rtol=1e-5)
    assert np.isnan(right).all()


@pytest.mark.parametrize(
    ("config", "metadata", "scale"),
    [
        (PipelineConfig(scale_mode="model"), {"metric_scale": "2.5"}, 2.5),
        (PipelineConfig(), {"metric_scale": "2.5", "scale_is_metric": "true"}, 2.5),
        (PipelineConfig(scale_mode="fixed", fixed_scale=0.5), {"metric_scale": "2.5"}, 0.5),
    ],
)
def test_fixed_and_model_scales(tmp_path: Path, config: PipelineConfig, metadata: dict, scale: float) -> None:
    result = DepthPipeline(linear_estimator(tmp_path, **metadata), config).process(_two_tone(), K_CAM)
    assert result.scale == scale
    # the valid range scales with the depth: [0.5, 8] model units -> [0.5, 8] * scale metres
    np.testing.assert_allclose(result.depth[:, :4], 1.0 * scale, rtol=1e-5)
    assert np.isnan(result.depth[:, -4:]).all()


def test_auto_scale_mode(tmp_path: Path) -> None:
    metric = linear_estimator(tmp_path, scale_is_metric="true")
    assert DepthPipeline(metric, PipelineConfig(camera_height=1.65)).scale_mode == "model"
    relative = linear_estimator(tmp_path, scale_is_metric="false", metric_scale="3.0")
    pipeline = DepthPipeline(relative, PipelineConfig(camera_height=1.65))
    assert pipeline.scale_mode == "camera_height" and pipeline.ground is not None
    # a uniform image has no ground plane: the scale stays the model's until a fit succeeds
    result = pipeline.process(np.full((CAM_H, CAM_W, 3), 51, np.uint8), K_CAM)
    assert result.scale == 3.0
    assert DepthPipeline(relative, PipelineConfig()).scale_mode == "model"


def test_model_resolution_and_crop(tmp_path: Path) -> None:
    estimator = linear_estimator(tmp_path)
    rgb = np.full((CAM_H, CAM_W, 3), 51, dtype=np.uint8)
    model_res = DepthPipeline(estimator, PipelineConfig(output_resolution="model")).process(rgb, K_CAM)
    assert model_res.depth.shape == (12, 16)
    np.testing.assert_allclose(model_res.K, scale_intrinsics(K_CAM, (CAM_W, CAM_H), (16, 12)))

    cropped = DepthPipeline(estimator, PipelineConfig(crop=(8, 4, 32, 16))).process(rgb, K_CAM)
    assert cropped.depth.shape == (16, 32) and cropped.crop == (8, 4, 32, 16)
    np.testing.assert_allclose(cropped.K[:2, 2], [31.5 - 8, 11.5 - 4])
    with pytest.raises(ImageDataError, match="does not fit"):
        DepthPipeline(estimator, PipelineConfig(crop=(40, 0, 32, 16))).process(rgb, K_CAM)


def test_the_result_carries_the_colour_on_the_depth_grid_and_the_model_size(tmp_path: Path) -> None:
    """The cloud's colour without a second resize of the camera image: the (cropped) camera image at
    camera resolution, the network's input image (resize_area, as training) at model resolution."""
    estimator = linear_estimator(tmp_path)
    rgb = np.random.default_rng(4).integers(0, 256, (CAM_H, CAM_W, 3), dtype=np.uint8)
    camera = DepthPipeline(estimator, PipelineConfig(crop=(8, 4, 32, 16))).process(rgb, K_CAM)
    assert camera.model_size == (16, 12) and camera.colour.shape[:2] == camera.depth.shape
    np.testing.assert_array_equal(camera.colour, rgb[4:20, 8:40])
    pipeline = DepthPipeline(estimator, PipelineConfig(output_resolution="model"))
    model = pipeline.process(rgb, K_CAM)
    np.testing.assert_array_equal(model.colour, resize_area(rgb, (16, 12)))
    pipeline.process(255 - rgb, K_CAM)  # the next frame does not write into this one's colour
    np.testing.assert_array_equal(model.colour, resize_area(rgb, (16, 12)))


def test_auto_resolution_keeps_small_cameras_and_bins_large_ones(tmp_path: Path) -> None:
    """output_resolution auto (default): a camera of at most 4x the network's pixels keeps its size;
    a larger one is binned by the input shrink's exact box steps, with its colour and K on that grid,
    and the network sees the same input as with any other output resolution."""
    estimator = linear_estimator(tmp_path)  # a 16x12 network: 4x its pixels is 768
    rng = np.random.default_rng(9)
    small = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)  # 768 pixels: kept
    result = DepthPipeline(estimator).process(small, K_CAM)
    assert result.depth.shape == (24, 32)
    np.testing.assert_array_equal(result.colour, small)
    large = rng.integers(0, 256, (CAM_H * 2, CAM_W * 2, 3), dtype=np.uint8)  # 128x48: 32x the network
    K_large = scale_intrinsics(K_CAM, (CAM_W, CAM_H), (CAM_W * 2, CAM_H * 2))
    auto = DepthPipeline(estimator).process(large, K_large)
    binned = cv2.resize(large, (32, 12), interpolation=cv2.INTER_AREA)  # 4x4 block means, as 2 halvings
    assert auto.depth.shape == (12, 32) and auto.input_size == (128, 48)
    np.testing.assert_array_equal(auto.colour, box_shrink(large, (16, 12)))
    assert np.abs(auto.colour.astype(int) - binned).max() <= 1
    np.testing.assert_allclose(auto.K, scale_intrinsics(K_large, (128, 48), (32, 12)))
    camera = DepthPipeline(estimator, PipelineConfig(output_resolution="camera")).process(large, K_large)
    assert camera.depth.shape == (48, 128)
    # The same network input either way: auto is the model-resolution depth, upsampled to its grid.
    model = DepthPipeline(estimator, PipelineConfig(output_resolution="model")).process(large, K_large)
    np.testing.assert_array_equal(
        auto.depth, cv2.resize(model.depth, (32, 12), interpolation=cv2.INTER_LINEAR)
    )


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    pipeline = DepthPipeline(linear_estimator(tmp_path))
    rgb = np.zeros((CAM_H, CAM_W, 3), np.uint8)
    bad_k = K_CAM.copy()
    bad_k[0, 2] = np.nan
    for image, K in ((rgb[..., 0], K_CAM), (rgb.astype(np.float32), K_CAM), (rgb, bad_k), (rgb, K_CAM[:2])):
        with pytest.raises(BadInputError) as error:
            pipeline.process(image, K)
        assert "\n" not in str(error.value)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="output_resolution"):
        PipelineConfig(output_resolution="full")
    with pytest.raises(ValueError, match="camera_height"):
        PipelineConfig(scale_mode="camera_height")
    with pytest.raises(ValueError, match="fixed_scale"):
        PipelineConfig(scale_mode="fixed")


def test_input_reduction_is_the_shrinks_first_halvings(tmp_path: Path) -> None:
    """How much smaller a JPEG may be decoded (16x12 network; auto bins cameras above 768 pixels)."""
    estimator = linear_estimator(tmp_path)

    def reduction(width: int, height: int, **config: object) -> int:
        return DepthPipeline(estimator, PipelineConfig(**config)).input_reduction(width, height)

    assert reduction(128, 48) == 4  # two halvings to 32x12; a third would go below 16x12
    assert reduction(1024, 384) == 8  # five halvings possible; libjpeg's smallest scale is 1/8
    assert reduction(96, 39) == 1  # an odd side: no halving (an odd box step instead)
    assert reduction(32, 24) == 1  # auto keeps a 768-pixel camera's size
    assert reduction(32, 24, output_resolution="model") == 2  # the network only needs 16x12
    assert reduction(128, 48, output_resolution="camera") == 1
    assert reduction(128, 48, reduced_decode=False) == 1
    assert reduction(128, 64, crop=(8, 8, 64, 48)) == 4  # the crop is halved twice, on block lines
    assert reduction(128, 64, crop=(2, 8, 64, 48)) == 2
    assert reduction(128, 64, crop=(1, 8, 64, 48)) == 1


@pytest.mark.parametrize(
    "config",
    [PipelineConfig(), PipelineConfig(output_resolution="model"), PipelineConfig(crop=(8, 8, 64, 48))],
    ids=["auto", "model", "crop"],
)
def test_a_reduced_image_gives_the_full_images_result(tmp_path: Path, config: PipelineConfig) -> None:
    """Given the camera image already halved twice (as the input shrink would), with reduction=4 and
    the camera's K and crop: the same depth, K, colour, sizes and crop, to the byte."""
    estimator = linear_estimator(tmp_path)
    full = np.random.default_rng(5).integers(0, 256, (64, 128, 3), dtype=np.uint8)
    K_full = scale_intrinsics(K_CAM, (CAM_W, CAM_H), (128, 64))
    pipeline = DepthPipeline(estimator, config)
    assert pipeline.input_reduction(128, 64) == 4
    halved = cv2.resize(full, (64, 32), interpolation=cv2.INTER_AREA)
    reduced = cv2.resize(halved, (32, 16), interpolation=cv2.INTER_AREA)
    expected = pipeline.process(full, K_full)
    result = DepthPipeline(estimator, config).process(reduced, K_full, reduction=4)
    np.testing.assert_array_equal(result.depth, expected.depth)
    np.testing.assert_allclose(result.K, expected.K, rtol=1e-12)
    np.testing.assert_array_equal(result.colour, expected.colour)
    assert (result.input_size, result.crop, result.model_size) == ((128, 64), config.crop, (16, 12))
    assert result.input_size == expected.input_size
