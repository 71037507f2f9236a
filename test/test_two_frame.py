"""Two-frame models on the car: the estimator's second input, the pipeline's previous frame, the frame
path's resets and the replay's record of which mode each frame used.

Real ONNX Runtime sessions on a tiny two-input model, depth = a + b * mean(image) + c * mean(prev_image)
with b and c far apart, so each depth value says which frame went into which input; real message
classes and a real rosbag2 for the replay.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx_models import make_linear_depth_model, make_two_frame_model
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore

from depth_node.evaluation.replay import ReplayOptions, replay
from depth_node.evaluation.replay_cli import summary_text
from depth_node.runtime.conversions import image_msg_to_depth, numpy_to_image
from depth_node.runtime.errors import InputShapeError, ModelLoadError
from depth_node.runtime.estimator import DepthEstimator
from depth_node.runtime.frame import FrameDrop, FrameOutputs, FramePath
from depth_node.runtime.message_types import rosbags_types, stamp_header
from depth_node.runtime.messages import camera_info_from_K
from depth_node.runtime.parameters import validate_parameters
from depth_node.runtime.pipeline import DepthPipeline

TYPES = rosbags_types()
TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
A, B, C = 1.0, 10.0, 50.0
T0 = 1_700_000_000_000_000_000  # ns
W, H = 64, 24


def _depth(current: int, previous: int) -> float:
    """The two-frame model's depth for uniform grey frames (0..255)."""
    return A + B * current / 255 + C * previous / 255


@pytest.fixture(scope="module")
def two_frame_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_two_frame_model(tmp_path_factory.mktemp("two") / "two.onnx", a=A, b=B, c=C)


def _frame_path(model: Path) -> tuple[FramePath, object]:
    settings = validate_parameters(
        {"model_path": str(model), "providers": ["cpu"], "threads": 1, "output_resolution": "camera"}
    )
    return FramePath.from_settings(settings, TYPES), settings


def _run(path: FramePath, settings: object, grey: int, stamp_ns: int, size: tuple[int, int] = (W, H)):
    width, height = size
    header = stamp_header(TYPES, stamp_ns, "camera_optical")
    image = numpy_to_image(np.full((height, width, 3), grey, np.uint8), "rgb8", header, TYPES)
    K = np.array([[40.0, 0.0, width / 2], [0.0, 40.0, height / 2], [0.0, 0.0, 1.0]])
    return path.process(image, camera_info_from_K(K, width, height, header, TYPES), settings, cloud=False)


# ------------------------------------------------------------------------------- the estimator


@pytest.mark.parametrize("io_binding", [False, True])
def test_estimator_feeds_both_frames(two_frame_model: Path, io_binding: bool) -> None:
    estimator = DepthEstimator(two_frame_model, providers=("cpu",), threads=1, io_binding=io_binding)
    assert estimator.info.frames == 2
    rng = np.random.default_rng(0)
    for _ in range(2):  # the second run reuses the bound tensors
        image, prev = rng.random((2, 1, 3, 12, 16), dtype=np.float32)
        expected = A + B * image.mean(axis=1, keepdims=True) + C * prev.mean(axis=1, keepdims=True)
        np.testing.assert_allclose(estimator.infer(image, prev), expected, rtol=1e-5)
    with pytest.raises(InputShapeError, match="two-frame model: infer needs the previous frame"):
        estimator.infer(image)
    with pytest.raises(InputShapeError, match=r"prev_image must have the shape of image \[1, 3, 12, 16\]"):
        estimator.infer(image, np.zeros((2, 3, 12, 16), np.float32))


def test_single_frame_model_refuses_a_previous_frame(tmp_path: Path) -> None:
    estimator = DepthEstimator(make_linear_depth_model(tmp_path / "m.onnx"), providers=("cpu",), threads=1)
    assert estimator.info.frames == 1
    batch = np.zeros((1, 3, 12, 16), np.float32)
    with pytest.raises(InputShapeError, match="takes one frame, got a previous frame too"):
        estimator.infer(batch, batch)


