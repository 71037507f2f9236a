"""What the node reports: frame and drop counters, rates, latency percentiles, the diagnostics status.

ROS-free (the node turns :class:`DiagnosticSummary` into a diagnostic_msgs/DiagnosticStatus), so the
wording and the levels are tested without rclpy. Drop reasons are the frame path's
(:data:`depth_node.runtime.frame.DROP_REASONS`), so the node and the replay count the same names.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from depth_node.runtime.frame import DROP_REASONS, RESET_REASONS
from depth_node.runtime.pipeline import FRAME_MODES


# --------------------------------------------------------------------------------------------------
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
    resets_by_reason: dict[str, int]  # processed frames that restarted the temporal state (stamps)
    published_by_mode: dict[str, int]  # published frames by how the network was fed (FRAME_MODES)
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
        self.resets_by_reason = dict.fromkeys(RESET_REASONS, 0)
        self.published_by_mode = dict.fromkeys(FRAME_MODES, 0)
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

    def frame_out(self, arrival: float, latency: float | None, frame_mode: str = "single") -> None:
        """Count a published frame that arrived at ``arrival``; ``latency``: stamp -> publish, seconds;
        ``frame_mode``: how the network was fed (one of FRAME_MODES; a two-frame model's "first" frames
        are its resets and starts, fed the same frame twice)."""
        if frame_mode not in self.published_by_mode:
            raise KeyError(f"unknown frame mode {frame_mode!r}; known: {', '.join(FRAME_MODES)}")
        now = self._clock()
        with self._lock:
            self.frames_out += 1
            self.published_by_mode[frame_mode] += 1
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

    def reset(self, reason: str) -> None:
        """Count a processed frame whose stamp restarted the temporal state (one of RESET_REASONS)."""
        with self._lock:
            self.resets_by_reason[reason] += 1

    def snapshot(self) -> StatsSnapshot:
        now = self._clock()
        with self._lock:
            in_times, out_times = list(self._in_times), list(self._out_times)
            latencies, processing = list(self._latencies), list(self._processing)
            by_reason = dict(self.dropped_by_reason)
            resets = dict(self.resets_by_reason)
            by_mode = dict(self.published_by_mode)
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
            resets_by_reason=resets,
            published_by_mode=by_mode,
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
        *((f"reset: {reason}", str(count)) for reason, count in stats.resets_by_reason.items()),
        *((f"frames {mode}-frame", str(count)) for mode, count in stats.published_by_mode.items()),
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
