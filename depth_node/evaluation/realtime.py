"""Time in the replay: latency statistics, and the node's newest-frame-wins queue replayed in real time.

With ``--realtime`` the replay feeds frames at their recorded arrival times and drops the frames the
node would drop (:class:`NewestFrameGate`), on a clock that does not count the replay's own work
(scoring, bag writing: :class:`PausableClock`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np


def latency_stats(samples_s: Sequence[float]) -> dict[str, float]:
    """mean / p50 / p95 / p99 / max of a list of durations in seconds, reported in milliseconds."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    if ms.size == 0:
        return {}
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "mean": float(ms.mean()),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(ms.max()),
    }


class NewestFrameGate:
    """The node's input queue of depth one (newest frame wins), replayed against recorded arrival times.

    Frames are pushed in stream order with their arrival time; :meth:`push` returns the frame the
    node would process next, once it is known that no newer frame superseded it. A frame is
    superseded when the next one arrives before the node finished the frame before it.
    Times are seconds on any clock shared by arrivals and :meth:`finished`.
    """

    def __init__(self) -> None:
        self._pending: tuple[Any, float] | None = None
        self._busy_until = -math.inf
        self.dropped = 0

    def push(self, item: Any, arrival: float) -> tuple[Any, float] | None:
        previous, self._pending = self._pending, (item, arrival)
        if previous is None:
            return None
        if arrival <= self._busy_until:  # both arrived while the node was busy: the newer one wins
            self.dropped += 1
            return None
        return previous

    def finished(self, time_s: float) -> None:
        """The node finished a frame at ``time_s``."""
        self._busy_until = time_s

    def flush(self) -> tuple[Any, float] | None:
        pending, self._pending = self._pending, None
        return pending


class PausableClock:
    """Seconds since start, not counting paused stretches (replay-only work: scoring, bag writing)."""

    def __init__(self) -> None:
        self._origin = time.perf_counter()
        self._paused_total = 0.0
        self._paused_at: float | None = None

    def now(self) -> float:
        at = self._paused_at if self._paused_at is not None else time.perf_counter()
        return at - self._origin - self._paused_total

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.perf_counter()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._paused_total += time.perf_counter() - self._paused_at
            self._paused_at = None


def wait_until(clock: PausableClock, t: float) -> None:
    """Real-time replay: sleep until the recorded arrival time of the next frame."""
    delay = t - clock.now()
    if delay > 0:
        time.sleep(delay)
