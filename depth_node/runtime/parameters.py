"""The depth node's parameters: the table, their validation into :class:`NodeSettings`, the model lookup.

ROS-free, because the replay runs the pipeline exactly as the node configured the same way would:
``depth-replay -p name:=value`` and ``--params-file config/depth.yaml`` go through the same table
and the same checks as ``ros2 run depth_node depth_node --ros-args -p name:=value``. The rclpy node
(:mod:`depth_node.ros.node`) declares every :data:`PARAMETERS` entry with its descriptor.
"""

from __future__ import annotations

import array
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from depth_node.runtime.background import PRIORITIES
from depth_node.runtime.conversions import DEPTH_ENCODINGS
from depth_node.runtime.errors import ModelLoadError
from depth_node.runtime.estimator import PROVIDER_NAMES
from depth_node.runtime.messages import OUT_OF_RANGE
from depth_node.runtime.pipeline import OUTPUT_RESOLUTIONS, SCALE_MODES, PipelineConfig
from depth_node.runtime.precision import PRECISIONS

NODE_NAME = "depth_node"
RELIABILITIES = ("best_effort", "reliable")
UPSAMPLE_MODES = ("linear", "nearest")
DEFAULT_TRT_CACHE = "~/.cache/depth_node/tensorrt"


class ParameterError(ValueError):
    """A parameter value the node cannot start with (one line: name, value, what is expected)."""


# --------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParamSpec:
    """One node parameter. Its ROS type follows from ``default`` (rclpy's static typing)."""

    name: str
    default: Any
    description: str
    read_only: bool = True
    value_range: tuple[float, float] | None = None  # inclusive; becomes an Integer/FloatingPointRange
    choices: tuple[str, ...] | None = None
    constraints: str = ""

    @property
    def additional_constraints(self) -> str:
        if self.choices:
            return "one of: " + ", ".join(self.choices)
        if self.value_range is not None and not self.constraints:
            return f"{self.value_range[0]} .. {self.value_range[1]}"
        return self.constraints


