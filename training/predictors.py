"""What ``depth-eval`` scores: an RGB image in, depth at the network's size out (model units).

``CheckpointPredictor`` runs a depth-train checkpoint's DepthNet in PyTorch; ``OnnxPredictor`` an
exported model through the runtime's ``DepthEstimator`` (the same code path as the car).

Two-frame models (``frames == 2``: a multi-frame checkpoint's student, a ``frames=2`` export) also take
the previous frame of the same drive; where there is none (a drive's first frame) they get the current
frame twice, the runtime's first-frame mode (``depth_node.runtime.pipeline``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from depth_node.geometry import resize_area


def add_guided_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--guided [PRIOR]`` and ``--intrinsics FX FY CX CY``, as ``depth-eval`` and ``depth-export`` take
    them: ``what`` (the checkpoint) as a guided two-frame model (``training.networks.guided``)."""
    parser.add_argument(
        "--guided",
        nargs="?",
        const="single_frame",
        choices=("single_frame", "student"),  # GUIDED_PRIORS, spelt out: depth-eval --onnx needs no torch
        help=f"{what} as a two-frame model: its pose net, the previous frame matched around the "
        "single-frame depth (default) or a multi-frame checkpoint's student's (training.networks.guided)",
    )
    parser.add_argument(
        "--intrinsics",
        type=float,
        nargs=4,
        metavar=("FX", "FY", "CX", "CY"),
        help="--guided: the camera, normalised by image size (a single-frame checkpoint records none)",
    )


class Predictor:
    """Interface: ``input_size`` (w, h), ``frames``, ``metric``, ``metric_scale``,
    ``predict(rgb, prev=None) -> depth``."""

    name: str = "model"
    input_size: tuple[int, int]
    frames: int = 1  # 2: the model also takes the previous frame
    metric: bool = False  # trained with metric supervision: depth * metric_scale is metres
    metric_scale: float = 1.0

    def predict_batch(self, images: np.ndarray, prev: np.ndarray | None = None) -> np.ndarray:
        """[N,3,H,W] float32 in [0,1] at input_size (and the previous frames, the same, for a
        two-frame model) -> [N,H,W] depth in model units."""
        raise NotImplementedError

    def _network_input(self, rgb: np.ndarray) -> np.ndarray:
        width, height = self.input_size
        resized = resize_area(rgb, (width, height))
        return np.ascontiguousarray((resized.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])

    def predict(self, rgb: np.ndarray, prev: np.ndarray | None = None) -> np.ndarray:
        """RGB uint8 (h,w,3) at any size -> depth (H,W) at the network's size, in model units.

        ``prev``: the previous frame of the same drive, RGB like ``rgb``, for a two-frame model (None:
        there is none, so the current frame goes in twice); a single-frame model ignores it."""
        batch = self._network_input(rgb)
        if self.frames == 1:
            return self.predict_batch(batch)[0]
        if prev is not None and prev.shape != rgb.shape:
            raise ValueError(f"previous frame of shape {prev.shape} for a frame of shape {rgb.shape}")
        return self.predict_batch(batch, batch if prev is None else self._network_input(prev))[0]


class CheckpointPredictor(Predictor):
    """A depth-train checkpoint's DepthNet (PyTorch); of a multi-frame checkpoint, its two-frame student
    with the pose net (``training.checkpoint.two_frame_net_from_checkpoint``), not the teacher.
    ``guided`` (a prior of ``GUIDED_PRIORS``): the two-frame model of
    ``training.checkpoint.guided_net_from_checkpoint`` instead, with ``intrinsics`` (fx, fy, cx, cy
    normalised by image size) where the checkpoint records none."""

    def __init__(
        self,
        checkpoint: str | Path,
        device: str = "auto",
        guided: str | None = None,
        intrinsics: Sequence[float] | None = None,
    ) -> None:
        import torch

        from training.checkpoint import (
            depth_net_from_checkpoint,
            guided_net_from_checkpoint,
            is_multi_frame,
            load_checkpoint,
            two_frame_net_from_checkpoint,
        )
        from training.losses import METRIC_TRAINING_MODES

        self._torch = torch
        ckpt = load_checkpoint(checkpoint)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.frames = 2 if guided or is_multi_frame(ckpt) else 1
        if guided:
            net = guided_net_from_checkpoint(ckpt, intrinsics, guided)
        elif self.frames == 2:
            net = two_frame_net_from_checkpoint(ckpt)
        else:
            net = depth_net_from_checkpoint(ckpt)
        self.net = net.to(self.device)
        data = ckpt["config"]["data"]
        self.input_size = (int(data["width"]), int(data["height"]))
        self.training_mode = str(ckpt.get("training_mode", "self_supervised"))
        self.metric = self.training_mode in METRIC_TRAINING_MODES
        self.name = Path(checkpoint).name
        self.config = ckpt["config"]

    def predict_batch(self, images: np.ndarray, prev: np.ndarray | None = None) -> np.ndarray:
        torch = self._torch
        with torch.no_grad():
            image = torch.from_numpy(images).to(self.device)
            if self.frames == 2:
                depth = self.net(image, torch.from_numpy(images if prev is None else prev).to(self.device))
            else:
                depth = self.net.predict_depth(image)
        return depth[:, 0].float().cpu().numpy()


class OnnxPredictor(Predictor):
    """An exported ONNX model through the runtime's DepthEstimator (the same code path as the car)."""

    def __init__(self, model_path: str | Path, providers: Sequence[str] = ("cpu",), threads: int = 0) -> None:
        from depth_node.runtime.estimator import DepthEstimator

        self.estimator = DepthEstimator(model_path, providers=tuple(providers), threads=threads)
        info = self.estimator.info
        self.input_size = (int(info.input_width), int(info.input_height))
        self.metric = bool(info.scale_is_metric)
        self.metric_scale = float(info.metric_scale)
        self.training_mode = info.training_mode
        self.name = Path(model_path).name
        self.source = info.source
        self.frames = int(info.frames)

    def predict_batch(self, images: np.ndarray, prev: np.ndarray | None = None) -> np.ndarray:
        if self.frames == 2 and prev is None:
            prev = images  # no previous frame: the runtime's first-frame mode
        return self.estimator.infer(images, prev if self.frames == 2 else None)[:, 0]
