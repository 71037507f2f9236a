"""The ROS-free part of the depth node: parameters, the frame mailbox, the worker, statistics.

``depth_node/node.py`` is thin rclpy glue around what lives here, so everything below is tested
without ROS: the parameter table (declared by the node, mirrored by ``config/depth.yaml``), the
validation that turns parameter values into :class:`NodeSettings`, the one-slot mailbox with its
inference thread (callbacks never block the executor; an unprocessed frame is replaced by a newer
one and counted as dropped), frame/drop/latency statistics, and the content of the diagnostics.
"""

from __future__ import annotations

import array
import collections
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from depth_node.conversions import DEPTH_ENCODINGS
from depth_node.estimator import PROVIDER_NAMES
from depth_node.messages import DepthOutputs, MessageTypes, build_outputs
from depth_node.pipeline import OUTPUT_RESOLUTIONS, SCALE_MODES, PipelineConfig

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
        "depth_image_topic", "depth/image", "output depth image topic (relative: in the node's namespace)"
    ),
    ParamSpec("depth_camera_info_topic", "depth/camera_info", "output CameraInfo of the depth image"),
    ParamSpec("points_topic", "depth/points", "output point cloud topic (sensor_msgs/PointCloud2)"),
    # Depth image.
    ParamSpec(
        "output_resolution",
        "camera",
        "depth image size: camera (the camera image's, or the crop's) or model (the network's, smaller)",
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
        1,
        "keep every n-th row and column in the cloud",
        read_only=False,
        value_range=(1, 32),
    ),
    ParamSpec("points_color", True, "add the camera's colour (rgb field) to the cloud", read_only=False),
    ParamSpec(
        "points_organized",
        True,
        "organized cloud (image grid, NaN for invalid points) or only valid points",
        read_only=False,
    ),
    ParamSpec(
        "min_range",
        0.5,
        "closest point kept in the cloud, metres from the camera",
        read_only=False,
        value_range=(0.0, 1000.0),
    ),
    ParamSpec(
        "max_range",
        80.0,
        "farthest point kept in the cloud, metres from the camera",
        read_only=False,
        value_range=(0.0, 1000.0),
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
    ParamSpec("output_qos.depth", 1, "publisher queue depth", value_range=(1, 100)),
)
PARAMETER_NAMES = tuple(spec.name for spec in PARAMETERS)
_SPECS = {spec.name: spec for spec in PARAMETERS}


@dataclass(frozen=True)
class NodeSettings:
    """Validated parameter values (see :data:`PARAMETERS` for their meaning)."""

    model_path: str
    providers: tuple[str, ...]
    threads: int
    tensorrt_cache_dir: str | None
    tensorrt_fp16: bool
    image_topic: str
    camera_info_topic: str
    compressed: bool
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
        tensorrt_cache_dir=str(Path(cache).expanduser()) if cache else None,
        tensorrt_fp16=v["tensorrt_fp16"],
        image_topic=v["image_topic"],
        camera_info_topic=v["camera_info_topic"],
        compressed=v["compressed"],
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
        input_reliability=v["input_qos.reliability"],
        input_depth=v["input_qos.depth"],
        output_reliability=v["output_qos.reliability"],
        output_depth=v["output_qos.depth"],
    )


def build_frame_outputs(
    settings: NodeSettings,
    result: Any,
    header: Any,
    camera_info: Any,
    types: MessageTypes,
    rgb: np.ndarray | None,
    cloud: bool,
) -> DepthOutputs:
    """One frame's output messages as the node's settings ask for them (the node and the replay)."""
    return build_outputs(
        result,
        header,
        camera_info,
        types,
        cloud=cloud,
        stride=settings.points_stride,
        min_range=settings.min_range,
        max_range=settings.max_range,
        organized=settings.points_organized,
        rgb=rgb if settings.points_color else None,
        encoding=settings.depth_encoding,
    )


def find_default_model(models_dirs: Iterable[Path]) -> Path | None:
    """The demo model: the first folder's ``*.onnx`` whose name says demo, else its first ``*.onnx``."""
    for folder in models_dirs:
        candidates = sorted(Path(folder).glob("*.onnx"))
        if candidates:
            demos = [c for c in candidates if "demo" in c.name.lower()]
            return (demos or candidates)[0]
    return None


