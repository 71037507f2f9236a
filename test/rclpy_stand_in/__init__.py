"""Switch between the real rclpy and this folder's stand-in, for the node's tests.

``rclpy_or_stand_in()`` is a context manager: where the real rclpy imports, it changes nothing;
elsewhere it puts this folder first on ``sys.path`` and, on exit, removes it again together with
every module imported from it (and ``depth_node.ros.node`` / ``depth_node.ros.eval_node``, which bound
them), so that other test modules never see the stand-in.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

STAND_IN_DIR = Path(__file__).resolve().parent
# Modules that import rclpy or message packages at import time and must be re-imported afterwards.
_DEPENDENT_MODULES = ("depth_node.ros.node", "depth_node.ros.eval_node")


def real_rclpy_available() -> bool:
    """True where the real rclpy (and a sourced ROS 2 environment) is importable."""
    if str(STAND_IN_DIR) in sys.path:
        return False
    try:
        importlib.import_module("rclpy")
    except ImportError:
        return False
    return True


def _loaded_from_stand_in(module: object) -> bool:
    location = getattr(module, "__file__", None)
    return location is not None and Path(location).resolve().is_relative_to(STAND_IN_DIR)


@contextlib.contextmanager
def rclpy_or_stand_in() -> Iterator[bool]:
    """Yield True when the stand-in is in use, False with the real rclpy."""
    if real_rclpy_available():
        yield False
        return
    sys.path.insert(0, str(STAND_IN_DIR))
    for name in ("rclpy", *_DEPENDENT_MODULES):  # e.g. a failed import of the real one
        sys.modules.pop(name, None)
    try:
        yield True
    finally:
        sys.path.remove(str(STAND_IN_DIR))
        for name, module in list(sys.modules.items()):
            if name in _DEPENDENT_MODULES or _loaded_from_stand_in(module):
                del sys.modules[name]
                # ``from depth_node.ros import node`` reads the package attribute, not sys.modules.
                parent, _, child = name.rpartition(".")
                if parent in sys.modules and getattr(sys.modules[parent], child, None) is module:
                    delattr(sys.modules[parent], child)
