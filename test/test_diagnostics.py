"""The node's statistics and diagnostics content (ros/diagnostics.py), without rclpy."""

from __future__ import annotations

import math

import pytest

from depth_node.ros.diagnostics import OK, WARN, FrameStats, LogThrottle, diagnostic_summary, percentile
from depth_node.runtime.frame import DROP_REASONS


class FakeClock:
    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


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


def test_published_frames_are_counted_by_how_the_network_was_fed():
    """A two-frame model's first frame and its resets are fed the same frame twice ("first"): the
    diagnostics show how many of the published frames really had a previous frame."""
    stats = FrameStats(clock=FakeClock())
    for mode in ["first", "two", "two", "first", "two"]:
        stats.frame_out(stats.frame_in(), latency=0.01, frame_mode=mode)
    stats.frame_out(stats.frame_in(), latency=0.01)  # a single-frame model's frames: the default
    snap = stats.snapshot()
    assert snap.published_by_mode == {"single": 1, "first": 2, "two": 3}
    values = dict(_summary(stats).values)
    assert (values["frames first-frame"], values["frames two-frame"], values["frames single-frame"]) == (
        "2",
        "3",
        "1",
    )
    with pytest.raises(KeyError, match="unknown frame mode 'three'"):
        stats.frame_out(0.0, None, frame_mode="three")


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
    assert math.isnan(percentile([], 50))
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0
