"""Self-supervised depth training (Monodepth2-style), the ``depth-train`` entry point.

    depth-train --config cfg.yaml train.lr=2e-4 model.backbone=stdc1
    depth-train --resume runs/x/checkpoints/last.pt            # continue exactly where it stopped
    torchrun --nproc_per_node=4 -m training.train --config cfg.yaml   # DistributedDataParallel

One run writes into ``train.out_dir``: ``checkpoints/last.pt`` (every epoch, on max_steps and on
SIGINT/SIGTERM) and ``checkpoints/epoch_NNN.pt`` (last.pt at each epoch's end, kept as a hard link:
no second copy on disk until last.pt moves on), ``loss_log.jsonl`` (one line per step),
``tensorboard/`` (scalars and depth images) and ``config.yaml`` (the resolved configuration).

Reproducibility: the data order of epoch e is a permutation drawn from (seed, e); each sample's
augmentation from (seed, e, index); the Python/numpy/torch RNG states travel in the checkpoint
(``training.reproducibility``). A resumed run therefore makes the same next step as one that was
never interrupted.

Here: the configuration, the ``Trainer`` (set-up, checkpoints, signals, one step, validation, the
loop) and the CLI. The logs are ``training.train_log``'s, multi-GPU set-up ``training.distributed``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from depth_node.files import WriteError, keep_copy
from depth_node.metrics import evaluate_depth, mean_metrics
from training.checkpoint import (
    CHECKPOINT_VERSION,
    RESUME_KEYS,
    load_checkpoint,
    save_checkpoint,
)
from training.config import ConfigError, load_config, merge, temporal_frame_ids, validate
from training.datasets import MonoDataset, build_dataset
from training.datasets.common import DataError
from training.distributed import init_distributed, pick_device
from training.losses import LossDiagnostics, ManydepthLoss, SelfSupervisedLoss, loss_config, training_mode
from training.networks import (
    DepthPoseModel,
    ManyDepthModel,
    ManyDepthNet,
    RefineNet,
    build_depth_net,
    build_multi_depth_net,
    build_pose_net,
    model_config,
    multi_frame_config,
)
from training.reproducibility import (
    EpochSampler,
    get_rng_state,
    seed_everything,
    set_rng_state,
    steps_per_epoch,
)
from training.train_log import TrainingLog, TrainSummary

# ---------------------------------------------------------------------------------------------
# Configuration


def resolve_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with the networks' and losses' defaults filled in (what the checkpoint stores).

    The loss's disparity range is the model's: ``disp_to_depth`` must map the same way in both, and
    SfMLearner's masking needs the pose net's mask decoder. A multi-frame model's own keys get their
    defaults (``training.networks.manydepth.MULTI_FRAME_DEFAULTS``) only when it is on.
    """
    config = dict(config)
    loss = loss_config(config.get("loss"))
    model = dict(config.get("model") or {})
    model["explainability"] = loss["masking"] == "explainability"
    config["model"] = model_config(model)
    if config["model"].get("multi_frame"):
        config["model"] = multi_frame_config(config["model"])
    loss["min_depth"] = float(config["model"]["min_depth"])
    loss["max_depth"] = float(config["model"]["max_depth"])
    config["loss"] = loss_config(loss)
    return config


# ---------------------------------------------------------------------------------------------
# Trainer


def load_weights(
    depth_net: nn.Module,
    pose_net: nn.Module,
    path: Path,
    multi_depth_net: ManyDepthNet | RefineNet | None = None,
) -> None:
    """Start from a checkpoint's weights (``train.init_from``: fine-tuning, e.g. at a larger size).

    Only the weights: the optimizer, schedule and step count start fresh, unlike ``--resume``. A
    multi-frame run takes its teacher and pose net from any checkpoint (Manydepth's pretrained
    single-frame model) and its ``multi_depth_net`` from a multi-frame one; from a single-frame
    checkpoint the student starts as its teacher (``ManyDepthNet.start_from_single_frame``).
    """
    ckpt = load_checkpoint(path, ("config", "depth_net", "pose_net"))
    nets = [("depth_net", depth_net), ("pose_net", pose_net)]
    if multi_depth_net is not None and "multi_depth_net" in ckpt:
        nets.append(("multi_depth_net", multi_depth_net))
    elif multi_depth_net is not None:
        try:
            multi_depth_net.start_from_single_frame(ckpt["depth_net"])
        except ValueError as error:
            raise ConfigError(f"train.init_from={path}: {error}") from None
    for name, net in nets:
        try:
            net.load_state_dict(ckpt[name], strict=True)
        except RuntimeError as error:  # torch lists every differing parameter: keep the first
            detail = next((line.strip() for line in str(error).splitlines()[1:] if line.strip()), "")
            trained = {k: ckpt["config"]["model"].get(k) for k in ("backbone", "decoder")}
            raise ConfigError(
                f"train.init_from={path}: its {name} (trained with {trained}) does not fit this "
                f"model.*: {detail[:160]}"
            ) from None