# --------------------------------------------------------------------------------------------------
# Latest-frame mailbox and the inference worker
# --------------------------------------------------------------------------------------------------
T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A one-slot mailbox: ``put`` replaces the waiting item (and returns it), ``get`` waits for one.

    The producer (a subscription callback) never blocks; the consumer always gets the newest item.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: T | None = None
        self._closed = False

    def put(self, item: T) -> T | None:
        """Store ``item``; return the item it replaced (not processed: the caller counts it dropped)."""
        with self._condition:
            replaced, self._item = self._item, item
            self._condition.notify()
            return replaced

    def get(self, timeout: float | None = None) -> T | None:
        """The waiting item (the slot is then empty), or None after ``timeout`` or once closed."""
        with self._condition:
            if self._item is None and not self._closed:
                self._condition.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> T | None:
        """Wake the consumer for good; return the item nobody will process."""
        with self._condition:
            self._closed = True
            item, self._item = self._item, None
            self._condition.notify_all()
            return item

    @property
    def closed(self) -> bool:
        return self._closed


class InferenceWorker(Generic[T]):
    """One thread that takes items from a :class:`LatestSlot` and processes them, one at a time.

    An exception from ``process`` goes to ``on_error`` (the thread keeps running): a bad frame must
    never stop the node.
    """

    def __init__(
        self,
        slot: LatestSlot[T],
        process: Callable[[T], None],
        on_error: Callable[[T, Exception], None],
        name: str = "depth_inference",
    ) -> None:
        self._slot = slot
        self._process = process
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._busy = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._slot.closed:
            item = self._slot.get(timeout=0.5)
            if item is None:
                continue
            self._busy.set()
            try:
                self._process(item)
            except Exception as error:  # reported and counted by on_error
                self._on_error(item, error)
            finally:
                self._busy.clear()

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> bool:
        """Close the slot and join the thread (after the frame in progress); True once it ended."""
        self._slot.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()


# --------------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------------
# Why a frame was not published. "superseded": a newer frame arrived before inference took it.
DROP_REASONS = (
    "superseded",
    "no_camera_info",
    "bad_encoding",
    "size_mismatch",
    "bad_camera_info",
    "nan",
    "error",
)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of ``values``, NaN when empty."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else math.nan


def _count_recent(times: Sequence[float], now: float, window: float) -> int:
    return sum(1 for t in times if now - t <= window)


@dataclass(frozen=True)
class StatsSnapshot:
    frames_in: int
    frames_out: int
    dropped: int
    dropped_by_reason: dict[str, int]
    input_rate: float  # Hz over the last rate window (or since the first frame, when shorter)
    output_rate: float  # Hz over the same span, so output/input is the fraction published
    recent_inputs: int  # frames in that span: the rates mean little below a handful
    latency_p50: float  # seconds, image stamp -> publish (node clock)
    latency_p95: float
    processing_p50: float  # seconds, arrival -> publish
    processing_p95: float
    seconds_since_input: float  # inf before the first frame


class FrameStats:
    """Thread-safe frame counters, drop reasons, rates and latency percentiles (bounded memory)."""

    def __init__(
        self, rate_window: float = 5.0, history: int = 512, clock: Callable[[], float] = time.monotonic
    ):
        self._lock = threading.Lock()
        self._clock = clock
        self.rate_window = rate_window
        self.frames_in = 0
        self.frames_out = 0
        self.dropped_by_reason = dict.fromkeys(DROP_REASONS, 0)
        self._in_times: collections.deque[float] = collections.deque(maxlen=history)
        self._out_times: collections.deque[float] = collections.deque(maxlen=history)
        self._latencies: collections.deque[float] = collections.deque(maxlen=history)
        self._processing: collections.deque[float] = collections.deque(maxlen=history)
        self._first_in: float | None = None

    def frame_in(self) -> float:
        """Count an arriving frame; return its arrival time (the clock's)."""
        now = self._clock()
        with self._lock:
            self.frames_in += 1
            self._in_times.append(now)
            if self._first_in is None:
                self._first_in = now
        return now

    def frame_out(self, arrival: float, latency: float | None) -> None:
        """Count a published frame that arrived at ``arrival``; ``latency``: stamp -> publish, seconds."""
        now = self._clock()
        with self._lock:
            self.frames_out += 1
            self._out_times.append(now)
            self._processing.append(now - arrival)
            if latency is not None and math.isfinite(latency):
                self._latencies.append(latency)

    def drop(self, reason: str) -> int:
        """Count a dropped frame; return how many were dropped for this reason so far."""
        if reason not in self.dropped_by_reason:
            raise KeyError(f"unknown drop reason {reason!r}; known: {', '.join(DROP_REASONS)}")
        with self._lock:
            self.dropped_by_reason[reason] += 1
            return self.dropped_by_reason[reason]

    def snapshot(self) -> StatsSnapshot:
        now = self._clock()
        with self._lock:
            in_times, out_times = list(self._in_times), list(self._out_times)
            latencies, processing = list(self._latencies), list(self._processing)
            by_reason = dict(self.dropped_by_reason)
            frames_in, frames_out = self.frames_in, self.frames_out
            first_in = self._first_in
        # One span for both rates: the rate window, or the time since the first frame when shorter.
        span = min(self.rate_window, now - first_in) if first_in is not None else 0.0
        recent_in = _count_recent(in_times, now, self.rate_window)
        recent_out = _count_recent(out_times, now, self.rate_window)
        return StatsSnapshot(
            frames_in=frames_in,
            frames_out=frames_out,
            dropped=sum(by_reason.values()),
            dropped_by_reason=by_reason,
            input_rate=recent_in / span if span > 0 else 0.0,
            output_rate=recent_out / span if span > 0 else 0.0,
            recent_inputs=recent_in,
            latency_p50=percentile(latencies, 50),
            latency_p95=percentile(latencies, 95),
            processing_p50=percentile(processing, 50),
            processing_p95=percentile(processing, 95),
            seconds_since_input=now - in_times[-1] if in_times else math.inf,
        )