def _bad_models(folder: Path) -> dict[str, tuple[Path, str]]:
    return {
        "frames=2 without prev_image": (
            make_linear_depth_model(folder / "no_prev.onnx", metadata={"frames": "2"}),
            r"metadata says frames=2 but the model has no 'prev_image' input, got inputs \['image'\]",
        ),
        "prev_image without frames": (
            make_two_frame_model(folder / "no_frames.onnx", metadata={"frames": None}),
            "has a 'prev_image' input but its metadata lacks frames=2",
        ),
        "prev_image with frames=1": (
            make_two_frame_model(folder / "frames1.onnx", metadata={"frames": "1"}),
            "has a 'prev_image' input but its metadata lacks frames=2",
        ),
        "bad frames value": (
            make_two_frame_model(folder / "frames3.onnx", metadata={"frames": "3"}),
            "bad frames metadata '3', expected 1 or 2",
        ),
        "prev_image of another shape": (
            make_two_frame_model(folder / "grey_prev.onnx", prev_dims=("N", 1, 12, 16)),
            r"'prev_image' is tensor\(float\) \['N', 1, 12, 16\] but 'image' is tensor\(float\) "
            r"\['N', 3, 12, 16\], expected the same",
        ),
    }


def test_broken_two_frame_models_are_one_line_load_errors(tmp_path: Path) -> None:
    for name, (path, message) in _bad_models(tmp_path).items():
        with pytest.raises(ModelLoadError, match=message) as error:
            DepthEstimator(path, providers=("cpu",), threads=1)
        assert "\n" not in str(error.value), name


# ----------------------------------------------------------------------- pipeline and frame path


