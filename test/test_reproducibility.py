"""Data order and RNG state (training/reproducibility.py): what a resumed run needs to repeat itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from training.reproducibility import EpochSampler, get_rng_state, set_rng_state


def test_epoch_sampler_order_and_sharding() -> None:
    a = EpochSampler(23, 4, seed=5, epoch=2)
    assert len(a) == 20 and list(a) == list(EpochSampler(23, 4, seed=5, epoch=2))  # 5 whole batches
    assert list(a) != list(EpochSampler(23, 4, seed=5, epoch=3))
    assert list(a) != list(EpochSampler(23, 4, seed=6, epoch=2))
    # Skipping steps on resume continues the same order.
    assert list(EpochSampler(23, 4, seed=5, epoch=2, start_step=3)) == list(a)[12:]
    # Ranks get disjoint shards of equal length.
    shards = [list(EpochSampler(23, 4, seed=5, epoch=2, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 8 and not set(shards[0]) & set(shards[1])
    assert list(EpochSampler(6, 2, seed=0, epoch=0, shuffle=False)) == [0, 1, 2, 3, 4, 5]


def test_rng_state_survives_a_weights_only_checkpoint(tmp_path: Path) -> None:
    import random

    state = get_rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())  # noqa: NPY002 (the global one)
    torch.save({"rng": state}, tmp_path / "rng.pt")
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected  # noqa: NPY002
