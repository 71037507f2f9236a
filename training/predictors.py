"""What ``depth-eval`` scores: an RGB image in, depth at the network's size out (model units).

``CheckpointPredictor`` runs a depth-train checkpoint's DepthNet in PyTorch; ``OnnxPredictor`` an
exported model through the runtime's ``DepthEstimator`` (the same code path as the car).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from depth_node.geometry import resize_area


class Predictor:
    """Interface: ``input_size`` (w, h), ``metric``, ``metric_scale``, ``predict(rgb) -> depth``."""

    name: str = "model"
    input_size: tuple[int, int]
    metric: bool = False  # trained with metric supervision: depth * metric_scale is metres
    metric_scale: float = 1.0

    def predict_batch(self, images: np.ndarray) -> np.ndarray:
        """[N,3,H,W] float32 in [0,1] at input_size -> [N,H,W] depth in model units."""
        raise NotImplementedError

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 (h,w,3) at any size -> depth (H,W) at the network's size, in model units."""
        width, height = self.input_size
        resized = resize_area(rgb, (width, height))
        batch = (resized.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        return self.predict_batch(np.ascontiguousarray(batch))[0]


class CheckpointPredictor(Predictor):
    """A depth-train checkpoint's DepthNet (PyTorch)."""

    def __init__(self, checkpoint: str | Path, device: str = "auto") -> None:
        import torch

        from training.checkpoint import depth_net_from_checkpoint, load_checkpoint
        from training.losses import METRIC_TRAINING_MODES

        self._torch = torch
        ckpt = load_checkpoint(checkpoint)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.net = depth_net_from_checkpoint(ckpt).to(self.device)
        data = ckpt["config"]["data"]
        self.input_size = (int(data["width"]), int(data["height"]))
        self.training_mode = str(ckpt.get("training_mode", "self_supervised"))
        self.metric = self.training_mode in METRIC_TRAINING_MODES
        self.name = Path(checkpoint).name
        self.config = ckpt["config"]

    def predict_batch(self, images: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            depth = self.net.predict_depth(self._torch.from_numpy(images).to(self.device))
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

    def predict_batch(self, images: np.ndarray) -> np.ndarray:
        # depth-eval scores single images: a two-frame model gets each frame twice (its first-frame mode).
        prev = images if self.estimator.info.frames == 2 else None
        return self.estimator.infer(images, prev)[:, 0]
