"""Pose network: a separate ResNet18 on a stacked frame pair plus Monodepth2's pose decoder.

Output for the pair (earlier, later): axis-angle rotation and translation of the transform that
maps points from the earlier camera frame into the later camera frame (optical frame, z forward).
Driving forward therefore gives a translation of about [0, 0, -d] with d the distance travelled.

Defaults differ from Monodepth2 on purpose (measured on a synthetic street, 96x320, random init,
batch 4, Adam 1e-4): Monodepth2's head multiplies both outputs by 0.01 and starts at zero motion;
it did not learn within 1000 steps (depth collapsed to min_depth, translation stayed ~0.005 while
the car moved ~1 m/frame). Without the 0.01 on translation (kept on rotation) and with the
translation output initialised to ``init_translation`` (1 m/frame forward), training learned
within 300 steps. ``init="monodepth2"`` with ``translation_scale=0.01`` restores Monodepth2.

SfMLearner's explainability mask (Zhou et al., CVPR 2017), optional: a per-pixel soft mask of the
later frame's pixels that the rigid warp can explain, predicted from the pose encoder's features.
SfMLearner's mask decoder upsamples from the deepest features alone; this one adds the encoder's
skip connections (as the depth decoder has), which localises the mask at no real cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.networks.depth_decoder import IMAGENET_MEAN, IMAGENET_STD
from training.networks.resnet import ResnetEncoder, load_torchvision_weights

DEFAULT_INIT_TRANSLATION = (0.0, 0.0, -1.0)


class PoseDecoder(nn.Module):
    """Monodepth2's pose decoder for one frame pair: squeeze 1x1, two 3x3 convs, 1x1 to 6 values,
    spatial mean. Output ``[B,6]`` = (axisangle, translation) before scaling."""

    def __init__(self, num_ch_enc: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(num_ch_enc, 256, 1)
        self.pose_0 = nn.Conv2d(256, 256, 3, 1, 1)
        self.pose_1 = nn.Conv2d(256, 256, 3, 1, 1)
        self.pose_2 = nn.Conv2d(256, 6, 1)
        self.relu = nn.ReLU()

    def forward(self, feature: Tensor) -> Tensor:
        x = self.relu(self.squeeze(feature))
        x = self.relu(self.pose_0(x))
        x = self.relu(self.pose_1(x))
        return self.pose_2(x).mean(dim=(2, 3))


class ExplainabilityDecoder(nn.Module):
    """Mask logits [B,1,H,W] at input resolution from the pose encoder's five feature levels."""

    def __init__(self, num_ch_enc: Sequence[int], widths: Sequence[int] = (128, 64, 32, 16)) -> None:
        super().__init__()
        ins = [num_ch_enc[-1], *widths[:-1]]
        skips = list(num_ch_enc[-2::-1])  # levels 3, 2, 1, 0
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in + c_skip, c_out, 3, 1, 1) for c_in, c_skip, c_out in zip(ins, skips, widths)
        )
        self.logits = nn.Conv2d(widths[-1], 1, 3, 1, 1)
        self.act = nn.ELU()

    def forward(self, features: Sequence[Tensor], size: tuple[int, int]) -> Tensor:
        x = features[-1]
        for conv, skip in zip(self.convs, features[-2::-1]):
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = self.act(conv(torch.cat([x, skip], 1)))
        return F.interpolate(self.logits(x), size=size, mode="bilinear", align_corners=False)


class PoseNet(nn.Module):
    """``forward(earlier, later) -> (axisangle [B,3], translation [B,3])``, images RGB in [0,1].

    Args:
        num_layers: ResNet depth of the pose encoder (18 as in Monodepth2).
        weights: torchvision ImageNet state dict (path) for the encoder; the first conv's filters
            are replicated over the two frames and halved.
        rotation_scale: factor on the rotation output (0.01, Monodepth2's).
        translation_scale: factor on the translation output (1.0 default; Monodepth2: 0.01).
        init: "forward" (default) sets the last layer's translation bias so the initial output is
            ``init_translation``; "monodepth2" keeps PyTorch's default init (≈ zero motion).
        init_translation: initial translation in metres per frame pair (earlier -> later camera).
        explainability: also predict SfMLearner's explainability mask (``forward_with_mask``).
    """

    def __init__(
        self,
        num_layers: int = 18,
        weights: str | Path | None = None,
        rotation_scale: float = 0.01,
        translation_scale: float = 1.0,
        init: str = "forward",
        init_translation: Sequence[float] = DEFAULT_INIT_TRANSLATION,
        explainability: bool = False,
    ) -> None:
        super().__init__()
        if init not in ("forward", "monodepth2"):
            raise ValueError(f"pose init must be 'forward' or 'monodepth2', got {init!r}")
        self.encoder = ResnetEncoder(num_layers, num_input_images=2)
        if weights:
            load_torchvision_weights(self.encoder, weights)
        self.decoder = PoseDecoder(self.encoder.num_ch_enc[-1])
        self.explainability = ExplainabilityDecoder(self.encoder.num_ch_enc) if explainability else None
        self.rotation_scale = float(rotation_scale)
        self.translation_scale = float(translation_scale)
        if init == "forward":
            # Small weights so that the bias dominates at first; the bias is in output units
            # divided by the scale, so the scaled output starts at init_translation.
            nn.init.normal_(self.decoder.pose_2.weight, std=1e-3)
            bias = torch.zeros(6)
            bias[3:] = torch.tensor([float(v) for v in init_translation]) / self.translation_scale
            with torch.no_grad():
                self.decoder.pose_2.bias.copy_(bias)
        mean = torch.tensor(IMAGENET_MEAN * 2).view(1, 6, 1, 1)
        std = torch.tensor(IMAGENET_STD * 2).view(1, 6, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, earlier: Tensor, later: Tensor) -> tuple[Tensor, Tensor]:
        axisangle, translation, _ = self.forward_with_mask(earlier, later)
        return axisangle, translation

    def forward_with_mask(self, earlier: Tensor, later: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """(axisangle, translation, explainability logits [B,1,H,W] or None without the mask decoder)."""
        x = (torch.cat([earlier, later], dim=1) - self.mean) / self.std
        features = self.encoder(x)
        out = self.decoder(features[-1])
        logits = None if self.explainability is None else self.explainability(features, earlier.shape[-2:])
        return out[:, :3] * self.rotation_scale, out[:, 3:] * self.translation_scale, logits
