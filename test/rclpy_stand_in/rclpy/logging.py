"""rclpy.logging: named loggers with rclpy's filters, printed to stderr in rcutils' default format.

As in rclpy's RcutilsLogger, the filters (``throttle_duration_sec``, ``once``, ``skip_first``)
keep their state per call site (file and line of the caller), not per message.
"""

from __future__ import annotations

import inspect
import sys
import threading
import time
from enum import IntEnum
from typing import Any


class LoggingSeverity(IntEnum):
    UNSET = 0
    DEBUG = 10
    INFO = 20
    WARN = 30
    ERROR = 40
    FATAL = 50


_SUPPORTED_KWARGS = {"throttle_duration_sec", "throttle_time_source_type", "once", "skip_first"}
_contexts: dict[tuple[str, str, int], dict[str, Any]] = {}
_levels: dict[str, LoggingSeverity] = {}
_lock = threading.Lock()


class RcutilsLogger:
    def __init__(self, name: str = "") -> None:
        self.name = name

    def get_child(self, name: str) -> RcutilsLogger:
        if not name:
            raise ValueError("Child logger name must not be empty.")
        return RcutilsLogger(f"{self.name}.{name}" if self.name else name)

    def set_level(self, level: LoggingSeverity | int) -> None:
        _levels[self.name] = LoggingSeverity(level)

    def get_effective_level(self) -> LoggingSeverity:
        return _levels.get(self.name, _levels.get("", LoggingSeverity.INFO))

    def is_enabled_for(self, severity: LoggingSeverity | int) -> bool:
        return LoggingSeverity(severity) >= self.get_effective_level()

    def log(self, message: str, severity: LoggingSeverity | int, **kwargs: Any) -> bool:
        if not isinstance(message, str):
            raise TypeError(f"Logging message must be a str, got {type(message).__name__}")
        unknown = set(kwargs) - _SUPPORTED_KWARGS - {"name"}
        if unknown:
            raise TypeError(f"parameter(s) {sorted(unknown)} are not supported logging filters")
        severity = LoggingSeverity(severity)
        # The first frame outside this file is the call site (as rclpy's _find_caller).
        caller = inspect.currentframe()
        while caller is not None and caller.f_code.co_filename == __file__:
            caller = caller.f_back
        key = (self.name, caller.f_code.co_filename, caller.f_lineno) if caller else (self.name, "", 0)
        with _lock:
            context = _contexts.setdefault(key, {"count": 0, "throttle_last": None, "logged_once": False})
            context["count"] += 1
            if kwargs.get("skip_first") and context["count"] == 1:
                return False
            throttle = kwargs.get("throttle_duration_sec")
            if throttle is not None:
                now = time.monotonic()
                if context["throttle_last"] is not None and now < context["throttle_last"] + float(throttle):
                    return False
                context["throttle_last"] = now
            if kwargs.get("once"):
                if context["logged_once"]:
                    return False
                context["logged_once"] = True
        if not self.is_enabled_for(severity):
            return False
        name = kwargs.get("name", self.name)
        sys.stderr.write(f"[{severity.name}] [{time.time():.9f}] [{name}]: {message}\n")
        sys.stderr.flush()
        return True

    def debug(self, message: str, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.DEBUG, **kwargs)

    def info(self, message: str, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.INFO, **kwargs)

    def warning(self, message: str, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.WARN, **kwargs)

    def warn(self, message: str, **kwargs: Any) -> bool:
        """Deprecated in rclpy in favour of warning(); kept because rclpy keeps it."""
        return self.log(message, LoggingSeverity.WARN, **kwargs)

    def error(self, message: str, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.ERROR, **kwargs)

    def fatal(self, message: str, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.FATAL, **kwargs)


def get_logger(name: str) -> RcutilsLogger:
    if not name:
        raise ValueError("Logger name must not be empty.")
    return RcutilsLogger(name)