def test_frame_path_feeds_the_previous_frame_and_starts_afresh_after_each_reset(
    two_frame_model: Path,
) -> None:
    """Frame by frame: which frame went into prev_image, and the mode and reset each frame reports."""
    path, settings = _frame_path(two_frame_model)
    second = 1_000_000_000
    # (grey, stamp, image size, expected previous grey, mode, reset)
    stream = [
        (20, T0, (W, H), 20, "first", None),  # first frame: fed twice
        (60, T0 + second // 10, (W, H), 20, "two", None),
        (100, T0 + 2 * second // 10, (W, H), 60, "two", None),
        (140, T0 + 5 * second, (W, H), 140, "first", "time_jump"),
        (180, T0 + 51 * second // 10, (W, H), 140, "two", None),
        (40, T0 + 52 * second // 10, (48, 20), 40, "first", None),  # the camera changed size
        (80, T0 + 53 * second // 10, (48, 20), 40, "two", None),
        (120, T0 + second, (48, 20), 120, "first", "backwards_stamp"),  # a bag played in a loop
        (160, T0 + 11 * second // 10, (48, 20), 120, "two", None),
    ]
    for i, (grey, stamp, size, previous, mode, reset) in enumerate(stream):
        out = _run(path, settings, grey, stamp, size)
        assert isinstance(out, FrameOutputs), out
        assert (out.frame_mode, out.reset) == (mode, reset), i
        depth = image_msg_to_depth(out.image)
        assert depth.shape == size[::-1]
        np.testing.assert_allclose(depth, _depth(grey, previous), rtol=1e-4, err_msg=f"frame {i}")
    # A repeated stamp is dropped before the network: the previous frame stays the last processed one.
    drop = _run(path, settings, 250, T0 + 11 * second // 10, (48, 20))
    assert isinstance(drop, FrameDrop) and drop.reason == "duplicate_stamp"
    out = _run(path, settings, 200, T0 + 12 * second // 10, (48, 20))
    assert out.frame_mode == "two"
    np.testing.assert_allclose(image_msg_to_depth(out.image), _depth(200, 160), rtol=1e-4)


def test_pipeline_reset_and_the_previous_frame(two_frame_model: Path) -> None:
    pipeline = DepthPipeline(DepthEstimator(two_frame_model, providers=("cpu",), threads=1))
    K = np.array([[40.0, 0.0, 32.0], [0.0, 40.0, 12.0], [0.0, 0.0, 1.0]])
    modes, depths = [], []
    for i, grey in enumerate((30, 90, 150, 210)):
        if i == 2:
            pipeline.reset()
            assert pipeline._prev is None
        prepared = pipeline.prepare(np.full((H, W, 3), grey, np.uint8), K)
        result = pipeline.finish(pipeline.infer(prepared))
        modes.append(result.frame_mode)
        depths.append(float(result.depth.mean()))
        # the next frame's previous one is this frame's own network input, kept without a copy
        assert pipeline._prev is prepared.network_input
    assert modes == ["first", "two", "first", "two"]
    expected = [_depth(30, 30), _depth(90, 30), _depth(150, 150), _depth(210, 150)]
    np.testing.assert_allclose(depths, expected, rtol=1e-4)


def test_single_frame_models_are_unchanged(tmp_path: Path) -> None:
    """A one-frame model: mode "single" on every frame, resets included; depth from this frame only."""
    model = make_linear_depth_model(tmp_path / "one.onnx", a=A, b=B)
    path, settings = _frame_path(model)
    for grey, stamp in ((20, T0), (60, T0 + 100_000_000), (100, T0 + 5_000_000_000)):
        out = _run(path, settings, grey, stamp)
        assert out.frame_mode == "single" and path.pipeline._prev is None  # no previous frame kept
        np.testing.assert_allclose(image_msg_to_depth(out.image), A + B * grey / 255, rtol=1e-4)
    assert out.reset == "time_jump"


# ------------------------------------------------------------------------------------ the replay


def _write_bag(path: Path, stamps_s: list[float], greys: list[int]) -> Path:
    """A rosbag2 recorded in order (bag time rising) whose header stamps are ``stamps_s``."""
    K = np.array([[50.0, 0, W / 2], [0, 50.0, H / 2], [0, 0, 1]])
    with Writer(path, version=8) as writer:
        c_img = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=TYPESTORE)
        c_info = writer.add_connection(
            "/camera/camera_info", "sensor_msgs/msg/CameraInfo", typestore=TYPESTORE
        )
        for i, (stamp_s, grey) in enumerate(zip(stamps_s, greys)):
            bag_time = 1_000_000_000 + i * 100_000_000
            header = stamp_header(TYPES, round(stamp_s * 1e9), "camera_optical")
            info = camera_info_from_K(K, W, H, header, TYPES)
            writer.write(c_info, bag_time, TYPESTORE.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
            image = numpy_to_image(np.full((H, W, 3), grey, np.uint8), "rgb8", header, TYPES)
            writer.write(c_img, bag_time, TYPESTORE.serialize_cdr(image, "sensor_msgs/msg/Image"))
    return path


def test_replay_records_the_mode_and_the_resets(two_frame_model: Path, tmp_path: Path, read_topics) -> None:
    """A bag with a gap in its stamps, then stamps going back (a looped recording): the output bag's
    depth shows the frame fed twice at the start and after each reset; results.json counts the modes."""
    stamps = [1.0, 1.1, 1.2, 5.0, 5.1, 1.0, 1.1]
    greys = [20, 60, 100, 140, 180, 40, 80]
    bag = _write_bag(tmp_path / "gap", stamps, greys)
    options = ReplayOptions(
        bag=bag,
        model=two_frame_model,
        out=tmp_path / "out",
        progress=False,
        report_frames=1,
        node_params={"providers": ["cpu"], "threads": 1, "publish_points": False},
    )
    result = replay(options)
    results = result.results
    modes = ["first", "two", "two", "first", "two", "first", "two"]
    resets = [None, None, None, "time_jump", None, "backwards_stamp", None]
    assert [f["frame_mode"] for f in results["per_frame"]] == modes
    assert [f["reset"] for f in results["per_frame"]] == resets
    assert results["frames"]["processed_by_mode"] == {"single": 0, "first": 3, "two": 4}
    assert results["frames"]["resets_by_reason"] == {"backwards_stamp": 1, "time_jump": 1}
    assert results["model"]["frames"] == 2
    assert json.loads((tmp_path / "out" / "results.json").read_text())["frames"] == results["frames"]
    assert "two-frame model: 4 frames with the previous frame, 3 fed twice" in summary_text(result)

    published = read_topics(tmp_path / "out" / "depth_bag", {"/depth/image"})["/depth/image"]
    previous = [greys[i] if mode == "first" else greys[i - 1] for i, mode in enumerate(modes)]
    assert len(published) == len(greys)
    for i, (_, msg) in enumerate(published):
        np.testing.assert_allclose(image_msg_to_depth(msg), _depth(greys[i], previous[i]), rtol=1e-4)
