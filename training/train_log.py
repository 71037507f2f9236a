"""What a training run writes as it goes and reports at its end (the main rank only).

``TrainingLog`` writes into ``train.out_dir``: ``config.yaml`` (the resolved configuration),
``loss_log.jsonl`` (one line per step: the loss and its terms) and ``tensorboard/`` (scalars every
``train.log_every`` steps, images every ``train.image_every`` steps, both also at step 1).
``TrainSummary`` is the run's closing report.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from torch import Tensor

from depth_node.colormap import colorize
from training.losses import LossDiagnostics


class TrainingLog:
    """The logs of one run in ``out_dir``; ``close()`` when the run ends.

    On resume (``global_step`` > 0) the loss log keeps its lines up to that step (later ones belong
    to the abandoned future) and TensorBoard purges the events past it.
    """

    def __init__(self, out_dir: Path, config: Mapping[str, Any], global_step: int) -> None:
        train = config["train"]
        self.log_every = max(1, int(train["log_every"]))
        self.image_every = int(train["image_every"])
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        log_path = out_dir / "loss_log.jsonl"
        kept = []
        if log_path.is_file() and global_step > 0:
            for line in log_path.read_text().splitlines():
                with contextlib.suppress(ValueError, KeyError):
                    if json.loads(line)["step"] <= global_step:
                        kept.append(line + "\n")
        log_path.write_text("".join(kept))
        self.loss_log: Any = log_path.open("a")
        self.writer: Any = None
        if train["tensorboard"]:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=global_step or None)

    def step(
        self,
        step: int,
        epoch: int,
        loss: float,
        diagnostics: LossDiagnostics,
        batch: Mapping[Any, Tensor],
        outputs: Mapping[Any, Tensor],
        lr: float,
    ) -> None:
        """One training step: a loss-log line, and TensorBoard scalars and images when they are due."""
        record = {"step": step, "epoch": epoch, "loss": loss, **diagnostics.stats}
        self.loss_log.write(json.dumps(record) + "\n")
        self.loss_log.flush()  # one short line per step: cheap, and the log is current when a run dies
        if self.writer is None:
            return
        if step % self.log_every == 0 or step == 1:
            self.scalars("train", diagnostics.stats, step)
            self.writer.add_scalar("train/lr", lr, step)
        if self.image_every and (step % self.image_every == 0 or step == 1):
            self._images(step, batch, outputs, diagnostics)

    def _images(
        self,
        step: int,
        batch: Mapping[Any, Tensor],
        outputs: Mapping[Any, Tensor],
        diagnostics: LossDiagnostics,
    ) -> None:
        """The first sample's image, disparity (Monodepth2's look) and loss mask."""
        image = batch[("color", 0, 0)][0].detach().cpu().numpy().transpose(1, 2, 0)
        disp = outputs[("disp", 0)][0, 0].detach().cpu().numpy()
        self.writer.add_image("train/color", (image * 255).astype(np.uint8), step, dataformats="HWC")
        self.writer.add_image("train/disp", colorize(disp), step, dataformats="HWC")
        if diagnostics.mask is not None:
            mask = diagnostics.mask[0, 0].cpu().numpy()
            self.writer.add_image("train/loss_mask", (mask * 255).astype(np.uint8), step, dataformats="HW")

    def scalars(self, prefix: str, values: Mapping[str, float], step: int) -> None:
        """TensorBoard scalars ``<prefix>/<name>`` (nothing without TensorBoard)."""
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def close(self) -> None:
        self.loss_log.close()
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@dataclass
class TrainSummary:
    """What a finished (or stopped) run reports."""

    steps: int
    epochs_done: float
    wall_s: float
    final_loss: float
    samples_per_s: float
    out_dir: str
    checkpoint: str
    stopped_by: str
    training_mode: str
    losses: list[float] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"training {self.stopped_by}: {self.steps} steps ({self.epochs_done:.2f} epochs) in "
            f"{self.wall_s / 60:.1f} min, {self.samples_per_s:.1f} samples/s; final loss "
            f"{self.final_loss:.4f} (mean of the last steps); mode {self.training_mode}\n"
            f"  checkpoint: {self.checkpoint}\n  logs:       {self.out_dir} (loss_log.jsonl, tensorboard/)"
        )
