"""U-Net++ depth decoder (``decoder: unetpp``): nested dense skip pathways over the 5 encoder levels
("UNet++: A Nested U-Net Architecture for Medical Image Segmentation", Zhou et al., DLMIA 2018).

Nodes X[k][j]: level k (stride 2^(k+1), k = 0..4), column j. Column 0 is the encoder's pyramid; for
j >= 1 and k + j <= 4,

    X[k][j] = H( [X[k][0], ..., X[k][j-1], Up(X[k+1][j-1])] )

(the paper's dense skip pathway: every earlier node of the same level, plus the upsampled node below).
``Up`` is Monodepth2's: a ConvBlock to the level's width at the coarse resolution, then nearest x2;
``H`` is one ConvBlock (reflection-padded 3x3 + ELU), so a plain U-Net (only the nodes with
k + j = 4) is exactly Monodepth2's decoder, and the widths per level are its (16, 32, 64, 128, 256).

Outputs follow the Monodepth2 decoder's contract, so the losses, trainer and export work unchanged:
``("disp", s)`` at H/2^s x W/2^s, a sigmoid. The paper's deep supervision heads sit on X[0][1..4], all
at one resolution; the multi-scale contract needs one map per resolution instead, so the heads sit on
the deepest node of each level, X[s-1][5-s] (s = 1..4, the end of the nested decoder at that scale),
and scale 0 comes from X[0][4] upsampled by one more Monodepth2 stage (stride 2 -> 1, no skip).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.networks.depth_decoder import Conv3x3, ConvBlock

LEVELS = 5


class UNetPlusPlusDecoder(nn.Module):
    """Nested-skip decoder: ``forward(features[5]) -> {("disp", s): sigmoid disparity}``."""

    num_ch_dec = (16, 32, 64, 128, 256)  # width at stride 2^i, as Monodepth2's decoder

    def __init__(self, num_ch_enc: list[int], num_scales: int = 4) -> None:
        super().__init__()
        if not 1 <= num_scales <= 5:
            raise ValueError(f"num_scales must be in 1..5, got {num_scales}")
        if len(num_ch_enc) != LEVELS:
            raise ValueError(f"unetpp decoder needs {LEVELS} encoder levels, got {len(num_ch_enc)}")
        self.scales = list(range(num_scales))
        self.num_ch_enc = list(num_ch_enc)
        self.blocks = nn.ModuleDict()
        for j in range(1, LEVELS):
            for k in range(LEVELS - j):
                width = self.level_width(k)
                below = self.num_ch_enc[k + 1] if j == 1 else self.level_width(k + 1)
                self.blocks[f"up_{k}_{j}"] = ConvBlock(below, width)
                self.blocks[f"node_{k}_{j}"] = ConvBlock(self.num_ch_enc[k] + width * j, width)
        # The full-resolution stage of Monodepth2's decoder (no encoder map at stride 1).
        self.blocks["upconv_0_0"] = ConvBlock(self.level_width(0), self.num_ch_dec[0])
        self.blocks["upconv_0_1"] = ConvBlock(self.num_ch_dec[0], self.num_ch_dec[0])
        for s in self.scales:
            self.blocks[f"dispconv_{s}"] = Conv3x3(self.num_ch_dec[s], 1)

    def level_width(self, k: int) -> int:
        """Decoder width of level k (stride 2^(k+1)): Monodepth2's width at that stride."""
        return self.num_ch_dec[k + 1]

    def init_disparity_bias(self, logit: float) -> None:
        """Set every disparity head's bias so the initial (pre-sigmoid) output centres on ``logit``."""
        for s in self.scales:
            nn.init.constant_(self.blocks[f"dispconv_{s}"].conv.bias, logit)

    def forward(self, features: list[Tensor]) -> dict[tuple[str, int], Tensor]:
        nodes = [[f] for f in features]  # nodes[k][j] = X[k][j]
        outputs: dict[tuple[str, int], Tensor] = {}
        for j in range(1, LEVELS):
            for k in range(LEVELS - j):
                up = F.interpolate(self.blocks[f"up_{k}_{j}"](nodes[k + 1][j - 1]), scale_factor=2.0)
                nodes[k].append(self.blocks[f"node_{k}_{j}"](torch.cat([*nodes[k], up], 1)))
            s = LEVELS - j  # X[s-1][j] with j = 5 - s is the deepest node at stride 2^s
            if s in self.scales:
                outputs[("disp", s)] = torch.sigmoid(self.blocks[f"dispconv_{s}"](nodes[s - 1][j]))
        x = F.interpolate(self.blocks["upconv_0_0"](nodes[0][-1]), scale_factor=2.0)
        x = self.blocks["upconv_0_1"](x)
        if 0 in self.scales:
            outputs[("disp", 0)] = torch.sigmoid(self.blocks["dispconv_0"](x))
        return outputs
