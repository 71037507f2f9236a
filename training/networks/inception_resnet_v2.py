"""Inception-ResNet-v2 encoder ("Inception-v4, Inception-ResNet and the Impact of Residual Connections
on Learning", Szegedy et al., AAAI 2017) with the public PyTorch port's parameter names.

The module tree is that of timm's ``inception_resnet_v2`` and Cadene's ``pretrainedmodels``
``inceptionresnetv2`` (both ports of Google's TF-slim checkpoint, identical names): ``conv2d_1a`` ..
``conv2d_4a`` (each a ``BasicConv2d``: ``conv`` without bias, ``bn`` with eps 1e-3), ``mixed_5b``,
``repeat`` (10 x Block35), ``mixed_6a``, ``repeat_1`` (20 x Block17), ``mixed_7a``, ``repeat_2``
(9 x Block8), ``block8``, ``conv2d_7b``. The classifier (timm ``classif``, Cadene ``last_linear``) is
not built; ``load_inception_resnet_v2_weights`` drops it.

Two departures from the port, both weight-compatible:

- **Aligned feature maps.** The stem's and the reduction blocks' convolutions and max pools are
  VALID (unpadded) in the original, so a 192x640 input gives 93x317, 44x156, 21x76, 10x37, 4x17
  maps. Here every such 3x3 layer is padded by 1 (TF-slim's ``align_feature_maps=True``, "all VALID
  paddings changed to SAME"), so the five levels are exactly H/2, H/4, H/8, H/16, H/32 for any
  multiple of 32, as the depth decoders need. Padding has no parameters: the ImageNet weights load
  unchanged, only the border pixels of each map see zeros they did not see in ImageNet training.
- **Input normalisation.** The checkpoint was trained on inputs scaled to [-1, 1] (mean = std = 0.5),
  while DepthNet hands every encoder ImageNet-normalised images; ``forward`` maps one to the other
  first, so the weights see what they were trained on.

Pyramid levels (timm's ``feature_info``): ``conv2d_2b`` 64 ch /2, ``conv2d_4a`` 192 /4, ``repeat``
320 /8, ``repeat_1`` 1088 /16, ``conv2d_7b`` 1536 /32.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from training.networks._weights import load_exact_state_dict, load_state_dict_file
from training.networks.depth_decoder import IMAGENET_MEAN, IMAGENET_STD

# The classifier's names in timm (``classif``) and in Cadene's pretrainedmodels (``last_linear``).
CLASSIFIER_PREFIXES = ("classif.", "last_linear.")
# The checkpoint's input normalisation: (x - 0.5) / 0.5 of RGB in [0, 1].
INCEPTION_MEAN = INCEPTION_STD = 0.5
# Residual scales of the three repeated block types, as in the port.
BLOCK35_SCALE, BLOCK17_SCALE, BLOCK8_SCALE = 0.17, 0.10, 0.20


class BasicConv2d(nn.Module):
    """Conv (no bias) + BN (eps 1e-3, TF's) + ReLU."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


def aligned(in_ch: int, out_ch: int, stride: int = 1) -> BasicConv2d:
    """A 3x3 BasicConv2d that is VALID in the port, padded by 1 here (see the module docstring)."""
    return BasicConv2d(in_ch, out_ch, 3, stride, padding=1)


def aligned_pool() -> nn.MaxPool2d:
    """The port's stride-2 3x3 max pool, padded by 1 so that it halves even sizes exactly."""
    return nn.MaxPool2d(3, stride=2, padding=1)


class Mixed5b(nn.Module):
    """192 -> 320 channels: 1x1, 5x5, double 3x3 and pooled branches (stride 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = BasicConv2d(192, 96, 1)
        self.branch1 = nn.Sequential(BasicConv2d(192, 48, 1), BasicConv2d(48, 64, 5, padding=2))
        self.branch2 = nn.Sequential(
            BasicConv2d(192, 64, 1), BasicConv2d(64, 96, 3, padding=1), BasicConv2d(96, 96, 3, padding=1)
        )
        self.branch3 = nn.Sequential(
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), BasicConv2d(192, 64, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class Block35(nn.Module):
    """Inception-ResNet-A (35x35 grid in the paper), 320 channels, residual scaled by 0.17."""

    def __init__(self, scale: float = BLOCK35_SCALE) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(320, 32, 1)
        self.branch1 = nn.Sequential(BasicConv2d(320, 32, 1), BasicConv2d(32, 32, 3, padding=1))
        self.branch2 = nn.Sequential(
            BasicConv2d(320, 32, 1), BasicConv2d(32, 48, 3, padding=1), BasicConv2d(48, 64, 3, padding=1)
        )
        self.conv2d = nn.Conv2d(128, 320, 1)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2d(torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1))
        return self.relu(out * self.scale + x)


class Mixed6a(nn.Module):
    """Reduction-A: 320 -> 1088 channels, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = aligned(320, 384, stride=2)
        self.branch1 = nn.Sequential(
            BasicConv2d(320, 256, 1), BasicConv2d(256, 256, 3, padding=1), aligned(256, 384, stride=2)
        )
        self.branch2 = aligned_pool()

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


class Block17(nn.Module):
    """Inception-ResNet-B (17x17 grid), 1088 channels, 1x7/7x1 factorised branch, scale 0.10."""

    def __init__(self, scale: float = BLOCK17_SCALE) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(1088, 192, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(1088, 128, 1),
            BasicConv2d(128, 160, (1, 7), padding=(0, 3)),
            BasicConv2d(160, 192, (7, 1), padding=(3, 0)),
        )
        self.conv2d = nn.Conv2d(384, 1088, 1)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2d(torch.cat([self.branch0(x), self.branch1(x)], 1))
        return self.relu(out * self.scale + x)


class Mixed7a(nn.Module):
    """Reduction-B: 1088 -> 2080 channels, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(BasicConv2d(1088, 256, 1), aligned(256, 384, stride=2))
        self.branch1 = nn.Sequential(BasicConv2d(1088, 256, 1), aligned(256, 288, stride=2))
        self.branch2 = nn.Sequential(
            BasicConv2d(1088, 256, 1), BasicConv2d(256, 288, 3, padding=1), aligned(288, 320, stride=2)
        )
        self.branch3 = aligned_pool()

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class Block8(nn.Module):
    """Inception-ResNet-C (8x8 grid), 2080 channels, 1x3/3x1 branch; the last one has no ReLU."""

    def __init__(self, scale: float = BLOCK8_SCALE, relu: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(2080, 192, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(2080, 192, 1),
            BasicConv2d(192, 224, (1, 3), padding=(0, 1)),
            BasicConv2d(224, 256, (3, 1), padding=(1, 0)),
        )
        self.conv2d = nn.Conv2d(448, 2080, 1)
        self.relu = nn.ReLU() if relu else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2d(torch.cat([self.branch0(x), self.branch1(x)], 1)) * self.scale + x
        return out if self.relu is None else self.relu(out)


class InceptionResNetV2Encoder(nn.Module):
    """Inception-ResNet-v2 as a 5-level pyramid (strides 2..32; channels 64, 192, 320, 1088, 1536).

    Input: ImageNet-normalised RGB (as DepthNet gives every encoder), H and W multiples of 32.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv2d_1a = aligned(3, 32, stride=2)
        self.conv2d_2a = aligned(32, 32)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool_3a = aligned_pool()
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = aligned(80, 192)
        self.maxpool_5a = aligned_pool()
        self.mixed_5b = Mixed5b()
        self.repeat = nn.Sequential(*[Block35() for _ in range(10)])
        self.mixed_6a = Mixed6a()
        self.repeat_1 = nn.Sequential(*[Block17() for _ in range(20)])
        self.mixed_7a = Mixed7a()
        self.repeat_2 = nn.Sequential(*[Block8() for _ in range(9)])
        self.block8 = Block8(scale=1.0, relu=False)
        self.conv2d_7b = BasicConv2d(2080, 1536, 1)
        self.num_ch_enc = [64, 192, 320, 1088, 1536]
        # ImageNet-normalised -> the checkpoint's [-1, 1]: x_inc = (x * std + mean - 0.5) / 0.5.
        std, mean = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
        self.register_buffer("in_scale", (std / INCEPTION_STD).view(1, 3, 1, 1), persistent=False)
        self.register_buffer(
            "in_shift", ((mean - INCEPTION_MEAN) / INCEPTION_STD).view(1, 3, 1, 1), persistent=False
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        x = x * self.in_scale + self.in_shift
        f0 = self.conv2d_2b(self.conv2d_2a(self.conv2d_1a(x)))
        f1 = self.conv2d_4a(self.conv2d_3b(self.maxpool_3a(f0)))
        f2 = self.repeat(self.mixed_5b(self.maxpool_5a(f1)))
        f3 = self.repeat_1(self.mixed_6a(f2))
        f4 = self.conv2d_7b(self.block8(self.repeat_2(self.mixed_7a(f3))))
        return [f0, f1, f2, f3, f4]


def load_inception_resnet_v2_weights(
    encoder: InceptionResNetV2Encoder, weights: str | Path | dict[str, Tensor]
) -> None:
    """Load a timm ``inception_resnet_v2`` or Cadene ``inceptionresnetv2`` ImageNet state dict (file
    path or dict) into ``encoder``; strict apart from the classifier (either port's name for it)."""
    source = "state dict" if isinstance(weights, dict) else str(weights)
    expected = "a timm/pretrainedmodels inception_resnet_v2 state dict"
    state = dict(weights) if isinstance(weights, dict) else load_state_dict_file(weights, expected)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIXES)}
    what = f"{source}: inception_resnet_v2 weights do not match timm's names"
    load_exact_state_dict(encoder, state, what)