PARAMETERS: tuple[ParamSpec, ...] = (
    # Model and inference.
    ParamSpec(
        "model_path",
        "",
        "ONNX depth model; empty: the demo model installed in share/depth_node/models/",
    ),
    ParamSpec(
        "providers",
        ["tensorrt", "cuda", "cpu"],
        "ONNX Runtime execution providers in order of preference; unavailable ones are skipped",
        constraints="each one of: " + ", ".join(PROVIDER_NAMES) + " (or an ONNX Runtime provider name)",
    ),
    ParamSpec(
        "threads", 0, "ONNX Runtime intra-op threads (0: ONNX Runtime's default)", value_range=(0, 256)
    ),
    ParamSpec(
        "prepare_priority",
        "idle",
        "priority of the thread that decodes and prepares the next frame while the network runs: idle "
        "(Linux SCHED_IDLE: only the cores the network leaves free; normal for good, with a warning, if "
        "other processes starve it) or normal",
        choices=PRIORITIES,
    ),
    ParamSpec(
        "precision",
        "auto",
        "which precision of the model to run: auto = fp32 (or the int8 file named) on CPU, fp16 on GPU; "
        "fp32 / fp16 / int8 = the file name.onnx / name.fp16.onnx / name.int8.onnx beside model_path",
        choices=PRECISIONS,
    ),
    ParamSpec(
        "tensorrt_cache_dir",
        DEFAULT_TRT_CACHE,
        "where TensorRT keeps built engines, so restarts skip the minutes-long build; empty: no cache",
    ),
    ParamSpec("tensorrt_fp16", True, "let TensorRT run in FP16"),
    # Topics.
    ParamSpec("image_topic", "/camera/image_raw", "camera image topic (sensor_msgs/Image)"),
    ParamSpec("camera_info_topic", "/camera/camera_info", "the camera's CameraInfo topic"),
    ParamSpec(
        "compressed",
        False,
        "subscribe to <image_topic>/compressed (sensor_msgs/CompressedImage, JPEG/PNG) instead",
    ),
    ParamSpec(
        "jpeg_reduced_decode",
        True,
        "decode a JPEG at 1/2, 1/4 or 1/8 of its size where the depth image is binned that far anyway "
        "(1920x1080 -> 480x270: half the decode time; depth within 0.4%)",
    ),
    ParamSpec(
        "depth_image_topic", "depth/image", "output depth image topic (relative: in the node's namespace)"
    ),
    ParamSpec("depth_camera_info_topic", "depth/camera_info", "output CameraInfo of the depth image"),
    ParamSpec("points_topic", "depth/points", "output point cloud topic (sensor_msgs/PointCloud2)"),
    # Depth image.
    ParamSpec(
        "output_resolution",
        "auto",
        "depth image size: camera (the camera image's, or the crop's), model (the network's) or auto "
        "(camera up to 4x the network's pixels, above it the camera image binned: 1920x1080 -> 480x270)",
        choices=OUTPUT_RESOLUTIONS,
    ),
    ParamSpec(
        "depth_encoding",
        "32FC1",
        "REP 118 encoding: 32FC1 metres (NaN invalid) or 16UC1 millimetres (0 invalid)",
        read_only=False,
        choices=DEPTH_ENCODINGS,
    ),
    ParamSpec(
        "upsample",
        "linear",
        "model -> camera resolution: linear (smooth) or nearest (no flying points at depth edges)",
        choices=UPSAMPLE_MODES,
    ),
    ParamSpec(
        "crop",
        [0, 0, 0, 0],
        "[left, top, width, height] in camera pixels fed to the network; width or height 0: no crop",
        constraints="4 integers >= 0",
    ),
    # Metric scale.
    ParamSpec(
        "scale_mode",
        "auto",
        "model units -> metres: model (metric_scale from the model), fixed (fixed_scale), "
        "camera_height (ground plane), auto (model if metric, else camera_height when > 0)",
        choices=SCALE_MODES,
    ),
    ParamSpec(
        "fixed_scale", 1.0, "scale for scale_mode fixed (metres per model unit)", value_range=(0.0, 1000.0)
    ),
    ParamSpec(
        "camera_height",
        1.65,
        "camera optical centre above the road in metres, for scale_mode camera_height/auto (0: unknown)",
        value_range=(0.0, 10.0),
    ),
    ParamSpec("scale_window", 15, "frames the ground-plane scale is smoothed over", value_range=(1, 1000)),
    # Point cloud.
    ParamSpec(
        "publish_points",
        True,
        "publish the point cloud (built only while someone subscribes)",
        read_only=False,
    ),
    ParamSpec(
        "points_stride",
        0,
        "keep every n-th row and column in the cloud; 0: auto, the stride whose point count comes "
        "nearest the model's output; 1: every pixel of the depth image",
        read_only=False,
        value_range=(0, 32),
    ),
    ParamSpec("points_color", True, "add the camera's colour (rgb field) to the cloud", read_only=False),
    ParamSpec(
        "points_organized",
        True,
        "organized cloud (image grid, NaN for invalid points) or only valid points",
        read_only=False,
    ),
    # Validity: one rule for the depth image and the cloud.
    ParamSpec(
        "min_range",
        0.5,
        "nearest depth published (image and cloud), metres from the camera centre",
        read_only=False,
        value_range=(0.0, 1000.0),
    ),
    ParamSpec(
        "max_range",
        80.0,
        "farthest depth published (image and cloud), metres from the camera centre",
        read_only=False,
        value_range=(0.0, 1000.0),
    ),
    ParamSpec(
        "out_of_range",
        "rep118",
        "depth outside min_range..max_range: rep118 (NaN, invalid) or rep117 (-Inf too near, +Inf too far); "
        "0 in 16UC1 either way",
        read_only=False,
        choices=OUT_OF_RANGE,
    ),
    # QoS. Best-effort subscriptions match reliable and best-effort publishers (cameras, bag play);
    # a reliable publisher reaches rviz2 and depth_image_proc, which subscribe reliable by default.
    ParamSpec(
        "input_qos.reliability", "best_effort", "image and camera_info subscriptions", choices=RELIABILITIES
    ),
    ParamSpec(
        "input_qos.depth",
        1,
        "subscription queue depth (1: always the newest frame)",
        value_range=(1, 100),
    ),
    ParamSpec(
        "output_qos.reliability",
        "reliable",
        "depth image, camera_info and cloud publishers",
        choices=RELIABILITIES,
    ),
    # Depth 5, not 1: a reliable writer keeps only its history for resending, so with depth 1 a new
    # 2 MB cloud replaced an unacknowledged one and a default subscriber missed 15% of the clouds
    # (340/400 at 10 Hz on Jazzy + Cyclone DDS); with 5, 400/400.
    ParamSpec(
        "output_qos.depth",
        5,
        "publisher queue depth (history kept for reliable resends)",
        value_range=(1, 100),
    ),
)
PARAMETER_NAMES = tuple(spec.name for spec in PARAMETERS)
_SPECS = {spec.name: spec for spec in PARAMETERS}


