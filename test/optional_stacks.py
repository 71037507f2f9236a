"""Which test files need an optional stack (torch for training, matplotlib for the replay's report).

A ROS machine that runs the node has the runtime only, and ``colcon test`` there must not fail on
test files it cannot import. ``conftest.py`` leaves such files out of collection, file by file and
before any plugin imports them: launch_testing's pytest plugin imports every test module while
collecting, so a module-level ``importorskip`` there would skip the whole folder.
``test_package_files.py`` checks that every file not marked here imports without these stacks.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

OPTIONAL_STACKS = {
    "torch": re.compile(r"^\s*(import torch|from torch\b|import training|from training\b)", re.M),
    "matplotlib": re.compile(
        r"^\s*(import matplotlib|from matplotlib\b"
        r"|from depth_node\.evaluation(\.(replay|report|demo|replay_cli))? import)",
        re.M,
    ),
}


def stacks_needed(test_file: Path) -> set[str]:
    """The optional stacks a test file imports (at any indentation: a local import needs it too)."""
    text = test_file.read_text()
    return {stack for stack, pattern in OPTIONAL_STACKS.items() if pattern.search(text)}


def missing_stacks() -> set[str]:
    return {stack for stack in OPTIONAL_STACKS if importlib.util.find_spec(stack) is None}


def left_out(test_dir: Path) -> dict[str, list[str]]:
    """Test file name -> the stacks it needs that this Python lacks (empty where all are installed)."""
    missing = missing_stacks()
    return {
        path.name: sorted(needed & missing)
        for path in sorted(test_dir.glob("test_*.py"))
        if (needed := stacks_needed(path)) & missing
    }
