"""LR-ASPP depth head on MobileNetV3-Large (``backbone: mobilenetv3_large``, ``decoder: lraspp``):
the Lite Reduced ASPP segmentation head of "Searching for MobileNetV3" (Howard et al., ICCV 2019),
laid out as torchvision's ``lraspp_mobilenet_v3_large`` with one output channel, a disparity logit.

Head (torchvision's ``LRASPPHead``, same module names): on the last features (960 ch) a 1x1
conv+BN+ReLU branch (``cbr``, 128 ch) times a global-pool 1x1-conv sigmoid scale (``scale``),
upsampled bilinearly to the stride-8 features (40 ch) and classified (``high_classifier``), plus a
1x1 classifier on the stride-8 features (``low_classifier``), summed; the sum is upsampled bilinearly
to the input size (as torchvision's ``LRASPP.forward``) and a sigmoid makes it a disparity.

Encoder: the shared ``MobileNetV3Encoder`` (``mobilenet.py``), dilated as torchvision's
``mobilenet_v3_large(dilated=True)`` that LR-ASPP uses: the last stage's depthwise convolutions get
stride 1 and dilation 2, so the 960-channel features are at stride 16, not 32 (``dilate_last_stage``;
no parameter changes, ImageNet weights load as before). The stride-8 input is the pyramid's level 2
(the end of the stride-8 stage; torchvision taps the first block of that stage, same width).

**One scale.** The head predicts a single full-resolution map, ``("disp", 0)``; ``num_scales`` is
not used. Nothing else needs to change for that: the loss takes its scales from the ``("disp", s)``
keys present (``SelfSupervisedLoss._scales_and_sources``) and already upsamples each to the input size,
and the export and training logs read ``("disp", 0)`` only. Downsampled copies of the same map as
"other scales" would only repeat the scale-0 photometric term at lower resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.networks.mobilenet import MobileNetV3Encoder

INTER_CHANNELS = 128  # torchvision's LRASPP default
LOW_LEVEL, HIGH_LEVEL = 2, 4  # pyramid levels: stride 8 and the last features
# ``features`` indices of the last stage (torchvision's C4 blocks), dilated for LR-ASPP.
DILATED_FEATURES = (13, 14, 15)
DILATION = 2


def dilate_last_stage(encoder: nn.Module, backbone: str = "") -> None:
    """Turn ``encoder``'s last stage to stride 1, dilation 2 in place (torchvision's ``dilated=True``).

    Raises a one-line ValueError for anything but the MobileNetV3-Large encoder: the head's widths
    and the dilated stage are that network's.
    """
    if not isinstance(encoder, MobileNetV3Encoder):
        name = backbone or type(encoder).__name__
        raise ValueError(f"decoder 'lraspp' needs backbone 'mobilenetv3_large', got {name!r}")
    for idx in DILATED_FEATURES:
        for conv in encoder.features[idx].modules():
            if isinstance(conv, nn.Conv2d) and conv.groups > 1:  # the depthwise convolution
                conv.stride = (1, 1)
                conv.dilation = (DILATION, DILATION)
                conv.padding = tuple((k - 1) // 2 * DILATION for k in conv.kernel_size)


class LRASPPDecoder(nn.Module):
    """``forward(features[5]) -> {("disp", 0): sigmoid disparity at the input size}``."""

    def __init__(self, num_ch_enc: list[int], num_scales: int = 1) -> None:
        super().__init__()
        del num_scales  # one output scale, see the module docstring
        self.scales = [0]
        self.num_ch_enc = list(num_ch_enc)
        low, high = self.num_ch_enc[LOW_LEVEL], self.num_ch_enc[HIGH_LEVEL]
        self.cbr = nn.Sequential(
            nn.Conv2d(high, INTER_CHANNELS, 1, bias=False),
            nn.BatchNorm2d(INTER_CHANNELS),
            nn.ReLU(inplace=True),
        )
        self.scale = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(high, INTER_CHANNELS, 1, bias=False), nn.Sigmoid()
        )
        self.low_classifier = nn.Conv2d(low, 1, 1)
        self.high_classifier = nn.Conv2d(INTER_CHANNELS, 1, 1)

    def init_disparity_bias(self, logit: float) -> None:
        """Centre the initial (pre-sigmoid) output on ``logit``: the two classifiers' biases add up."""
        nn.init.constant_(self.low_classifier.bias, logit)
        nn.init.zeros_(self.high_classifier.bias)

    def forward(self, features: list[Tensor]) -> dict[tuple[str, int], Tensor]:
        low, high = features[LOW_LEVEL], features[HIGH_LEVEL]
        x = self.cbr(high) * self.scale(high)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        logit = self.low_classifier(low) + self.high_classifier(x)
        # The encoder's first level is at H/2: the input size is twice its size.
        size = (2 * features[0].shape[-2], 2 * features[0].shape[-1])
        logit = F.interpolate(logit, size=size, mode="bilinear", align_corners=False)
        return {("disp", 0): torch.sigmoid(logit)}
