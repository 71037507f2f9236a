"""Strict loading of published ImageNet weights into our encoders, with a readable mismatch error."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


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
