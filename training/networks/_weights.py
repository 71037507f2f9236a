"""Strict loading of published ImageNet weights into our encoders, with a readable mismatch error."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn


def load_state_dict_file(
    path: str | Path, expected: str = "a torchvision state dict"
) -> dict[str, torch.Tensor]:
    """A state dict from a weights file (``{"state_dict": ...}`` unwrapped, DDP's ``module.`` removed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist (expected {expected})")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"weights file {path}: expected a state dict, got {type(state).__name__}")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_exact_state_dict(
    module: nn.Module, state: Mapping[str, torch.Tensor], what: str, hint: str = ""
) -> None:
    """Load ``state`` into ``module``, refusing missing, unexpected or mis-shaped tensors.

    ``what`` names the weights in the error ("resnet18 weights ... torchvision's names"); ``hint`` is
    appended to a shape mismatch (e.g. "STDC1 vs STDC2?").
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"{what}: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    bad = [k for k in own if own[k].shape != state[k].shape]
    if bad:
        raise ValueError(f"{what}: shape mismatch for {bad[:5]}{' ' + hint if hint else ''}")
    module.load_state_dict(dict(state), strict=True)
