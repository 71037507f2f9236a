"""rclpy.timer.Timer: fires every period (on the node's clock) when an executor spins."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class Timer:
    def __init__(
        self,
        callback: Callable[[], Any],
        callback_group: Any,
        timer_period_ns: int,
        clock: Any,
        *,
        context: Any,
    ) -> None:
        self.callback = callback
        self.callback_group = callback_group
        self._clock = clock
        self._context = context
        self._period_ns = int(timer_period_ns)
        self._canceled = False
        self._lock = threading.Lock()
        self._last_call_ns = time.monotonic_ns()

    @property
    def clock(self) -> Any:
        return self._clock

    @property
    def timer_period_ns(self) -> int:
        return self._period_ns

    @timer_period_ns.setter
    def timer_period_ns(self, value: int) -> None:
        self._period_ns = int(value)

    def is_ready(self) -> bool:
        return not self._canceled and self.time_until_next_call() <= 0

    def is_canceled(self) -> bool:
        return self._canceled

    def cancel(self) -> None:
        self._canceled = True

    def reset(self) -> None:
        self._canceled = False
        self._last_call_ns = time.monotonic_ns()

    def time_since_last_call(self) -> int:
        return time.monotonic_ns() - self._last_call_ns

    def time_until_next_call(self) -> int | None:
        if self._canceled:
            return None
        return self._last_call_ns + self._period_ns - time.monotonic_ns()

    def _call(self) -> None:
        with self._lock:
            self._last_call_ns = time.monotonic_ns()
        self.callback()

    def destroy(self) -> None:
        self._canceled = True
