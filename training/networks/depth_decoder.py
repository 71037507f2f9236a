"""Monodepth2-style depth decoder and the DepthNet (encoder + decoder) used for training and export."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.geometry import depth_to_sigmoid_logit, disp_to_depth

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Conv3x3(nn.Module):
    """Reflection-padded 3x3 convolution (padding by reflection avoids border artefacts in depth)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pad(x))


class ConvBlock(nn.Module):
    """Conv3x3 + ELU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv3x3(in_channels, out_channels)
        self.nonlin = nn.ELU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.nonlin(self.conv(x))


class SeparableConvBlock(nn.Module):
    """Reflection pad + depthwise 3x3 + pointwise 1x1 + ELU: a ConvBlock at ~1/9 of the MACs for
    wide inputs (no nonlinearity between the two convs, as in a separable convolution)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)
        self.nonlin = nn.ELU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.nonlin(self.pointwise(self.depthwise(self.pad(x))))


class DepthDecoder(nn.Module):
    """U-Net decoder with skip connections: sigmoid disparity at ``num_scales`` scales.

    ``("disp", s)`` has size H/2^s x W/2^s for an input of size H x W (the encoder's first feature
    map is at H/2, the decoder upsamples once more at the last level).
    """

    num_ch_dec = (16, 32, 64, 128, 256)

    def __init__(self, num_ch_enc: list[int], num_scales: int = 4) -> None:
        super().__init__()
        if not 1 <= num_scales <= 5:
            raise ValueError(f"num_scales must be in 1..5, got {num_scales}")
        self.scales = list(range(num_scales))
        self.num_ch_enc = list(num_ch_enc)
        self.blocks = nn.ModuleDict()
        for i in range(4, -1, -1):
            ch_in = self.num_ch_enc[-1] if i == 4 else self.num_ch_dec[i + 1]
            self.blocks[f"upconv_{i}_0"] = self.conv_block(ch_in, self.num_ch_dec[i])
            ch_in = self.num_ch_dec[i] + (self.num_ch_enc[i - 1] if i > 0 else 0)
            self.blocks[f"upconv_{i}_1"] = self.conv_block(ch_in, self.num_ch_dec[i])
        for s in self.scales:
            self.blocks[f"dispconv_{s}"] = Conv3x3(self.num_ch_dec[s], 1)

    def conv_block(self, in_channels: int, out_channels: int) -> nn.Module:
        return ConvBlock(in_channels, out_channels)

    def init_disparity_bias(self, logit: float) -> None:
        """Set every disparity head's bias so the initial (pre-sigmoid) output centres on ``logit``."""
        for s in self.scales:
            nn.init.constant_(self.blocks[f"dispconv_{s}"].conv.bias, logit)

    def forward(self, features: list[Tensor]) -> dict[tuple[str, int], Tensor]:
        outputs: dict[tuple[str, int], Tensor] = {}
        x = features[-1]
        for i in range(4, -1, -1):
            x = self.blocks[f"upconv_{i}_0"](x)
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            if i > 0:
                x = torch.cat([x, self.skip(i, features[i - 1], x)], dim=1)
            x = self.blocks[f"upconv_{i}_1"](x)
            if i in self.scales:
                outputs[("disp", i)] = torch.sigmoid(self.blocks[f"dispconv_{i}"](x))
        return outputs

    def skip(self, stage: int, features: Tensor, decoder: Tensor) -> Tensor:
        """What stage ``stage`` concatenates of the encoder's ``features`` (the decoder's upsampled
        ``decoder`` beside it): the features themselves; subclasses may gate them."""
        return features


class SlimDepthDecoder(DepthDecoder):
    """Monodepth2's decoder at half the channels, dense 3x3 blocks kept (``decoder: slim``).

    Same outputs, sizes, sigmoid heads and bias initialisation. The stages that read the encoder's
    wide skip features still cost most of it, so it keeps about 40 % of Monodepth2's multiply-
    accumulates; it is the step between Monodepth2's decoder and the light one.
    """

    num_ch_dec = (8, 16, 32, 64, 128)


class LightDepthDecoder(SlimDepthDecoder):
    """The slim decoder with depthwise-separable blocks (``decoder: light``): about a sixth of its
    multiply-accumulates, at a cost in accuracy (docs/FAST_MODEL_STUDY.md)."""

    def conv_block(self, in_channels: int, out_channels: int) -> nn.Module:
        return SeparableConvBlock(in_channels, out_channels)


DECODERS: dict[str, type[DepthDecoder]] = {
    "monodepth2": DepthDecoder,
    "slim": SlimDepthDecoder,
    "light": LightDepthDecoder,
}


class DepthNet(nn.Module):
    """Encoder + decoder. ``forward(image [B,3,H,W] RGB in [0,1]) -> {("disp", s): [B,1,H/2^s,W/2^s]}``.

    H and W must be multiples of 32. ImageNet normalisation happens inside (so the exported ONNX
    graph takes [0,1] RGB). ``predict_depth`` gives scale-0 depth via ``disp_to_depth``.
    """

    def __init__(
        self,
        encoder: nn.Module,
        backbone: str,
        num_scales: int = 4,
        min_depth: float = 0.1,
        max_depth: float = 100.0,
        init_depth: float | None = 12.0,
        decoder: str = "monodepth2",
    ) -> None:
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}; expected one of {', '.join(DECODERS)}")
        self.encoder = encoder
        self.decoder = DECODERS[decoder](encoder.num_ch_enc, num_scales)
        self.backbone = backbone
        self.num_scales = num_scales
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if init_depth is not None:
            # Start near a plausible street depth rather than at sigmoid(0) ~ 2*min_depth: with the
            # default head the photometric gradients first push depth to collapse (see networks/__init__).
            self.decoder.init_disparity_bias(
                depth_to_sigmoid_logit(init_depth, self.min_depth, self.max_depth)
            )

    def forward(self, image: Tensor) -> dict[tuple[str, int], Tensor]:
        if image.shape[-2] % 32 or image.shape[-1] % 32:
            raise ValueError(f"DepthNet input size {tuple(image.shape[-2:])} must be a multiple of 32")
        features = self.encoder((image - self.mean) / self.std)
        return self.decoder(features)

    def predict_depth(self, image: Tensor) -> Tensor:
        """Scale-0 depth [B,1,H,W] in model units (what the ONNX model outputs)."""
        disp = self.forward(image)[("disp", 0)]
        return disp_to_depth(disp, self.min_depth, self.max_depth)[1]
