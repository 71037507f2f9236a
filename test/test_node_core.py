"""The node's ROS-free core: parameter validation, mailbox + worker, statistics, diagnostics."""

from __future__ import annotations

import array
import ast
import importlib.util
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from depth_node.runtime.parameters import (
    DROP_REASONS,
    OK,
    PARAMETERS,
    WARN,
    FrameStats,
    InferenceWorker,
    LatestSlot,
    LogThrottle,
    ParameterError,
    check_parameter,
    diagnostic_summary,
    find_default_model,
    validate_parameters,
)


class FakeClock:
    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


# --- parameters --------------------------------------------------------------------------------
def test_defaults_validate_and_match_the_documented_qos():
    settings = validate_parameters({})
    assert settings.providers == ("tensorrt", "cuda", "cpu")
    assert (settings.input_reliability, settings.input_depth) == ("best_effort", 1)
    assert (settings.output_reliability, settings.output_depth) == ("reliable", 1)
    assert settings.depth_encoding == "32FC1" and settings.output_resolution == "camera"
    assert settings.crop is None
    assert settings.subscribed_image_topic == "/camera/image_raw"
    config = settings.pipeline_config()
    assert config.scale_mode == "auto" and config.camera_height == pytest.approx(1.65)


def test_every_parameter_has_a_description_and_a_ros_type():
    for spec in PARAMETERS:
        assert spec.description, spec.name
        assert isinstance(spec.default, (bool, int, float, str, list)), spec.name
        if isinstance(spec.default, list):
            assert spec.default and len({type(v) for v in spec.default}) == 1, spec.name  # typed, non-empty
        if spec.value_range is not None:
            assert spec.value_range[0] <= spec.default <= spec.value_range[1], spec.name
        if spec.choices is not None:
            assert spec.default in spec.choices, spec.name


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"depth_encoding": "8UC1"}, "depth_encoding: '8UC1' is not one of 32FC1, 16UC1"),
        ({"output_resolution": "full"}, "output_resolution"),
        ({"scale_mode": "magic"}, "scale_mode"),
        ({"points_stride": 0}, "points_stride: 0 is outside [1, 32]"),
        ({"min_range": 1}, "min_range: 1 is not a float"),
        ({"min_range": 50.0, "max_range": 10.0}, "need min < max"),
        ({"providers": ["cpu", "gpu"]}, "providers: 'gpu'"),
        ({"providers": []}, "providers: empty"),
        ({"scale_mode": "fixed", "fixed_scale": 0.0}, "fixed_scale"),
        ({"scale_mode": "camera_height", "camera_height": 0.0}, "camera_height"),
        ({"crop": [0, 0, 10]}, "crop"),
        ({"image_topic": ""}, "image_topic"),
        ({"input_qos.reliability": "sometimes"}, "input_qos.reliability"),
        ({"input_qos.depth": 0}, "input_qos.depth"),
        ({"compressed": "yes"}, "compressed: 'yes' is not a bool"),
        ({"stride": 2}, "unknown parameter(s): stride"),
    ],
)
def test_invalid_values_are_refused_with_a_clear_message(values, fragment):
    with pytest.raises(ParameterError) as info:
        validate_parameters(values)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_valid_settings_reach_the_pipeline_config():
    settings = validate_parameters(
        {
            "providers": ["CPU", "CUDAExecutionProvider"],
            "compressed": True,
            "image_topic": "/cam/front/image",
            "crop": [0, 10, 400, 100],
            "scale_mode": "fixed",
            "fixed_scale": 2.5,
            "camera_height": 0.0,
            "output_resolution": "model",
            "upsample": "nearest",
            "tensorrt_cache_dir": "",
        }
    )
    assert settings.providers == ("cpu", "CUDAExecutionProvider")
    assert settings.subscribed_image_topic == "/cam/front/image/compressed"
    assert settings.tensorrt_cache_dir is None
    config = settings.pipeline_config()
    assert config.crop == (0, 10, 400, 100)
    assert (config.scale_mode, config.fixed_scale, config.camera_height) == ("fixed", 2.5, None)
    assert (config.output_resolution, config.upsample) == ("model", "nearest")


def test_rclpy_array_values_are_accepted():
    # rclpy returns INTEGER_ARRAY parameters from a params file as array.array('q').
    settings = validate_parameters({"crop": array.array("q", [0, 8, 64, 32])})
    assert settings.crop == (0, 8, 64, 32)


def test_check_parameter_words_values_that_rclpy_refuses():
    # The node uses it for an override that rclpy refused while declaring (type, descriptor range).
    with pytest.raises(ParameterError, match=r"^parameter points_stride: 0 is outside \[1, 32\]$"):
        check_parameter("points_stride", 0)
    with pytest.raises(ParameterError, match="parameter min_range: 1 is not a float"):
        check_parameter("min_range", 1)
    with pytest.raises(ParameterError, match="unknown parameter bogus"):
        check_parameter("bogus", 1)
    check_parameter("crop", array.array("q", [0, 0, 0, 0]))