class LogThrottle:
    """At most one log line per key and period (rclpy throttles per call site, we need per reason)."""

    def __init__(self, period: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def should_log(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period:
                return False
            self._last[key] = now
            return True


# --------------------------------------------------------------------------------------------------
# Diagnostics content
# --------------------------------------------------------------------------------------------------
OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels (the node maps them to its constants)
RATE_WARN_RATIO = 0.9  # WARN when the output rate is below this fraction of the camera's rate
MIN_FRAMES_FOR_RATE = 10  # compare rates only over at least this many recent frames
STALE_INPUT_S = 5.0


@dataclass
class DiagnosticSummary:
    level: int
    message: str
    values: list[tuple[str, str]] = field(default_factory=list)


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000.0:.1f}"


def diagnostic_summary(
    stats: StatsSnapshot,
    *,
    image_topic: str,
    camera_info_topic: str,
    waiting_for_camera_info: bool,
    provider: str,
    model_name: str,
    scale_mode: str,
    scale: float | None,
    new_bad_drops: Mapping[str, int] | None = None,
) -> DiagnosticSummary:
    """Level, message and key/values of the node's DiagnosticStatus.

    ``new_bad_drops``: frames dropped since the previous report for reasons other than being
    superseded (bad encoding, size mismatch, ...) - those make the status WARN for one report.
    """
    values = [
        ("frames in", str(stats.frames_in)),
        ("frames out", str(stats.frames_out)),
        ("frames dropped", str(stats.dropped)),
        *((f"dropped: {reason}", str(count)) for reason, count in stats.dropped_by_reason.items()),
        ("input rate (Hz)", f"{stats.input_rate:.2f}"),
        ("output rate (Hz)", f"{stats.output_rate:.2f}"),
        ("latency p50 (ms)", _ms(stats.latency_p50)),
        ("latency p95 (ms)", _ms(stats.latency_p95)),
        ("processing p50 (ms)", _ms(stats.processing_p50)),
        ("processing p95 (ms)", _ms(stats.processing_p95)),
        ("provider", provider),
        ("model", model_name),
        ("scale mode", scale_mode),
        ("scale", "n/a" if scale is None else f"{scale:.4g}"),
        ("image topic", image_topic),
        ("camera_info topic", camera_info_topic),
    ]
    bad = {reason: n for reason, n in (new_bad_drops or {}).items() if n > 0}
    if stats.frames_in == 0:
        return DiagnosticSummary(WARN, f"no images received on {image_topic}", values)
    if waiting_for_camera_info:
        return DiagnosticSummary(WARN, f"waiting for camera_info on {camera_info_topic}", values)
    if stats.seconds_since_input > STALE_INPUT_S:
        return DiagnosticSummary(
            WARN, f"no images for {stats.seconds_since_input:.0f} s on {image_topic}", values
        )
    if bad:
        detail = ", ".join(f"{reason}: {n}" for reason, n in sorted(bad.items()))
        return DiagnosticSummary(WARN, f"dropping bad frames ({detail})", values)
    if stats.recent_inputs >= MIN_FRAMES_FOR_RATE and stats.output_rate < RATE_WARN_RATIO * stats.input_rate:
        return DiagnosticSummary(
            WARN,
            f"output {stats.output_rate:.1f} Hz is below the camera's {stats.input_rate:.1f} Hz "
            f"(inference too slow; {stats.dropped_by_reason['superseded']} frames superseded)",
            values,
        )
    return DiagnosticSummary(OK, f"publishing depth at {stats.output_rate:.1f} Hz", values)
