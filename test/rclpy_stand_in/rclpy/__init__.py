"""A stand-in for the subset of rclpy that depth_node's node uses (tests only; see README.md).

Names and signatures follow rclpy (Humble/Jazzy). Entities of one context talk to each other
in-process; there is no DDS, no discovery delay and no other process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rclpy.context import Context
from rclpy.parameter import Parameter
from rclpy.utilities import get_default_context, ok, try_shutdown
from rclpy.utilities import shutdown as _shutdown

if TYPE_CHECKING:
    from rclpy.executors import Executor
    from rclpy.node import Node

__all__ = [
    "Context",
    "Parameter",
    "create_node",
    "get_default_context",
    "get_global_executor",
    "init",
    "ok",
    "shutdown",
    "spin",
    "spin_once",
    "try_shutdown",
]

_global_executor: Executor | None = None


def init(
    *,
    args: list[str] | None = None,
    context: Context | None = None,
    domain_id: int | None = None,
    signal_handler_options: object | None = None,
) -> None:
    """Initialize ROS communications for a context (parses --ros-args)."""
    (get_default_context() if context is None else context).init(args, domain_id=domain_id)


def shutdown(*, context: Context | None = None, uninstall_handlers: bool | None = None) -> None:
    """Shut a context down (the default one: also the global executor)."""
    global _global_executor
    _shutdown(context=context)
    if context is None and _global_executor is not None:
        _global_executor.shutdown()
        _global_executor = None


def get_global_executor() -> Executor:
    global _global_executor
    if _global_executor is None or _global_executor.context is not get_default_context():
        from rclpy.executors import SingleThreadedExecutor

        _global_executor = SingleThreadedExecutor()
    return _global_executor


def create_node(node_name: str, **kwargs: object) -> Node:
    from rclpy.node import Node

    return Node(node_name, **kwargs)  # type: ignore[arg-type]


def spin_once(node: Node, *, executor: Executor | None = None, timeout_sec: float | None = None) -> None:
    executor = get_global_executor() if executor is None else executor
    executor.add_node(node)
    try:
        executor.spin_once(timeout_sec=timeout_sec)
    finally:
        executor.remove_node(node)


def spin(node: Node, executor: Executor | None = None) -> None:
    executor = get_global_executor() if executor is None else executor
    executor.add_node(node)
    try:
        while executor.context.ok():
            executor.spin_once()
    finally:
        executor.remove_node(node)