@dataclass(frozen=True)
class NodeSettings:
    """Validated parameter values (see :data:`PARAMETERS` for their meaning)."""

    model_path: str
    providers: tuple[str, ...]
    threads: int
    prepare_priority: str
    precision: str
    tensorrt_cache_dir: str | None
    tensorrt_fp16: bool
    image_topic: str
    camera_info_topic: str
    compressed: bool
    jpeg_reduced_decode: bool
    depth_image_topic: str
    depth_camera_info_topic: str
    points_topic: str
    output_resolution: str
    depth_encoding: str
    upsample: str
    crop: tuple[int, int, int, int] | None
    scale_mode: str
    fixed_scale: float
    camera_height: float
    scale_window: int
    publish_points: bool
    points_stride: int
    points_color: bool
    points_organized: bool
    min_range: float
    max_range: float
    out_of_range: str
    input_reliability: str
    input_depth: int
    output_reliability: str
    output_depth: int

    @property
    def subscribed_image_topic(self) -> str:
        return f"{self.image_topic.rstrip('/')}/compressed" if self.compressed else self.image_topic

    def pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(
            output_resolution=self.output_resolution,
            scale_mode=self.scale_mode,
            fixed_scale=self.fixed_scale if self.fixed_scale > 0 else None,
            camera_height=self.camera_height if self.camera_height > 0 else None,
            crop=self.crop,
            upsample=self.upsample,
            scale_window=self.scale_window,
            reduced_decode=self.jpeg_reduced_decode,
        )


def _check_type(spec: ParamSpec, value: Any) -> None:
    expected = type(spec.default)
    if isinstance(spec.default, list):
        element = type(spec.default[0])
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, element) and not (element is int and isinstance(v, bool)) for v in value
        )
        kind = f"a list of {element.__name__}"
    elif expected is float:
        ok = isinstance(value, float)
        kind = "a float (write 2.0, not 2)"
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        kind = "an integer"
    else:
        ok = isinstance(value, expected)
        kind = f"a {expected.__name__}"
    if not ok:
        raise ParameterError(f"parameter {spec.name}: {value!r} is not {kind}")


def _check_range(spec: ParamSpec, value: Any) -> None:
    if spec.value_range is not None:
        low, high = spec.value_range
        if not (low <= value <= high) or (isinstance(value, float) and not math.isfinite(value)):
            raise ParameterError(f"parameter {spec.name}: {value!r} is outside [{low}, {high}]")
    if spec.choices is not None and value not in spec.choices:
        raise ParameterError(f"parameter {spec.name}: {value!r} is not one of {', '.join(spec.choices)}")