def test_rclpy_array_field_values():
    # rclpy's setters take array.array for variable-length arrays (CameraInfo.d, Image.data); the
    # converters must work on any numpy input (array.frombytes refuses non-byte buffer formats).
    from depth_node.runtime.message_types import ros_float64_array, ros_uint8_array

    d = ros_float64_array(np.array([0.1, -0.2, 0.0, 0.0, 0.3]))
    assert d.typecode == "d" and d.tolist() == [0.1, -0.2, 0.0, 0.0, 0.3]
    assert ros_float64_array(np.zeros((2, 2), np.float32)).tolist() == [0.0] * 4
    data = ros_uint8_array(np.arange(6, dtype=np.uint8).reshape(2, 3)[:, ::2])  # non-contiguous
    assert data.typecode == "B" and data.tolist() == [0, 2, 3, 5]


def test_default_model_prefers_a_demo_model(tmp_path):
    empty, models = tmp_path / "empty", tmp_path / "models"
    empty.mkdir()
    models.mkdir()
    assert find_default_model([empty]) is None
    (models / "a_resnet.onnx").write_bytes(b"x")
    assert find_default_model([empty, models]) == models / "a_resnet.onnx"
    (models / "stdc1_demo.onnx").write_bytes(b"x")
    assert find_default_model([empty, models]) == models / "stdc1_demo.onnx"


# --- mailbox and worker ------------------------------------------------------------------------
def test_slot_keeps_only_the_newest_item():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is None
    assert slot.put(2) == 1  # 1 was never processed
    assert slot.get(timeout=0) == 2
    assert slot.get(timeout=0.01) is None
    slot.put(3)
    assert slot.close() == 3
    assert slot.get(timeout=None) is None  # closed: returns at once


def test_worker_processes_newest_frames_survives_errors_and_joins():
    slot: LatestSlot[int] = LatestSlot()
    processed: list[int] = []
    errors: list[tuple[int, str]] = []
    release = threading.Event()

    def process(item: int) -> None:
        if item == 0:
            release.wait(2.0)  # hold the worker busy while newer items arrive
        if item == 5:
            raise ValueError("bad frame")
        processed.append(item)

    worker = InferenceWorker(slot, process, lambda item, error: errors.append((item, str(error))))
    worker.start()
    slot.put(0)
    deadline = time.monotonic() + 2.0
    while not worker.busy and time.monotonic() < deadline:
        time.sleep(0.001)
    replaced = [slot.put(i) for i in (1, 2, 3)]
    assert replaced == [None, 1, 2]  # 1 and 2 superseded while 0 was in progress
    release.set()
    slot.put(5)  # replaces 3, raises in process
    deadline = time.monotonic() + 2.0
    while not errors and time.monotonic() < deadline:
        time.sleep(0.001)
    slot.put(6)
    deadline = time.monotonic() + 2.0
    while 6 not in processed and time.monotonic() < deadline:
        time.sleep(0.001)
    assert errors == [(5, "bad frame")]
    assert processed[0] == 0 and processed[-1] == 6 and 1 not in processed and 2 not in processed
    assert worker.stop(timeout=2.0)
    assert not worker.is_alive()


# --- statistics --------------------------------------------------------------------------------
def test_stats_count_rates_and_latency_percentiles():
    clock = FakeClock()
    stats = FrameStats(rate_window=5.0, clock=clock)
    for i in range(20):  # camera at 10 Hz, every other frame published
        arrival = stats.frame_in()
        clock.now += 0.05
        if i % 2:
            stats.frame_out(arrival, latency=0.1 + 0.01 * i)
        else:
            stats.drop("superseded")
        clock.now += 0.05
    snap = stats.snapshot()
    assert (snap.frames_in, snap.frames_out, snap.dropped) == (20, 10, 10)
    assert snap.dropped_by_reason["superseded"] == 10
    assert set(snap.dropped_by_reason) == set(DROP_REASONS)
    assert snap.input_rate == pytest.approx(10.0)  # 20 frames in 2 s (shorter than the 5 s window)
    assert snap.output_rate == pytest.approx(snap.input_rate / 2)
    assert snap.latency_p50 == pytest.approx(0.2, abs=0.011)
    assert snap.processing_p50 == pytest.approx(0.05)
    with pytest.raises(KeyError):
        stats.drop("cosmic_ray")


def test_stats_memory_is_bounded():
    stats = FrameStats(history=64, clock=FakeClock())
    for _ in range(1000):
        stats.frame_out(stats.frame_in(), latency=0.01)
    assert len(stats._in_times) == len(stats._latencies) == 64


def test_log_throttle_is_per_key():
    clock = FakeClock()
    throttle = LogThrottle(period=5.0, clock=clock)
    assert throttle.should_log("bad_encoding")
    assert not throttle.should_log("bad_encoding")
    assert throttle.should_log("size_mismatch")  # another reason is not held back
    clock.now += 5.0
    assert throttle.should_log("bad_encoding")