def warmup_lr(lr: float, step: int, warmup_steps: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based) under a linear warm-up over
    ``warmup_steps`` steps: lr * (step + 1) / warmup_steps, then lr (0 steps: lr throughout).

    Why: a fresh Adam moves every weight by about the learning rate in its first steps, whatever the
    gradient's size; from trained weights (``init_from``) that alone moves a net away from what it
    knew (docs/MOVING_CARS_STUDY.md)."""
    return lr * min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else lr


class Trainer:
    """Builds data, networks, optimiser from a config; ``run()`` trains and returns a TrainSummary.

    Args:
        config: full training config (``training.config.load_config``).
        resume: checkpoint to continue from (its model/optimizer/scheduler/RNG/data position).
    """

    def __init__(self, config: Mapping[str, Any], resume: str | Path | None = None) -> None:
        self.ckpt = load_checkpoint(resume, RESUME_KEYS) if resume else None
        self.config = resolve_config(config)
        train = self.config["train"]
        self.dist = init_distributed(str(train["device"]))
        self.device = pick_device(str(train["device"]), self.dist)
        if train["threads"]:
            torch.set_num_threads(int(train["threads"]))
        self.seed = int(train["seed"])
        seed_everything(self.seed + self.dist.rank)
        self.out_dir = Path(train["out_dir"])
        self.ckpt_dir = self.out_dir / "checkpoints"

        data = self.config["data"]
        self.frame_ids = temporal_frame_ids(data)  # the video frames; the stereo partner comes on top
        self.height, self.width = int(data["height"]), int(data["width"])
        self.train_set = build_dataset(self.config, "train")
        self.val_set = build_dataset(self.config, "val")
        self.batch_size = int(train["batch_size"])
        self.steps_per_epoch = steps_per_epoch(len(self.train_set), self.batch_size, self.dist.world_size)
        if self.steps_per_epoch == 0:
            raise ConfigError(
                f"{len(self.train_set)} training samples are fewer than one batch "
                f"(train.batch_size={self.batch_size} x {self.dist.world_size} processes)"
            )
        self.warmup_steps = int(train.get("warmup_steps") or 0)  # absent in older checkpoints
        first_decay = int(train["scheduler_step"]) * self.steps_per_epoch
        if not 0 <= self.warmup_steps <= first_decay:
            raise ConfigError(
                f"train.warmup_steps={self.warmup_steps}: expected 0 .. {first_decay} (it ends before the "
                f"first learning-rate decay, train.scheduler_step={train['scheduler_step']} epochs)"
            )

        model_cfg = dict(self.config["model"])
        init_from = train.get("init_from")
        if self.ckpt is not None or init_from:
            # The checkpoint holds the trained weights: no ImageNet files needed.
            model_cfg["weights"] = model_cfg["pose_weights"] = None
        depth_net, pose_net = build_depth_net(model_cfg), build_pose_net(model_cfg)
        # Manydepth: the depth net above is the single-frame teacher of a multi-frame student.
        self.multi_frame = bool(model_cfg.get("multi_frame"))
        multi_depth_net = build_multi_depth_net(model_cfg) if self.multi_frame else None
        if init_from and self.ckpt is None:
            load_weights(depth_net, pose_net, Path(init_from), multi_depth_net)
        if multi_depth_net is not None:
            # This run's camera, what the export bakes in (after init_from: fine-tuning may change it).
            multi_depth_net.set_intrinsics(*self.train_set.intrinsics(0))
            self.model: DepthPoseModel | ManyDepthModel = ManyDepthModel(
                depth_net,
                pose_net,
                multi_depth_net,
                self.frame_ids,
                bool(self.config["loss"]["odometry_scale"]),
                float(model_cfg["static_camera_prob"]),
                float(model_cfg["empty_cost_volume_prob"]),
            ).to(self.device)
            criterion = SelfSupervisedLoss(self.config["loss"], self.height, self.width)
            self.criterion: nn.Module = ManydepthLoss(criterion).to(self.device)
        else:
            self.model = DepthPoseModel(
                depth_net, pose_net, self.frame_ids, bool(self.config["loss"]["odometry_scale"])
            ).to(self.device)
            self.criterion = SelfSupervisedLoss(self.config["loss"], self.height, self.width).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=float(train["lr"]), weight_decay=float(train["weight_decay"])
        )
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=int(train["scheduler_step"]), gamma=float(train["scheduler_gamma"])
        )
        self.use_amp = bool(train["amp"]) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)

        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.used_velocity = False
        if self.ckpt is not None:
            self._restore(self.ckpt)
            self.ckpt = None  # free the memory
        self.net: nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # A frozen teacher and pose net get no gradients: DDP must not wait for them.
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=self.multi_frame
            )

        self.stop_requested: str | None = None
        self.log: TrainingLog | None = None  # the main rank's, while run() runs

    # -- checkpoints ------------------------------------------------------------------------
    def _restore(self, ckpt: Mapping[str, Any]) -> None:
        self.model.depth_net.load_state_dict(ckpt["depth_net"])
        self.model.pose_net.load_state_dict(ckpt["pose_net"])
        if isinstance(self.model, ManyDepthModel):
            self.model.multi_depth_net.load_state_dict(ckpt["multi_depth_net"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.use_amp and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.step_in_epoch = int(ckpt["epoch"]), int(ckpt["step"])
        self.global_step = int(
            ckpt.get("global_step", self.epoch * self.steps_per_epoch + self.step_in_epoch)
        )
        self.used_velocity = bool(ckpt.get("used_velocity", False))
        rng = ckpt["rng"]
        # Each rank stored its own state; fall back to rank 0's if the world size changed.
        set_rng_state(rng.get(f"rank{self.dist.rank}", rng.get("rank0", rng)))

    def checkpoint_payload(self) -> dict[str, Any]:
        rng = get_rng_state()
        if self.dist.enabled:
            gathered: list[Any] = [None] * self.dist.world_size
            dist.all_gather_object(gathered, rng)
            rng_all = {f"rank{r}": s for r, s in enumerate(gathered)}
        else:
            rng_all = {"rank0": rng}
        return {
            "version": CHECKPOINT_VERSION,
            "config": self.config,
            "depth_net": self.model.depth_net.state_dict(),
            "pose_net": self.model.pose_net.state_dict(),
            **(
                {"multi_depth_net": self.model.multi_depth_net.state_dict()}
                if isinstance(self.model, ManyDepthModel)
                else {}
            ),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.use_amp else {},
            "epoch": self.epoch,
            "step": self.step_in_epoch,
            "global_step": self.global_step,
            "steps_per_epoch": self.steps_per_epoch,
            "rng": rng_all,
            "used_velocity": self.used_velocity,
            "training_mode": training_mode(self.config, self.used_velocity),
        }

    def save(self, epoch_file: bool = False) -> Path:
        """Write last.pt (all ranks join the RNG gather; rank 0 writes)."""
        payload = self.checkpoint_payload()
        last = self.ckpt_dir / "last.pt"
        if self.dist.is_main:
            save_checkpoint(last, payload)
            if epoch_file:
                keep_copy(last, self.ckpt_dir / f"epoch_{self.epoch:03d}.pt")
                self._prune()
        return last

    def _prune(self) -> None:
        keep = int(self.config["train"]["keep_checkpoints"])
        if keep <= 0:
            return
        for old in sorted(self.ckpt_dir.glob("epoch_*.pt"))[:-keep]:
            old.unlink()

    # -- signals ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM: finish the current step, save, exit. A second SIGINT aborts at once."""
        previous: dict[int, Any] = {}

        def handler(signum: int, _frame: Any) -> None:
            if self.stop_requested is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.stop_requested = signal.Signals(signum).name

        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: no signal handling possible
            previous.clear()
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _agree_stop(self) -> bool:
        """All ranks stop at the same step when any of them got a signal."""
        flag = self.stop_requested is not None
        if self.dist.enabled:
            t = torch.tensor([1.0 if flag else 0.0], device=self.device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flag = bool(t.item() > 0)
            if flag and self.stop_requested is None:
                self.stop_requested = "peer signal"
        return flag

    # -- data -------------------------------------------------------------------------------
    def loader(self, dataset: MonoDataset, epoch: int, start_step: int = 0, train: bool = True) -> DataLoader:
        dataset.set_epoch(epoch)
        batch_size = self.batch_size if train else int(self.config["eval"]["batch_size"])
        sampler = EpochSampler(
            len(dataset),
            batch_size,
            self.seed,
            epoch,
            shuffle=train,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            start_step=start_step,
        )
        workers = int(self.config["data"]["num_workers"])
        # A private generator: creating the loader must not draw from the global torch RNG, or a
        # resumed run would see a different RNG stream than an uninterrupted one.
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
            generator=generator,
            persistent_workers=False,
        )

    def to_device(self, batch: Mapping[Any, Tensor]) -> dict[Any, Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    # -- one step ---------------------------------------------------------------------------
    def train_step(self, batch: Mapping[Any, Tensor]) -> tuple[float, LossDiagnostics, dict[Any, Tensor]]:
        """One optimiser step: (loss, the loss's diagnostics, the model's outputs)."""
        if isinstance(self.model, ManyDepthModel):
            self.model.set_teacher_frozen(self.teacher_frozen())
        batch = self.to_device(batch)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
            outputs = self.net(batch)
        # The loss runs in float32: SSIM's constants and 1/disp underflow or lose precision in fp16.
        outputs = {k: v.float() for k, v in outputs.items()}
        loss, diagnostics = self.criterion(batch, outputs)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss is {loss.item()} at step {self.global_step} (stats {diagnostics.stats})"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        clip = self.config["train"]["grad_clip"]
        if clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(clip))
        if self.warmup_steps and self.global_step <= self.warmup_steps:  # and the full rate back after
            lr = warmup_lr(float(self.config["train"]["lr"]), self.global_step, self.warmup_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        self.scaler.step(self.optimizer)
        self.scaler.update()
        # A multi-frame run's velocity term is its teacher's (``teacher_velocity``); the pose net it
        # trains gives the student's cost volume and loss their metric scale.
        if "velocity" in diagnostics.stats or "teacher_velocity" in diagnostics.stats:
            self.used_velocity = True
        return float(loss.detach()), diagnostics, outputs

    def teacher_frozen(self) -> bool:
        """Whether a multi-frame run's teacher and pose net are frozen at the current position:
        from ``model.freeze_teacher_epoch`` or ``model.freeze_teacher_step`` on (Manydepth's)."""
        model = self.config["model"]
        epoch, step = model.get("freeze_teacher_epoch"), model.get("freeze_teacher_step")
        return (epoch is not None and self.epoch >= int(epoch)) or (
            step is not None and self.global_step >= int(step)
        )

    # -- logging ----------------------------------------------------------------------------
    def _open_logs(self) -> None:
        if self.dist.is_main:
            self.log = TrainingLog(self.out_dir, self.config, self.global_step)

    def _close_logs(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None

    # -- validation -------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean loss on the validation set (and median-scaled depth metrics where it has GT)."""
        if self.val_set is None:
            return {}
        self.model.eval()
        losses, metrics = [], []
        eval_cfg = self.config["eval"]
        for batch in self.loader(self.val_set, 0, train=False):
            batch = self.to_device(batch)
            outputs = {k: v.float() for k, v in self.model(batch).items()}
            loss, diagnostics = self.criterion(batch, outputs)
            losses.append(float(loss))
            if "depth_gt" in batch:
                depth = diagnostics.depth[0].cpu().numpy()
                gt = batch["depth_gt"].cpu().numpy()
                for d, g in zip(depth[:, 0], gt[:, 0]):
                    frame = evaluate_depth(
                        g,
                        d,
                        min_depth=eval_cfg["min_depth"],
                        max_depth=eval_cfg["max_depth"],
                        garg_crop=eval_cfg["garg_crop"],
                        median_scaling=True,
                    )
                    if frame is not None:
                        metrics.append(frame.metrics)
        self.model.train()
        out = {"loss": float(np.mean(losses))} if losses else {}
        if metrics:
            out.update({k: v for k, v in mean_metrics(metrics).items() if k in ("abs_rel", "rmse", "a1")})
        if self.log is not None:
            self.log.scalars("val", out, self.global_step)
        return out

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> TrainSummary:
        train = self.config["train"]
        epochs, max_steps = int(train["epochs"]), train["max_steps"]
        self._open_logs()
        self.model.train()
        start_time, start_step = time.time(), self.global_step
        recent: list[float] = []
        stopped_by = "finished"
        say = tqdm.write if train["progress"] else print
        if self.dist.is_main:
            say(
                f"depth-train: {len(self.train_set)} samples, {self.steps_per_epoch} steps/epoch, "
                f"batch {self.batch_size} x {self.dist.world_size}, {self.width}x{self.height}, "
                f"{self.config['model']['backbone']}, device {self.device}"
                + (f", resuming at epoch {self.epoch} step {self.step_in_epoch}" if self.global_step else "")
            )
        try:
            with self._stop_on_signals():
                while self.epoch < epochs:
                    done = self._run_epoch(max_steps, recent)
                    if self.step_in_epoch >= self.steps_per_epoch:
                        # Epoch complete: decay the LR, validate, save an epoch checkpoint.
                        self.epoch += 1
                        self.step_in_epoch = 0
                        self.scheduler.step()
                        val = self.validate()
                        if val and self.dist.is_main:
                            say(
                                f"epoch {self.epoch}: val "
                                + ", ".join(f"{k} {v:.4f}" for k, v in val.items())
                            )
                        self.save(epoch_file=True)
                    if done:
                        break
                if self.stop_requested:
                    stopped_by = f"stopped by {self.stop_requested}"
                elif max_steps is not None and self.global_step >= int(max_steps):
                    stopped_by = f"stopped at max_steps={max_steps}"
                last = self.save()
        finally:
            self._close_logs()
        wall = time.time() - start_time
        steps = self.global_step - start_step
        summary = TrainSummary(
            steps=self.global_step,
            epochs_done=self.global_step / self.steps_per_epoch,
            wall_s=wall,
            final_loss=float(np.mean(recent[-50:])) if recent else math.nan,
            samples_per_s=steps * self.batch_size * self.dist.world_size / max(wall, 1e-9),
            out_dir=str(self.out_dir),
            checkpoint=str(last),
            stopped_by=stopped_by,
            training_mode=training_mode(self.config, self.used_velocity),
            losses=recent,
        )
        if self.dist.is_main:
            say(str(summary))
        return summary

    def _run_epoch(self, max_steps: int | None, recent: list[float]) -> bool:
        """Train from the current position to the end of the epoch; True when the run must stop."""
        loader = self.loader(self.train_set, self.epoch, start_step=self.step_in_epoch)
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=self.step_in_epoch,
            desc=f"epoch {self.epoch}",
            disable=not (self.config["train"]["progress"] and self.dist.is_main),
            dynamic_ncols=True,
        )
        extra_every = int(self.config["train"]["checkpoint_every"])
        try:
            for batch in loader:
                loss, diagnostics, outputs = self.train_step(batch)
                self.step_in_epoch += 1
                self.global_step += 1
                recent.append(loss)
                if self.log is not None:
                    lr = self.optimizer.param_groups[0]["lr"]
                    self.log.step(self.global_step, self.epoch, loss, diagnostics, batch, outputs, lr)
                bar.update(1)
                median_depth = diagnostics.stats.get("median_depth", math.nan)
                bar.set_postfix(loss=f"{loss:.4f}", depth=f"{median_depth:.1f}")
                stop = self._agree_stop()
                if max_steps is not None and self.global_step >= int(max_steps):
                    stop = True
                if stop:
                    return True
                if extra_every and self.global_step % extra_every == 0:
                    self.save()
        finally:
            bar.close()
        return False


# ---------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depth-train",
        description="Self-supervised monocular depth training (Monodepth2-style; KITTI raw, rosbag2 or "
        "image folders). Settings: training/configs/default.yaml, overridden by --config and "
        "section.key=value arguments.",
    )
    parser.add_argument("--config", type=Path, help="YAML config with the keys to change")
    parser.add_argument("--resume", type=Path, help="checkpoint to continue from (its config is the base)")
    parser.add_argument(
        "overrides", nargs="*", help="section.key=value, e.g. train.lr=2e-4 model.backbone=stdc1"
    )
    return parser


def config_for(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults + file + overrides; on resume the checkpoint's config replaces the defaults."""
    if args.resume is None:
        return load_config(args.config, args.overrides)
    base = load_checkpoint(args.resume, RESUME_KEYS)["config"]
    if args.config is not None:
        from training.config import load_yaml

        base = merge(base, load_yaml(args.config))
    from training.config import apply_overrides

    config = apply_overrides(base, args.overrides)
    validate(config)
    return config


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_for(args)
        trainer = Trainer(config, resume=args.resume)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"depth-train: {exc}", file=sys.stderr)
        return 2
    try:
        trainer.run()
    except WriteError as exc:  # a full disk: one line; the previous checkpoint is intact
        print(f"depth-train: error: {exc} (the previous checkpoint is kept)", file=sys.stderr)
        return 1
    except DataError as exc:  # unreadable training data met mid-run: the file and what is wrong
        # From a DataLoader worker the message carries the worker's traceback; its last line is ours.
        reason = re.sub(r"^[\w.]+Error: ", "", str(exc).strip().splitlines()[-1])
        print(f"depth-train: error: {reason}", file=sys.stderr)
        return 1
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
