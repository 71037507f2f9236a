"""STDC1 / STDC2 encoders (STDCNet813 / STDCNet1446 of "Rethinking BiSeNet for Real-time Semantic
Segmentation", Fan et al., CVPR 2021), written here from the paper's description with the module
names of the public STDC-Seg code, so its ImageNet checkpoints (``STDCNet813M_73.91.tar``,
``STDCNet1446_76.47.tar``) load with ``load_stdc_weights``.

Names: ``features.{i}`` is a ConvX (``conv``, ``bn``) for i in {0, 1} and a CatBottleneck for the
rest (``conv_list.{j}.conv|bn``, ``avd_layer.{0,1}`` and a parameter-free AvgPool ``skip`` on the
stride-2 blocks). The classifier head of the checkpoints (``conv_last``, ``fc``, ``bn``, ``linear``)
is not built here.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor, nn

from training.networks._weights import load_exact_state_dict

# Blocks per stage (strides 8, 16, 32) for each variant.
STDC_LAYERS: dict[str, list[int]] = {"stdc1": [2, 2, 2], "stdc2": [4, 5, 3]}
STDC_HEAD_PREFIXES = ("conv_last.", "fc.", "bn.", "linear.", "gap.")
# STDC-Seg registers the stages as aliases of slices of ``features`` (x2 ... x32); a slice keeps the
# original index, so "x8.0.3.rest" is "features.3.rest".
_ALIAS = re.compile(r"^x(?:2|4|8|16|32)\.0\.(\d+)\.(.*)$")


class ConvX(nn.Module):
    """Conv (no bias) + BatchNorm + ReLU."""

    def __init__(self, in_planes: int, out_planes: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class CatBottleneck(nn.Module):
    """STDC module: a chain of convs with halving widths whose outputs are concatenated.

    Output channels: out/2 + out/4 + out/8 + out/8 for 4 blocks. With stride 2, the first
    branch output is downsampled by a depthwise conv (``avd_layer``) before the chain and by
    average pooling (``skip``) for its own place in the concatenation.
    """

    def __init__(self, in_planes: int, out_planes: int, block_num: int = 4, stride: int = 1) -> None:
        super().__init__()
        if block_num < 2:
            raise ValueError("CatBottleneck needs block_num >= 2")
        self.stride = stride
        self.conv_list = nn.ModuleList()
        if stride == 2:
            half = out_planes // 2
            self.avd_layer = nn.Sequential(
                nn.Conv2d(half, half, 3, 2, 1, groups=half, bias=False),
                nn.BatchNorm2d(half),
            )
            self.skip = nn.AvgPool2d(kernel_size=3, stride=2, padding=1)
        for idx in range(block_num):
            if idx == 0:
                conv = ConvX(in_planes, out_planes // 2, kernel=1)
            elif idx == 1 and block_num == 2:
                conv = ConvX(out_planes // 2, out_planes // 2)
            elif idx == 1:
                conv = ConvX(out_planes // 2, out_planes // 4)
            elif idx < block_num - 1:
                conv = ConvX(out_planes // 2**idx, out_planes // 2 ** (idx + 1))
            else:
                conv = ConvX(out_planes // 2**idx, out_planes // 2**idx)
            self.conv_list.append(conv)

    def forward(self, x: Tensor) -> Tensor:
        first = self.conv_list[0](x)
        out = self.avd_layer(first) if self.stride == 2 else first
        outs = []
        for conv in self.conv_list[1:]:
            out = conv(out)
            outs.append(out)
        if self.stride == 2:
            first = self.skip(first)
        return torch.cat([first, *outs], dim=1)


class STDCEncoder(nn.Module):
    """STDC backbone as a 5-level feature pyramid (strides 2, 4, 8, 16, 32).

    Channels (base 64): 32, 64, 256, 512, 1024. Input expected ImageNet-normalised.
    """

    def __init__(self, variant: str = "stdc1", base: int = 64, block_num: int = 4) -> None:
        super().__init__()
        if variant not in STDC_LAYERS:
            raise ValueError(f"unknown STDC variant {variant!r}; expected one of {sorted(STDC_LAYERS)}")
        self.variant = variant
        layers = STDC_LAYERS[variant]
        features: list[nn.Module] = [ConvX(3, base // 2, 3, 2), ConvX(base // 2, base, 3, 2)]
        for i, count in enumerate(layers):
            for j in range(count):
                if i == 0 and j == 0:
                    features.append(CatBottleneck(base, base * 4, block_num, 2))
                elif j == 0:
                    features.append(CatBottleneck(base * 2 ** (i + 1), base * 2 ** (i + 2), block_num, 2))
                else:
                    features.append(CatBottleneck(base * 2 ** (i + 2), base * 2 ** (i + 2), block_num, 1))
        self.features = nn.Sequential(*features)
        # Index ranges of ``features`` making up each pyramid level.
        ends = [1, 2, 2 + layers[0], 2 + layers[0] + layers[1], len(features)]
        self.stage_slices = list(zip([0, *ends[:-1]], ends))
        self.num_ch_enc = [base // 2, base, base * 4, base * 8, base * 16]
        self._init_weights()

    def _init_weights(self) -> None:
        # STDC-Seg's init_params.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for start, end in self.stage_slices:
            for idx in range(start, end):
                x = self.features[idx](x)
            feats.append(x)
        return feats


def stdc_checkpoint_to_state_dict(checkpoint: dict) -> dict[str, Tensor]:
    """Backbone state dict from an STDC-Seg checkpoint dict.

    Accepts ``{"state_dict": {...}}`` or a bare state dict; strips ``module.`` (DataParallel),
    drops the classifier head and maps the ``x2``...``x32`` stage aliases onto ``features.*``.
    """
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError("STDC checkpoint: expected a dict with a 'state_dict' entry")
    out: dict[str, Tensor] = {}
    aliases: dict[str, Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith(STDC_HEAD_PREFIXES):
            continue
        match = _ALIAS.match(key)
        if match:
            aliases[f"features.{match.group(1)}.{match.group(2)}"] = value
        else:
            out[key] = value
    for key, value in aliases.items():
        out.setdefault(key, value)
    return out


def load_stdc_weights(encoder: STDCEncoder, weights: str | Path | dict) -> None:
    """Load STDC-Seg ImageNet weights (path to the .tar checkpoint, or the loaded dict); strict."""
    if not isinstance(weights, dict):
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} does not exist (expected an STDC-Seg checkpoint)")
        try:
            weights = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a checkpoint pickling non-tensor objects: refuse rather than unpickle
            raise ValueError(
                f"{path}: cannot load safely with weights_only=True ({exc.__class__.__name__}); "
                "re-save it as {'state_dict': checkpoint['state_dict']} from a trusted environment"
            ) from exc
    state = stdc_checkpoint_to_state_dict(weights)
    load_exact_state_dict(
        encoder, state, f"{encoder.variant} weights do not match STDC-Seg's names", hint="(STDC1 vs STDC2?)"
    )
