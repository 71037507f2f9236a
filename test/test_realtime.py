"""depth_node.evaluation.realtime: latency statistics, the newest-frame-wins gate, the pausable clock."""

from __future__ import annotations

import time

import numpy as np
import pytest

from depth_node.evaluation.realtime import NewestFrameGate, PausableClock, latency_stats, wait_until


def test_newest_frame_wins_gate() -> None:
    """Frames every 100 ms, node takes 250 ms: frames that arrive while busy are superseded."""
    gate = NewestFrameGate()
    processed, now = [], 0.0
    for index in range(8):
        ready = gate.push(index, index * 0.1)
        if ready is not None:
            item, arrival = ready
            now = max(now, arrival) + 0.25
            processed.append(item)
            gate.finished(now)
    item, arrival = gate.flush()
    processed.append(item)
    # 0 done at .25 (1, 2 arrived; 2 wins) -> 2 done at .5 (3, 4, 5 arrived by .5; 5 wins) -> 5 done at .75
    # (6, 7 arrived; 7 wins, flushed at the end).
    assert processed == [0, 2, 5, 7]
    assert gate.dropped == 4


def test_gate_processes_every_frame_when_the_node_keeps_up() -> None:
    gate = NewestFrameGate()
    processed = []
    for index in range(5):
        ready = gate.push(index, index * 0.1)
        if ready is not None:
            processed.append(ready[0])
            gate.finished(ready[1] + 0.05)  # done long before the next frame arrives
    assert gate.push(99, 10.0) == (4, 0.4)
    assert gate.flush() == (99, 10.0) and gate.flush() is None
    assert processed == [0, 1, 2, 3] and gate.dropped == 0


def test_latency_stats_in_milliseconds() -> None:
    stats = latency_stats([0.001 * k for k in range(1, 101)])  # 1 .. 100 ms
    assert stats["mean"] == pytest.approx(50.5)
    assert stats["max"] == pytest.approx(100.0)
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p95"] == pytest.approx(np.percentile(np.arange(1, 101), 95))
    assert stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"]
    assert latency_stats([]) == {}
    assert latency_stats([0.02]) == {"mean": 20.0, "p50": 20.0, "p95": 20.0, "p99": 20.0, "max": 20.0}


def test_pausable_clock_does_not_count_paused_time() -> None:
    clock = PausableClock()
    clock.pause()
    frozen = clock.now()
    time.sleep(0.1)
    assert clock.now() == frozen  # stands still while paused
    clock.pause()  # a second pause is no new pause
    clock.resume()
    clock.resume()  # nor is a second resume
    running = clock.now()
    assert running - frozen < 0.05  # the 100 ms paused stretch is not counted
    time.sleep(0.02)
    assert clock.now() - running >= 0.015


def test_wait_until_sleeps_until_the_arrival_time_only() -> None:
    clock = PausableClock()
    wait_until(clock, clock.now() + 0.05)
    assert clock.now() >= 0.05
    start = time.perf_counter()
    wait_until(clock, clock.now() - 10.0)  # 10 s in the past: no sleep at all
    assert time.perf_counter() - start < 1.0
