"""rclpy.executors: a single-threaded executor over the stand-in graph."""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from rclpy.context import Context
from rclpy.utilities import get_default_context


class TimeoutException(Exception):
    """Signal that a timeout occurred."""


class ShutdownException(Exception):
    """Signal that an executor was shut down."""


class ExternalShutdownException(Exception):
    """Context has been shutdown."""


class Executor:
    def __init__(self, *, context: Context | None = None) -> None:
        self._context = get_default_context() if context is None else context
        self._nodes: list[Any] = []
        self._nodes_lock = threading.RLock()
        self._is_shutdown = False
        # What one wait found ready, served one per spin_once before the next wait, as rclpy serves
        # a wait set: every ready entity gets its turn, none starves while another stays busy.
        self._ready: collections.deque[tuple[str, Any]] = collections.deque()

    @property
    def context(self) -> Context:
        return self._context

    def add_node(self, node: Any) -> bool:
        with self._nodes_lock:
            if node in self._nodes:
                return False
            self._nodes.append(node)
            node.executor = self
        self.wake()
        return True

    def remove_node(self, node: Any) -> None:
        with self._nodes_lock:
            if node in self._nodes:
                self._nodes.remove(node)
            mine = set(map(id, [*node.timers, *node.subscriptions]))
            self._ready = collections.deque(r for r in self._ready if id(r[1]) not in mine)

    def get_nodes(self) -> list[Any]:
        with self._nodes_lock:
            return list(self._nodes)

    def wake(self) -> None:
        self._context.notify()

    def shutdown(self, timeout_sec: float | None = None) -> bool:
        self._is_shutdown = True
        with self._nodes_lock:
            self._nodes.clear()
            self._ready.clear()
        self.wake()
        return True

    def spin(self) -> None:
        while self._context.ok() and not self._is_shutdown:
            self.spin_once()

    def _wait_set(self) -> list[tuple[str, Any]]:
        """Every ready entity, (kind, entity): timers first, then subscriptions in creation order."""
        nodes = self.get_nodes()
        timers = [("timer", t) for node in nodes for t in node.timers if t.is_ready()]
        subscriptions = [("subscription", s) for n in nodes for s in n.subscriptions if s._has_message()]
        return timers + subscriptions

    def _next_ready(self) -> tuple[str, Any] | None:
        if not self._ready:
            self._ready.extend(self._wait_set())
        return self._ready.popleft() if self._ready else None

    def _time_to_next_timer(self) -> float | None:
        waits = [
            timer.time_until_next_call()
            for node in self.get_nodes()
            for timer in node.timers
            if not timer.is_canceled()
        ]
        waits = [w for w in waits if w is not None]
        return max(0.0, min(waits) / 1e9) if waits else None

    def spin_once(self, timeout_sec: float | None = None) -> None:
        """Run at most one ready callback, waiting up to timeout_sec (None: until one is ready)."""
        deadline = None if timeout_sec is None or timeout_sec < 0 else time.monotonic() + timeout_sec
        condition = self._context.work_available
        while True:
            if self._is_shutdown:
                return  # rclpy swallows its ShutdownException here
            if not self._context.ok():
                raise ExternalShutdownException()
            ready = self._next_ready()
            if ready is not None:
                kind, entity = ready
                if kind == "timer":
                    if entity.is_ready():  # still due: cancelled or reset since the wait
                        entity._call()
                else:
                    msg = entity._take()
                    if msg is not None:
                        entity.callback(msg)
                return
            wait = self._time_to_next_timer()
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                wait = remaining if wait is None else min(wait, remaining)
            # Short waits: a notification between the readiness check and wait() is never lost for long.
            with condition:
                condition.wait(timeout=0.01 if wait is None else min(wait, 0.01))


class SingleThreadedExecutor(Executor):
    """Runs callbacks in the thread that calls spin()."""
