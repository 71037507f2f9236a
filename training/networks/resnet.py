"""ResNet18/34/50 and ResNeXt50-32x4d encoders with torchvision's parameter names (no torchvision
dependency).

The module tree (``conv1``, ``bn1``, ``layer1.0.conv1``, ..., ``layerN.0.downsample.0/1``) matches
``torchvision.models.resnetXX`` / ``resnext50_32x4d`` exactly, minus ``fc``, so an ImageNet state dict
saved from torchvision loads with ``load_torchvision_weights`` (strict apart from the classifier).
ResNeXt is torchvision's ResNet with grouped bottlenecks (``groups``, ``width_per_group``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from training.networks._weights import load_exact_state_dict, load_state_dict_file

# (block type, blocks per stage) for each supported depth, as in torchvision.
RESNET_SPECS: dict[int, tuple[str, list[int]]] = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
}
# ResNeXt backbones: name -> (depth, groups, width per group), as torchvision builds them.
RESNEXT_SPECS: dict[str, tuple[int, int, int]] = {"resnext50_32x4d": (50, 32, 4)}
CLASSIFIER_PREFIXES = ("fc.",)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
    ):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError(f"basic ResNet blocks take groups=1, width 64 (got {groups}, {base_width})")
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's v1.5 bottleneck (stride on the 3x3 conv); grouped 3x3 for ResNeXt."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
    ):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups  # torchvision's inner width
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResnetEncoder(nn.Module):
    """ResNet feature pyramid: 5 maps at strides 2, 4, 8, 16, 32 (channels in ``num_ch_enc``).

    ``num_input_images`` > 1 widens ``conv1`` to take stacked frames (the pose network's input).
    ``groups`` / ``width_per_group`` make the bottlenecks ResNeXt's (32 / 4: ``resnext50_32x4d``).
    The input is expected already normalised; DepthNet/PoseNet apply the ImageNet mean/std.
    """

    def __init__(
        self, num_layers: int = 18, num_input_images: int = 1, groups: int = 1, width_per_group: int = 64
    ) -> None:
        super().__init__()
        if num_layers not in RESNET_SPECS:
            raise ValueError(
                f"resnet depth {num_layers} not supported; expected one of {sorted(RESNET_SPECS)}"
            )
        kind, blocks = RESNET_SPECS[num_layers]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.num_layers = num_layers
        self.num_input_images = num_input_images
        self.groups, self.width_per_group = groups, width_per_group
        resnext = f"resnext{num_layers}_{groups}x{width_per_group}d"
        self.name = f"resnet{num_layers}" if groups == 1 else resnext
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3 * num_input_images, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, blocks[0], 1)
        self.layer2 = self._make_layer(block, 128, blocks[1], 2)
        self.layer3 = self._make_layer(block, 256, blocks[2], 2)
        self.layer4 = self._make_layer(block, 512, blocks[3], 2)
        self.num_ch_enc = [64] + [c * block.expansion for c in (64, 128, 256, 512)]
        self._init_weights()

    def _make_layer(self, block: type, planes: int, count: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        widths = {"groups": self.groups, "base_width": self.width_per_group}
        layers = [block(self.inplanes, planes, stride, downsample, **widths)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, **widths) for _ in range(1, count)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        # torchvision's initialisation, so random-init training behaves like the reference code.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        f0 = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(f0))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        return [f0, f1, f2, f3, f4]


def load_torchvision_weights(encoder: ResnetEncoder, weights: str | Path | dict[str, Tensor]) -> None:
    """Load a torchvision ImageNet ResNet/ResNeXt state dict (file path or dict) into ``encoder``.

    Strict except for the classifier (``fc.*``). For a multi-image encoder (pose net) the first
    convolution's RGB filters are repeated over the stacked frames and divided by their number,
    as Monodepth2 does, so the response to a static pair equals the single-image response.
    """
    state = load_state_dict_file(weights) if not isinstance(weights, dict) else dict(weights)
    state = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIXES)}
    n = encoder.num_input_images
    if n > 1 and "conv1.weight" in state and state["conv1.weight"].shape[1] == 3:
        state["conv1.weight"] = torch.cat([state["conv1.weight"]] * n, dim=1) / n
    source = "" if isinstance(weights, dict) else f"{weights}: "
    what = f"{source}{encoder.name} weights do not match torchvision's names"
    load_exact_state_dict(encoder, state, what)
