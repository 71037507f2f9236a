"""Attention-and-skip depth decoder (``decoder: attention``): Monodepth2's U-Net decoder with an
additive attention gate on every skip connection ("Attention U-Net: Learning Where to Look for the
Pancreas", Oktay et al., MIDL 2018), the reading taken here of the seed's "encoder-decoder with
attention and skip connections" (its encoder is ``backbone: inception_resnet_v2``; any encoder works).

Gate (the paper's eq. 1-2): with x the skip's encoder features and g the decoder's features
(the gating signal, from the coarser level),

    alpha = sigmoid(psi(relu(W_x x + W_g g + b_g)) + b_psi),    skip = x * alpha

W_x, W_g, psi are 1x1 convolutions, F_int = channels(x) / 2 as in the paper's code. The paper
computes W_x x on a strided grid and resamples alpha up; here g is taken after the decoder's nearest
x2 upsampling, which is the same W_g g (a 1x1 convolution commutes with nearest upsampling) evaluated
at the skip's resolution, so alpha needs no resampling. Outputs, widths and heads are Monodepth2's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.networks.depth_decoder import DepthDecoder


class AttentionGate(nn.Module):
    """Additive attention gate: ``forward(skip, gate) -> skip * alpha`` with alpha in (0, 1) per pixel."""

    def __init__(self, skip_channels: int, gate_channels: int, inter_channels: int) -> None:
        super().__init__()
        self.W_x = nn.Conv2d(skip_channels, inter_channels, 1, bias=False)
        self.W_g = nn.Conv2d(gate_channels, inter_channels, 1)
        self.psi = nn.Conv2d(inter_channels, 1, 1)

    def coefficients(self, skip: Tensor, gate: Tensor) -> Tensor:
        """The attention map alpha [B,1,h,w]."""
        return torch.sigmoid(self.psi(F.relu(self.W_x(skip) + self.W_g(gate))))

    def forward(self, skip: Tensor, gate: Tensor) -> Tensor:
        return skip * self.coefficients(skip, gate)


class AttentionDepthDecoder(DepthDecoder):
    """DepthDecoder whose skip at stage i (encoder level i-1) passes an AttentionGate first."""

    def __init__(self, num_ch_enc: list[int], num_scales: int = 4) -> None:
        super().__init__(num_ch_enc, num_scales)
        for i in range(1, 5):
            skip = self.num_ch_enc[i - 1]
            self.blocks[f"attention_{i}"] = AttentionGate(skip, self.num_ch_dec[i], max(skip // 2, 1))

    def skip(self, stage: int, features: Tensor, decoder: Tensor) -> Tensor:
        return self.blocks[f"attention_{stage}"](features, decoder)
