"""What makes a resumed training run take the same next step as one that was never interrupted.

The data order of epoch e is a permutation drawn from (seed, e) only (``EpochSampler``); each
sample's augmentation is drawn from (seed, e, index) by the datasets; the Python/numpy/torch RNG
states travel in the checkpoint (``get_rng_state`` / ``set_rng_state``, in a form that
``torch.load(weights_only=True)`` reads).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

# ---------------------------------------------------------------------------------------------
# Data order


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    """The data order of one epoch: a permutation drawn from (seed, epoch) only."""
    return np.random.default_rng([int(seed), int(epoch), 0x5EED]).permutation(num_samples)


class EpochSampler(Sampler[int]):
    """This rank's sample indices for one epoch, optionally skipping the first ``start_step`` batches.

    Like DistributedSampler with drop_last: each rank takes every ``world_size``-th index of the
    epoch permutation, cut to whole batches, so every rank makes the same number of steps.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int,
        epoch: int,
        *,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        start_step: int = 0,
    ) -> None:
        self.steps = num_samples // (batch_size * world_size)
        order = epoch_permutation(num_samples, seed, epoch) if shuffle else np.arange(num_samples)
        mine = order[rank::world_size][: self.steps * batch_size]
        self.indices = mine[start_step * batch_size :].tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def steps_per_epoch(num_samples: int, batch_size: int, world_size: int = 1) -> int:
    return num_samples // (batch_size * world_size)


# ---------------------------------------------------------------------------------------------
# RNG state as checkpoint-friendly values (weights_only=True loads tensors and plain Python only)


def get_rng_state() -> dict[str, Any]:
    """The global RNG states (Python, numpy's legacy global, torch, CUDA) in loadable form."""
    version, mt_state, gauss = random.getstate()
    # The legacy global numpy generator is what third-party code draws from; it is saved on purpose.
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    state: dict[str, Any] = {
        "python": [version, list(mt_state), gauss],
        "numpy": [
            name,
            torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    version, mt_state, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in mt_state), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached)))  # noqa: NPY002
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the legacy global generator, see get_rng_state)
    torch.manual_seed(seed)