def check_parameter(name: str, value: Any) -> None:
    """Check one parameter's type and range/choices alone; ParameterError (one line) if wrong.

    The node uses it to word a value that rclpy refused while declaring the parameter (an int for
    a double, a value outside the descriptor's range) the same way as its own validation does.
    """
    spec = _SPECS.get(name)
    if spec is None:
        raise ParameterError(f"unknown parameter {name}")
    if isinstance(value, array.array):
        value = value.tolist()
    _check_type(spec, value)
    _check_range(spec, value)


def _check_topic(name: str, topic: str) -> str:
    topic = topic.strip()
    if not topic or any(c.isspace() for c in topic) or topic.endswith("/"):
        raise ParameterError(f"parameter {name}: {topic!r} is not a topic name")
    return topic


def validate_parameters(values: Mapping[str, Any]) -> NodeSettings:
    """Parameter values (name -> value; missing ones take their default) -> NodeSettings.

    Raises ParameterError with a one-line message naming the parameter, the value and what is
    expected. Unknown names are refused too (a typo in a YAML file would otherwise go unnoticed).
    """
    # Long: per-parameter checks, then the checks across parameters, then one field per parameter.
    unknown = sorted(set(values) - set(PARAMETER_NAMES) - {"use_sim_time"})
    if unknown:
        raise ParameterError(f"unknown parameter(s): {', '.join(unknown)}")
    v: dict[str, Any] = {}
    for spec in PARAMETERS:
        value = values.get(spec.name, spec.default)
        if isinstance(value, array.array):  # rclpy hands integer/double arrays over as array.array
            value = value.tolist()
        _check_type(spec, value)
        _check_range(spec, value)
        v[spec.name] = list(value) if isinstance(value, (list, tuple)) else value

    providers = tuple(
        p.strip().lower() if p.strip().lower() in PROVIDER_NAMES else p.strip() for p in v["providers"]
    )
    if not providers:
        raise ParameterError("parameter providers: empty; give at least one of " + ", ".join(PROVIDER_NAMES))
    for provider in providers:
        if provider not in PROVIDER_NAMES and not provider.endswith("ExecutionProvider"):
            raise ParameterError(
                f"parameter providers: {provider!r} is not one of {', '.join(PROVIDER_NAMES)} "
                "(or an ONNX Runtime provider name)"
            )
    crop_values = v["crop"]
    if len(crop_values) != 4 or min(crop_values) < 0:
        raise ParameterError(
            f"parameter crop: {crop_values!r} is not [left, top, width, height] with values >= 0"
        )
    crop = tuple(int(c) for c in crop_values) if crop_values[2] > 0 and crop_values[3] > 0 else None
    if v["scale_mode"] == "fixed" and v["fixed_scale"] <= 0:
        raise ParameterError("parameter fixed_scale: must be > 0 with scale_mode fixed")
    if v["scale_mode"] == "camera_height" and v["camera_height"] <= 0:
        raise ParameterError("parameter camera_height: must be > 0 (metres) with scale_mode camera_height")
    if v["min_range"] >= v["max_range"]:
        raise ParameterError(
            f"parameters min_range {v['min_range']} and max_range {v['max_range']}: need min < max"
        )
    for name in (
        "image_topic",
        "camera_info_topic",
        "depth_image_topic",
        "depth_camera_info_topic",
        "points_topic",
    ):
        v[name] = _check_topic(name, v[name])
    cache = v["tensorrt_cache_dir"].strip()
    return NodeSettings(
        model_path=v["model_path"].strip(),
        providers=providers,
        threads=v["threads"],
        prepare_priority=v["prepare_priority"],
        precision=v["precision"],
        tensorrt_cache_dir=str(Path(cache).expanduser()) if cache else None,
        tensorrt_fp16=v["tensorrt_fp16"],
        image_topic=v["image_topic"],
        camera_info_topic=v["camera_info_topic"],
        compressed=v["compressed"],
        jpeg_reduced_decode=v["jpeg_reduced_decode"],
        depth_image_topic=v["depth_image_topic"],
        depth_camera_info_topic=v["depth_camera_info_topic"],
        points_topic=v["points_topic"],
        output_resolution=v["output_resolution"],
        depth_encoding=v["depth_encoding"],
        upsample=v["upsample"],
        crop=crop,  # type: ignore[arg-type]
        scale_mode=v["scale_mode"],
        fixed_scale=v["fixed_scale"],
        camera_height=v["camera_height"],
        scale_window=v["scale_window"],
        publish_points=v["publish_points"],
        points_stride=v["points_stride"],
        points_color=v["points_color"],
        points_organized=v["points_organized"],
        min_range=v["min_range"],
        max_range=v["max_range"],
        out_of_range=v["out_of_range"],
        input_reliability=v["input_qos.reliability"],
        input_depth=v["input_qos.depth"],
        output_reliability=v["output_qos.reliability"],
        output_depth=v["output_qos.depth"],
    )


