"""CSP-Darknet encoder: the backbone of Ultralytics YOLOv8 (layers 0-9 of ``yolov8.yaml``), written
here from that layout with Ultralytics' module names.

Layers: ``model.0`` Conv s2, ``model.1`` Conv s2, ``model.2`` C2f, ``model.3`` Conv s2, ``model.4``
C2f, ``model.5`` Conv s2, ``model.6`` C2f, ``model.7`` Conv s2, ``model.8`` C2f, ``model.9`` SPPF.
Each Conv is ``conv`` (no bias) + ``bn`` + SiLU; a C2f is ``cv1``, ``cv2`` and bottlenecks ``m.{j}``
(``cv1``, ``cv2``, with shortcut); SPPF is ``cv1``, three chained 5x5 max pools, ``cv2``.

``DARKNET_SIZES`` holds YOLOv8's depth/width multipliers; the registered ``darknet`` backbone is the
"s" size (depth 0.33, width 0.50: channels 32, 64, 128, 256, 512; C2f repeats 1, 2, 2, 1), whose
widths are close to ResNet18's. No public ImageNet checkpoint of this exact layout is assumed:
``load_darknet_weights`` takes any state dict with these names, e.g. the backbone part of a YOLOv8
detection model's ``model.state_dict()`` (COCO-trained), re-saved as a plain state dict.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn

from training.networks._weights import load_exact_state_dict

# size -> (depth multiple, width multiple), as in Ultralytics' yolov8.yaml ``scales``.
DARKNET_SIZES: dict[str, tuple[float, float]] = {"n": (0.33, 0.25), "s": (0.33, 0.50)}
# yolov8.yaml at depth = width = 1 (max_channels 1024 is not reached by n or s).
BASE_CHANNELS = (64, 128, 256, 512, 1024)
BASE_REPEATS = (3, 6, 6, 3)
BACKBONE_LAYERS = 10  # model.0 .. model.9; a detection model's neck and head follow
# ``model`` indices whose outputs end the strides 2, 4, 8, 16, 32 (SPPF for the last).
PYRAMID_INDICES = (0, 2, 4, 6, 9)


class Conv(nn.Module):
    """Conv (no bias, 'same' padding) + BatchNorm + SiLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False)
        # Ultralytics' BN settings (initialize_weights), so its running statistics mean the same.
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001, momentum=0.03)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """Two 3x3 Convs with a residual connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.cv1 = Conv(channels, channels, 3)
        self.cv2 = Conv(channels, channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.cv2(self.cv1(x))


class C2f(nn.Module):
    """CSP block of YOLOv8: split in two halves, chain bottlenecks on one, concatenate every stage."""

    def __init__(self, in_ch: int, out_ch: int, repeats: int) -> None:
        super().__init__()
        self.c = out_ch // 2
        self.cv1 = Conv(in_ch, 2 * self.c)
        self.cv2 = Conv((2 + repeats) * self.c, out_ch)
        self.m = nn.ModuleList(Bottleneck(self.c) for _ in range(repeats))

    def forward(self, x: Tensor) -> Tensor:
        parts = list(self.cv1(x).chunk(2, 1))
        for block in self.m:
            parts.append(block(parts[-1]))
        return self.cv2(torch.cat(parts, 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling (fast): 5, 9 and 13 pixel max pools as three chained 5x5 pools."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 5) -> None:
        super().__init__()
        hidden = in_ch // 2
        self.cv1 = Conv(in_ch, hidden)
        self.cv2 = Conv(hidden * 4, out_ch)
        self.m = nn.MaxPool2d(kernel_size=kernel, stride=1, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat([x, y1, y2, self.m(y2)], 1))


def darknet_layout(size: str) -> tuple[list[int], list[int]]:
    """Channels of the 5 levels and C2f repeats of the 4 stages for a YOLOv8 ``size``."""
    if size not in DARKNET_SIZES:
        raise ValueError(f"unknown darknet size {size!r}; expected one of {sorted(DARKNET_SIZES)}")
    depth, width = DARKNET_SIZES[size]
    # Ultralytics' rounding: channels up to a multiple of 8, repeats to the nearest integer, at least 1.
    channels = [math.ceil(c * width / 8) * 8 for c in BASE_CHANNELS]
    repeats = [max(round(n * depth), 1) for n in BASE_REPEATS]
    return channels, repeats


class DarknetEncoder(nn.Module):
    """CSP-Darknet (YOLOv8 backbone) as a 5-level feature pyramid (strides 2, 4, 8, 16, 32).

    Levels: the stem Conv, then each stage's C2f output, the last one after SPPF. Input expected
    ImageNet-normalised (DepthNet does it).
    """

    def __init__(self, size: str = "s") -> None:
        super().__init__()
        channels, repeats = darknet_layout(size)
        self.size = size
        layers: list[nn.Module] = [Conv(3, channels[0], 3, 2)]
        for stage, count in enumerate(repeats):
            layers.append(Conv(channels[stage], channels[stage + 1], 3, 2))
            layers.append(C2f(channels[stage + 1], channels[stage + 1], count))
        layers.append(SPPF(channels[-1], channels[-1]))
        self.model = nn.Sequential(*layers)
        self.num_ch_enc = channels

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for idx, layer in enumerate(self.model):
            x = layer(x)
            if idx in PYRAMID_INDICES:
                feats.append(x)
        return feats


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist (expected a darknet state dict)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # an Ultralytics .pt pickles the whole model: refuse rather than unpickle
        raise ValueError(
            f"{path}: not a plain state dict ({exc.__class__.__name__}); re-save it as "
            "torch.save(ckpt['model'].float().state_dict(), ...) from a trusted environment"
        ) from exc
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


def _backbone_part(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``model.0`` .. ``model.9`` tensors; strips ``module.`` and an outer ``model.`` (YOLO wrapper)."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        key = key.removeprefix("model.") if key.startswith("model.model.") else key
        parts = key.split(".")
        if len(parts) > 1 and parts[0] == "model" and parts[1].isdigit() and int(parts[1]) < BACKBONE_LAYERS:
            out[key] = value
    return out


def load_darknet_weights(encoder: DarknetEncoder, weights: str | Path | dict[str, Tensor]) -> None:
    """Load a state dict with Ultralytics' names (file path or dict) into ``encoder``; strict.

    Only ``model.0`` .. ``model.9`` are used (a detection model's neck and head are dropped). A
    missing, unexpected or mis-shaped tensor is a one-line error naming the source.
    """
    source = "state dict" if isinstance(weights, dict) else str(weights)
    state = dict(weights) if isinstance(weights, dict) else _read_state_dict(Path(weights))
    backbone = _backbone_part(state)
    if not backbone:
        raise ValueError(f"{source}: no 'model.0' .. 'model.9' tensors (expected Ultralytics' names)")
    what = f"{source}: darknet-{encoder.size} weights do not match Ultralytics' names"
    load_exact_state_dict(encoder, backbone, what, hint="(YOLOv8 n vs s width?)")
