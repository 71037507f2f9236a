"""Training checkpoints on disk: written by ``depth-train``, read by it (resume), ``depth-export``
and ``depth-eval``.

A multi-frame run's checkpoint (``model.multi_frame``) also holds ``multi_depth_net``, the student;
``two_frame_net_from_checkpoint`` rebuilds what the car runs from it, and
``guided_net_from_checkpoint`` a two-frame model from its single-frame depth net and pose net alone
(or its student, searched around).
Multi-frame checkpoints written before the cost volume's cheaper defaults (16 matching channels, 16
hypotheses, the pose net on half-size frames) do not load into the new networks; none were shipped.

A checkpoint is a plain dict that ``torch.load(weights_only=True)`` reads: ``config`` (the resolved
training config), ``depth_net`` and ``pose_net`` state dicts, and for resuming the optimizer,
scheduler, scaler, epoch/step position and RNG states (see ``Trainer.checkpoint_payload``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from depth_node.files import atomic_open, named_write_errors
from training.networks import (
    GUIDED_PRIORS,
    DepthNet,
    GuidedTwoFrameNet,
    TwoFrameDepthNet,
    build_depth_net,
    build_multi_depth_net,
    build_pose_net,
    multi_frame_config,
)

CHECKPOINT_VERSION = 1
# What reading the model needs (export, evaluation) and what resuming a run needs.
MODEL_KEYS = ("config", "depth_net")
RESUME_KEYS = ("config", "depth_net", "pose_net", "optimizer", "epoch", "step", "rng")


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> Path:
    """Write atomically (``<name>.tmp``, fsync, rename): a process killed mid-write or a full disk
    leaves the previous checkpoint intact; a failed write raises ``WriteError`` naming the file."""
    with named_write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        torch.save(dict(payload), f)
    return path


def load_checkpoint(path: str | Path, required: Sequence[str] = MODEL_KEYS) -> dict[str, Any]:
    """Read a checkpoint on the CPU (``weights_only=True``) and check that it has the ``required`` keys."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict):
        raise ValueError(f"checkpoint {path}: expected a dict, got {type(ckpt).__name__}")
    missing = [k for k in required if k not in ckpt]
    if missing:
        raise ValueError(f"checkpoint {path}: missing {missing} (not a depth-train checkpoint?)")
    return ckpt


def depth_net_from_checkpoint(ckpt: Mapping[str, Any]) -> DepthNet:
    """Rebuild the DepthNet of a checkpoint and load its weights (strict), in eval mode."""
    model_cfg = dict(ckpt["config"].get("model", {}))
    model_cfg["weights"] = None  # the checkpoint holds the trained weights; no ImageNet file needed
    net = build_depth_net(model_cfg)
    net.load_state_dict(ckpt["depth_net"], strict=True)
    return net.eval()


def is_multi_frame(ckpt: Mapping[str, Any]) -> bool:
    """Whether the checkpoint is a multi-frame run's (``model.multi_frame``): its model is the student."""
    return bool((ckpt["config"].get("model") or {}).get("multi_frame"))


def two_frame_net_from_checkpoint(ckpt: Mapping[str, Any]) -> TwoFrameDepthNet:
    """The two-frame model of a multi-frame checkpoint (its student and pose net, strict; a
    motion-aware or refining student's teacher too), in eval mode, with the training camera's
    intrinsics at the training size."""
    config = ckpt["config"]
    if "multi_depth_net" not in ckpt:
        raise ValueError("checkpoint: model.multi_frame is on but it holds no multi_depth_net")
    # The checkpoint holds the trained weights; no ImageNet file needed.
    model_cfg = {**config["model"], "weights": None, "pose_weights": None}
    net, pose_net = build_multi_depth_net(model_cfg), build_pose_net(model_cfg)
    net.load_state_dict(ckpt["multi_depth_net"], strict=True)
    pose_net.load_state_dict(ckpt["pose_net"], strict=True)
    reference = depth_net_from_checkpoint(ckpt) if net.needs_reference else None  # the teacher
    data = config["data"]
    return TwoFrameDepthNet(net, pose_net, int(data["height"]), int(data["width"]), reference).eval()


def guided_net_from_checkpoint(
    ckpt: Mapping[str, Any], intrinsics: Sequence[float] | None = None, prior: str = "single_frame"
) -> GuidedTwoFrameNet:
    """A two-frame model from the checkpoint's single-frame depth net and pose net, the previous frame
    matched around the single-frame depth (``training.networks.guided``), in eval mode, at the
    training size. ``prior``: ``single_frame``, or ``student`` to search around a multi-frame
    checkpoint's student's depth instead. ``intrinsics`` (fx, fy, cx, cy, normalised by image size):
    the camera; by default the one a multi-frame checkpoint recorded (a single-frame one records none)."""
    if prior not in GUIDED_PRIORS:
        raise ValueError(f"guided prior {prior!r}: expected one of {GUIDED_PRIORS}")
    if "pose_net" not in ckpt:
        raise ValueError("checkpoint: guided two-frame matching needs the pose net, and it holds none")
    if prior == "student" and "multi_depth_net" not in ckpt:
        raise ValueError("checkpoint: a guided search around the student needs a multi-frame checkpoint")
    model_cfg = {**ckpt["config"]["model"], "weights": None, "pose_weights": None}
    if intrinsics is None:
        if "multi_depth_net" not in ckpt:
            raise ValueError(
                "checkpoint: a single-frame run records no camera; give the intrinsics for guided matching"
            )
        intrinsics = ckpt["multi_depth_net"]["intrinsics"].tolist()
    pose_net = build_pose_net(model_cfg)
    pose_net.load_state_dict(ckpt["pose_net"], strict=True)
    student = None
    if prior == "student":
        student = build_multi_depth_net(model_cfg)
        student.load_state_dict(ckpt["multi_depth_net"], strict=True)
    # The multi-frame run trains its pose net on pooled frames (model.pose_downsample).
    factor = multi_frame_config(model_cfg)["pose_downsample"] if model_cfg.get("multi_frame") else 1
    data = ckpt["config"]["data"]
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    depth_net, size = depth_net_from_checkpoint(ckpt), (int(data["height"]), int(data["width"]))
    return GuidedTwoFrameNet(depth_net, pose_net, (fx, fy, cx, cy), *size, factor, student=student).eval()