def find_default_model(models_dirs: Iterable[Path]) -> Path | None:
    """The demo model: the first folder's ``*.onnx`` whose name says demo, else its first ``*.onnx``."""
    for folder in models_dirs:
        candidates = sorted(Path(folder).glob("*.onnx"))
        if candidates:
            demos = [c for c in candidates if "demo" in c.name.lower()]
            return (demos or candidates)[0]
    return None


def model_dirs() -> list[Path]:
    """Where the default (demo) model is looked for, in order.

    The ROS install's share/depth_node/models (ament index), a pip install's
    ``<prefix>/share/depth_node/models``, then a source checkout's ``models/``.
    """
    dirs: list[Path] = []
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory("depth_node")) / "models")
    except (ImportError, LookupError):  # no ROS, or the package is not installed in an overlay
        pass
    dirs.append(Path(sys.prefix) / "share" / "depth_node" / "models")
    source_models = Path(__file__).resolve().parents[2] / "models"
    if source_models.is_dir():  # a source checkout (not site-packages of an install)
        dirs.append(source_models)
    return dirs


def resolve_model(model_path: str | Path | None) -> Path:
    """The model to load: ``model_path`` when given, else the demo model; ModelLoadError if none.

    The node (``model_path`` parameter), the replay (``--model``) and the demo all choose this way.
    """
    if model_path:
        path = Path(model_path).expanduser()
        if not path.exists():  # anything else that is no model file: the estimator says what it is
            raise ModelLoadError(f"model file not found: {path}")
        return path
    found = find_default_model(model_dirs())
    if found is None:
        looked = ", ".join(str(d) for d in model_dirs())
        raise ModelLoadError(f"no model given and no *.onnx model in {looked}: set model_path (--model)")
    return found


def load_params_file(path: Path) -> dict[str, Any]:
    """ROS 2 parameter YAML (``/**`` or node-name key, ``ros__parameters``) -> flat name -> value.

    Nested maps become dotted names (``input_qos: {depth: 1}`` -> ``input_qos.depth``), as in ROS.
    Raises ParameterError naming the file.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:  # safe_load: !!python tags are refused
        text = " ".join(str(err).split())
        raise ParameterError(f"cannot read parameter file {path}: {text}") from None
    params: dict[str, Any] = {}

    def flatten(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                flatten(f"{prefix}{key}.", item)
        else:
            params[prefix[:-1]] = value

    for node_key, section in (data or {}).items() if isinstance(data, dict) else []:
        if node_key in ("/**", "**", NODE_NAME, f"/{NODE_NAME}") and isinstance(section, dict):
            flatten("", section.get("ros__parameters", {}))
    if not params:
        raise ParameterError(
            f"parameter file {path} has no '/**' or '{NODE_NAME}' section with ros__parameters"
        )
    return params


def parse_param_override(text: str) -> tuple[str, Any]:
    """``name:=value`` (value read as YAML, like ``ros2 run ... -p``) -> (name, value)."""
    import yaml

    name, sep, value = text.partition(":=")
    if not sep or not name.strip():
        raise ParameterError(f"expected name:=value, got {text!r}")
    return name.strip(), yaml.safe_load(value)
