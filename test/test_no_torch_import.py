"""The runtime must import without torch (the car has no PyTorch) and without rclpy."""

from __future__ import annotations

import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import depth_node

ROOT = Path(__file__).resolve().parents[1]
ROS_MODULES = {
    "depth_node.ros.node",
    "depth_node.ros.eval_node",
    "depth_node.ros.lifecycle_node",
}  # the only modules allowed to need rclpy
# The replay and its report need matplotlib (the `replay` extra); a runtime-only machine lacks it.
REPORT_MODULES = {
    "depth_node.evaluation.report",
    "depth_node.evaluation.replay",
    "depth_node.evaluation.replay_cli",
    "depth_node.evaluation.demo",
}


def _runtime_modules() -> list[str]:
    names = [
        info.name
        for info in pkgutil.walk_packages(depth_node.__path__, prefix="depth_node.")
        if info.name not in ROS_MODULES
        and (info.name not in REPORT_MODULES or importlib.util.find_spec("matplotlib") is not None)
    ]
    return sorted(["depth_node", *names])


def test_runtime_modules_do_not_import_torch() -> None:
    modules = _runtime_modules()
    assert "depth_node.runtime.estimator" in modules and "depth_node.runtime.pipeline" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.') or m == 'rclpy')\n"
        "assert not bad, f'runtime imported {bad}'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
