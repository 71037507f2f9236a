"""rclpy.context.Context: init/shutdown state, the parsed --ros-args, and the in-process graph."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from rclpy._arguments import RosArguments, parse_ros_args


class Context:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._initialized = False
        self._is_shutdown = False
        self._callbacks: list[Callable[[], None]] = []
        self.ros_arguments = RosArguments()
        # Stand-in graph: every publisher and subscription of this context (delivery in-process).
        self.graph_lock = threading.RLock()
        self.publishers: list[Any] = []
        self.subscriptions: list[Any] = []
        # Executors wait on this condition; publishers and timers notify it.
        self.work_available = threading.Condition(threading.Lock())

    def init(
        self, args: list[str] | None = None, *, initialize_logging: bool = True, domain_id: int | None = None
    ):
        with self._lock:
            if self._initialized:
                raise RuntimeError("Context.init() must only be called once")
            # As rcl_init: no args means the process's command line.
            self.ros_arguments = parse_ros_args(sys.argv if args is None else args)
            self._initialized = True

    def ok(self) -> bool:
        with self._lock:
            return self._initialized and not self._is_shutdown

    def shutdown(self) -> None:
        with self._lock:
            if not self.ok():
                raise RuntimeError("Context must be initialized before it can be shutdown")
            self._is_shutdown = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()
        self.notify()

    def try_shutdown(self) -> None:
        with self._lock:
            if not self.ok():
                return
        self.shutdown()

    def on_shutdown(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if self._is_shutdown:
                callback()
            else:
                self._callbacks.append(callback)

    def notify(self) -> None:
        with self.work_available:
            self.work_available.notify_all()