# --- diagnostics -------------------------------------------------------------------------------
def _summary(stats: FrameStats, **overrides):
    arguments = dict(
        image_topic="/camera/image_raw",
        camera_info_topic="/camera/camera_info",
        waiting_for_camera_info=False,
        provider="CPUExecutionProvider",
        model_name="demo",
        scale_mode="model",
        scale=1.0,
    )
    arguments.update(overrides)
    return diagnostic_summary(stats.snapshot(), **arguments)


def test_diagnostics_levels():
    clock = FakeClock()
    stats = FrameStats(clock=clock)
    summary = _summary(stats)
    assert summary.level == WARN and "no images received" in summary.message
    keys = dict(summary.values)
    for key in (
        "frames in",
        "frames out",
        "frames dropped",
        "dropped: nan",
        "input rate (Hz)",
        "latency p50 (ms)",
        "latency p95 (ms)",
        "provider",
        "model",
        "scale",
    ):
        assert key in keys
    assert keys["latency p50 (ms)"] == "n/a"

    stats.frame_in()
    stats.drop("no_camera_info")
    assert "waiting for camera_info" in _summary(stats, waiting_for_camera_info=True).message

    for _ in range(30):  # every frame published: OK
        arrival = stats.frame_in()
        clock.now += 0.1
        stats.frame_out(arrival, latency=0.05)
    summary = _summary(stats)
    assert summary.level == OK and "publishing depth" in summary.message
    assert dict(summary.values)["latency p50 (ms)"] == "50.0"

    assert _summary(stats, new_bad_drops={"bad_encoding": 3}).level == WARN

    for _ in range(30):  # output at a third of the camera rate: WARN
        for _ in range(2):
            stats.frame_in()
            stats.drop("superseded")
            clock.now += 0.033
        arrival = stats.frame_in()
        clock.now += 0.034
        stats.frame_out(arrival, latency=0.05)
    summary = _summary(stats)
    assert summary.level == WARN and "below the camera" in summary.message

    clock.now += 10.0
    assert "no images for" in _summary(stats).message


def test_percentile_of_nothing_is_nan():
    from depth_node.runtime.parameters import percentile

    assert math.isnan(percentile([], 50))
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0


# --- config/depth.yaml, launch/depth.launch.py, config/depth.rviz -------------------------------
REPO = Path(__file__).resolve().parents[1]
LAUNCH_ARGUMENTS = {
    "model",
    "image_topic",
    "camera_info_topic",
    "compressed",
    "params_file",
    "namespace",
    "rviz",
    "use_sim_time",
}


def _flatten(prefix: str, tree: dict) -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else key
        flat.update(_flatten(name, value) if isinstance(value, dict) else {name: value})
    return flat


def test_yaml_has_every_parameter_with_its_default_and_type():
    content = yaml.safe_load((REPO / "config" / "depth.yaml").read_text())
    assert list(content) == ["/**"]  # applies whatever the node's name and namespace
    params = _flatten("", content["/**"]["ros__parameters"])
    declared = {spec.name: spec.default for spec in PARAMETERS}
    assert set(params) == set(declared), set(params) ^ set(declared)
    for name, default in declared.items():
        # Same value and same Python type: rcl would refuse an int where a double is declared.
        assert params[name] == default and type(params[name]) is type(default), name
    validate_parameters(params)


def test_yaml_comments_every_parameter():
    lines = (REPO / "config" / "depth.yaml").read_text().splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if ":" in stripped and not stripped.startswith("#") and not stripped.endswith(":"):
            above = [lines[i].strip() for i in range(index - 1, -1, -1)]
            key = stripped.split(":")[0]
            # A comment right above it, or it shares the comment of a group it directly follows.
            assert above and (above[0].startswith("#") or ":" in above[0]), f"no comment for {key}"


def test_launch_file_defines_its_arguments():
    path = REPO / "launch" / "depth.launch.py"
    source = path.read_text()
    tree = ast.parse(source, str(path))
    compile(tree, str(path), "exec")
    functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    declared = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "DeclareLaunchArgument"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert declared == LAUNCH_ARGUMENTS
    if importlib.util.find_spec("launch") is None or importlib.util.find_spec("launch_ros") is None:
        return  # no ROS 2 here: the static checks above are what can be done
    from launch.actions import DeclareLaunchArgument

    spec = importlib.util.spec_from_file_location("depth_launch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    assert names == LAUNCH_ARGUMENTS


def test_rviz_view_shows_camera_depth_and_cloud_in_the_optical_frame():
    config = yaml.safe_load((REPO / "config" / "depth.rviz").read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "camera_optical"
    displays = {d["Name"]: d for d in manager["Displays"]}
    assert displays["Camera"]["Class"] == "rviz_default_plugins/Image"
    assert displays["Camera"]["Topic"]["Value"] == "/camera/image_raw"
    assert displays["Camera"]["Topic"]["Reliability Policy"] == "Best Effort"
    assert displays["Depth"]["Topic"]["Value"] == "/depth/image"
    cloud = displays["Depth cloud"]
    assert cloud["Class"] == "rviz_default_plugins/PointCloud2"
    assert cloud["Topic"]["Value"] == "/depth/points"
    assert (cloud["Color Transformer"], cloud["Axis"]) == ("AxisColor", "Z")
