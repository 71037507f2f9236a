"""Interrupting training (a real SIGTERM to a training process) and resuming gives the same next steps
as a run that was never interrupted; data order and RNG state survive a checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from training.config import load_config
from training.train import (
    EpochSampler,
    Trainer,
    build_parser,
    config_for,
    get_rng_state,
    load_checkpoint,
    set_rng_state,
)

DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"
TOTAL_STEPS = 30  # the interrupted run's budget: the signal comes long before


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


def _overrides(root: Path, out_dir: Path, max_steps: int) -> list[str]:
    return [
        f"data.root={root}",
        f"data.drives=[{DRIVE}]",
        "data.height=64",
        "data.width=128",
        "data.num_workers=0",
        "train.batch_size=2",  # 10 samples: 5 steps per epoch, so the run crosses epoch ends
        f"train.max_steps={max_steps}",
        f"train.out_dir={out_dir}",
        "train.threads=1",
        "train.progress=false",
        "train.tensorboard=false",
        "train.scheduler_step=1",  # the LR schedule must resume too
        "train.scheduler_gamma=0.5",
    ]


def _losses(out_dir: Path) -> dict[int, float]:
    lines = (out_dir / "loss_log.jsonl").read_text().splitlines()
    return {rec["step"]: rec["loss"] for rec in map(json.loads, lines)}


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_sigterm_mid_epoch_then_resume_matches_uninterrupted_run(
    tmp_path: Path, kitti_root: Path, restore_threads: None
) -> None:
    interrupted_dir = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "training.train", *_overrides(kitti_root, interrupted_dir, TOTAL_STEPS)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = interrupted_dir / "loss_log.jsonl"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if log.is_file() and len(log.read_text().splitlines()) >= 3:
                os.kill(proc.pid, signal.SIGTERM)
                break
            time.sleep(0.02)
        output, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "stopped by SIGTERM" in output, output

    ckpt = load_checkpoint(interrupted_dir / "checkpoints" / "last.pt")
    stopped = ckpt["global_step"]
    assert 3 <= stopped < TOTAL_STEPS, f"the signal came too late to test a resume ({stopped} steps)"
    assert (ckpt["epoch"], ckpt["step"]) == divmod(stopped, 5)
    assert ckpt["scheduler"]["last_epoch"] == ckpt["epoch"]

    # The uninterrupted reference, two steps further.
    reference_dir = tmp_path / "reference"
    Trainer(load_config(None, _overrides(kitti_root, reference_dir, stopped + 2))).run()
    reference = _losses(reference_dir)
    assert sorted(reference) == list(range(1, stopped + 3))
    # Steps before the signal match the reference exactly (same seeds, same data order).
    for step, loss in _losses(interrupted_dir).items():
        assert loss == pytest.approx(reference[step], rel=1e-6, abs=1e-7)

    args = build_parser().parse_args(
        ["--resume", str(interrupted_dir / "checkpoints" / "last.pt"), f"train.max_steps={stopped + 2}"]
    )
    summary = Trainer(config_for(args), resume=args.resume).run()
    assert summary.steps == stopped + 2
    resumed = _losses(interrupted_dir)
    assert sorted(resumed) == list(range(1, stopped + 3))  # the log continues where it stopped
    for step in (stopped + 1, stopped + 2):
        assert resumed[step] == pytest.approx(reference[step], rel=1e-6, abs=1e-7), (step, resumed, reference)
