"""MobileNetV3-Large encoder ("Searching for MobileNetV3", Howard et al., ICCV 2019) with
torchvision's parameter names (no torchvision dependency).

The module tree is torchvision's ``mobilenet_v3_large(width_mult=1.0).features`` exactly:
``features.0`` is the stem (Conv-BN-Hardswish as ``0.0``/``0.1``), ``features.1``..``features.15``
are inverted residual blocks (``block.{j}`` = [expand 1x1,] depthwise, [squeeze-excitation
``fc1``/``fc2``,] project 1x1, each conv a ``{conv, bn[, act]}`` Sequential), ``features.16`` the
last 1x1 conv to 960 channels. The classifier is not built, so ``load_mobilenet_weights`` takes the
``features.*`` tensors of a torchvision ImageNet state dict (e.g. ``mobilenet_v3_large-8738ca79.pth``).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from training.networks._weights import load_exact_state_dict, load_state_dict_file


class BlockSpec(NamedTuple):
    kernel: int
    expanded: int
    out: int
    squeeze_excite: bool
    hard_swish: bool
    stride: int


# torchvision's mobilenet_v3_large table at width 1.0 (all counts already multiples of 8).
LARGE_BLOCKS = (
    BlockSpec(3, 16, 16, False, False, 1),
    BlockSpec(3, 64, 24, False, False, 2),
    BlockSpec(3, 72, 24, False, False, 1),
    BlockSpec(5, 72, 40, True, False, 2),
    BlockSpec(5, 120, 40, True, False, 1),
    BlockSpec(5, 120, 40, True, False, 1),
    BlockSpec(3, 240, 80, False, True, 2),
    BlockSpec(3, 200, 80, False, True, 1),
    BlockSpec(3, 184, 80, False, True, 1),
    BlockSpec(3, 184, 80, False, True, 1),
    BlockSpec(3, 480, 112, True, True, 1),
    BlockSpec(3, 672, 112, True, True, 1),
    BlockSpec(5, 672, 160, True, True, 2),
    BlockSpec(5, 960, 160, True, True, 1),
    BlockSpec(5, 960, 160, True, True, 1),
)
STEM_CHANNELS = 16
LAST_CHANNELS = 960
# ``features`` indices whose outputs end the strides 2, 4, 8, 16, 32.
PYRAMID_INDICES = (1, 3, 6, 12, 16)


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: round to a multiple of ``divisor``, losing at most 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn(
    in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act: type[nn.Module] | None = None
) -> nn.Sequential:
    """torchvision's ``Conv2dNormActivation`` layout: ``0`` conv (no bias), ``1`` BN, ``2`` activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        # torchvision's MobileNetV3 BN settings; the ImageNet running statistics were made with them.
        nn.BatchNorm2d(out_ch, eps=0.001, momentum=0.01),
    ]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel gate: global pool -> 1x1 (``fc1``) -> ReLU -> 1x1 (``fc2``) -> hard sigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = make_divisible(channels // 4)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.fc2(self.relu(self.fc1(F.adaptive_avg_pool2d(x, 1))))
        return x * F.hardsigmoid(scale)


class InvertedResidual(nn.Module):
    """MobileNetV3 bottleneck; residual when the stride is 1 and the width unchanged."""

    def __init__(self, in_ch: int, spec: BlockSpec) -> None:
        super().__init__()
        act = nn.Hardswish if spec.hard_swish else nn.ReLU
        layers: list[nn.Module] = []
        if spec.expanded != in_ch:
            layers.append(conv_bn(in_ch, spec.expanded, 1, act=act))
        layers.append(conv_bn(spec.expanded, spec.expanded, spec.kernel, spec.stride, spec.expanded, act))
        if spec.squeeze_excite:
            layers.append(SqueezeExcitation(spec.expanded))
        layers.append(conv_bn(spec.expanded, spec.out, 1))
        self.block = nn.Sequential(*layers)
        self.use_residual = spec.stride == 1 and in_ch == spec.out

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return out + x if self.use_residual else out


class MobileNetV3Encoder(nn.Module):
    """MobileNetV3-Large as a 5-level feature pyramid (strides 2, 4, 8, 16, 32).

    Channels: 16, 24, 40, 112, 960 (the stride-32 level is the 1x1 conv to 960, as in torchvision's
    classifier input). Input expected ImageNet-normalised (DepthNet does it).
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, STEM_CHANNELS, 3, 2, act=nn.Hardswish)]
        in_ch = STEM_CHANNELS
        for spec in LARGE_BLOCKS:
            layers.append(InvertedResidual(in_ch, spec))
            in_ch = spec.out
        layers.append(conv_bn(in_ch, LAST_CHANNELS, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.num_ch_enc = [STEM_CHANNELS, 24, 40, 112, LAST_CHANNELS]
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation, so random-init training behaves like the reference code.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for idx, layer in enumerate(self.features):
            x = layer(x)
            if idx in PYRAMID_INDICES:
                feats.append(x)
        return feats


def load_mobilenet_weights(encoder: MobileNetV3Encoder, weights: str | Path | dict[str, Tensor]) -> None:
    """Load a torchvision ``mobilenet_v3_large`` ImageNet state dict (file path or dict); strict.

    The full model's state dict is fine: only its ``features.*`` tensors are used (the classifier
    is dropped). A missing, unexpected or mis-shaped tensor is a one-line error naming the source.
    """
    source = "state dict" if isinstance(weights, dict) else str(weights)
    state = dict(weights) if isinstance(weights, dict) else load_state_dict_file(weights)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    features = {k: v for k, v in state.items() if k.startswith("features.")}
    if not features:
        raise ValueError(f"{source}: no 'features.*' tensors (expected torchvision's mobilenet_v3_large)")
    what = f"{source}: mobilenetv3_large weights do not match torchvision's names"
    load_exact_state_dict(encoder, features, what)
