"""rclpy.utilities: the default context, ok(), shutdown(), try_shutdown()."""

from __future__ import annotations

import threading

from rclpy.context import Context

_default_context: Context | None = None
_lock = threading.Lock()


def get_default_context(*, shutting_down: bool = False) -> Context:
    """The global default context; shutting it down replaces it, so rclpy.init() works again."""
    global _default_context
    with _lock:
        if _default_context is None:
            _default_context = Context()
        context = _default_context
        if shutting_down:
            _default_context = None
        return context


def ok(*, context: Context | None = None) -> bool:
    return (get_default_context() if context is None else context).ok()


def shutdown(*, context: Context | None = None) -> None:
    (get_default_context(shutting_down=True) if context is None else context).shutdown()


def try_shutdown(*, context: Context | None = None) -> None:
    if context is None:
        if get_default_context().ok():
            get_default_context(shutting_down=True).shutdown()
    else:
        context.try_shutdown()


def remove_ros_args(args: list[str] | None = None) -> list[str]:
    """The arguments outside --ros-args ... -- sections."""
    kept: list[str] = []
    in_ros_args = False
    for token in args or []:
        if token == "--ros-args":
            in_ros_args = True
        elif token == "--" and in_ros_args:
            in_ros_args = False
        elif not in_ros_args:
            kept.append(token)
    return kept
