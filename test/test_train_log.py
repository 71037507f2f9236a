"""A run's logs (training/train_log.py): a loss-log line per step, kept up to the step on resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from training.losses import LossDiagnostics
from training.train_log import TrainingLog


def _config(tensorboard: bool) -> dict:
    return {"train": {"log_every": 2, "image_every": 2, "tensorboard": tensorboard}}


def _step(log: TrainingLog, step: int, mask: bool = False) -> None:
    diagnostics = LossDiagnostics(
        stats={"loss": 0.5 / step, "photometric": 0.4},
        mask=torch.ones(1, 1, 4, 6) if mask else None,
    )
    batch = {("color", 0, 0): torch.rand(1, 3, 4, 6)}
    outputs = {("disp", 0): torch.rand(1, 1, 4, 6)}
    log.step(step, 0, 0.5 / step, diagnostics, batch, outputs, lr=1e-4)


def _steps(out_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out_dir / "loss_log.jsonl").read_text().splitlines()]


def test_loss_log_line_per_step_and_resume_drops_the_abandoned_future(tmp_path: Path) -> None:
    log = TrainingLog(tmp_path, _config(False), global_step=0)
    for step in range(1, 6):
        _step(log, step)
    log.close()
    assert _steps(tmp_path) == [1, 2, 3, 4, 5]
    record = json.loads((tmp_path / "loss_log.jsonl").read_text().splitlines()[1])
    assert record == {"step": 2, "epoch": 0, "loss": 0.25, "photometric": 0.4}
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == _config(False)
    # Resuming from a checkpoint at step 3: steps 4 and 5 are dropped, the log goes on from there.
    log = TrainingLog(tmp_path, _config(False), global_step=3)
    _step(log, 4)
    log.close()
    assert _steps(tmp_path) == [1, 2, 3, 4]


def test_tensorboard_scalars_and_images(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    log = TrainingLog(tmp_path, _config(True), global_step=0)
    for step in (1, 2):
        _step(log, step, mask=True)
    log.scalars("val", {"loss": 0.3}, 2)
    log.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
