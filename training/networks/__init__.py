"""Depth and pose networks (PyTorch, no torchvision).

``build_depth_net(model_cfg)`` and ``build_pose_net(model_cfg)`` read the ``model`` section of a
training config; missing keys take ``DEFAULT_MODEL_CFG``:

- ``backbone``: resnet18 | resnet34 | resnet50 | resnext50_32x4d | stdc1 | stdc2 | mobilenetv3_large |
  darknet | inception_resnet_v2 (darknet: the YOLOv8-s CSP-Darknet backbone, see ``darknet.py``;
  inception_resnet_v2: ``inception_resnet_v2.py``, padded so its levels align to /2 ... /32)
- ``weights``: path to ImageNet weights for the depth encoder (torchvision state dict for ResNets,
  ResNeXt and MobileNetV3, STDC-Seg checkpoint for STDC, a state dict with Ultralytics' names for
  darknet, timm's / Cadene's for inception_resnet_v2) or None for random init
- ``decoder``: monodepth2 (Monodepth2's decoder) | slim (half the channels: ~40 % of its MACs) |
  light (slim with depthwise-separable convolutions: ~1/6 of slim's MACs) | unetpp (U-Net++ nested
  dense skips, ``unetpp.py``) | attention (Monodepth2's with attention gates on the skips,
  ``attention_decoder.py``) | lraspp (LR-ASPP head, mobilenetv3_large only, one output scale,
  ``lraspp.py``)
- ``num_scales`` (4), ``min_depth`` (0.1), ``max_depth`` (100.0): Monodepth2's disparity range
- ``init_depth`` (12.0 m): the disparity heads' bias is set so the initial depth is about this;
  None keeps PyTorch's default init (Monodepth2's, initial depth ~2*min_depth). On a synthetic
  street (96x320, random init) the default init made depth collapse to min_depth; ~10-15 m learns.
- ``pose_weights``: ImageNet ResNet18 weights for the pose encoder; when absent and the depth
  backbone is resnet18, ``weights`` is reused (Monodepth2 starts both from ImageNet)
- ``pose_init`` ("forward" | "monodepth2"), ``pose_translation_scale`` (1.0; Monodepth2: 0.01),
  ``pose_rotation_scale`` (0.01), ``pose_init_translation`` ([0, 0, -1] m/frame; see ``pose.py``)
- ``explainability`` (false): the pose net also predicts SfMLearner's explainability mask (the
  trainer turns it on for ``loss.masking: explainability``)
- ``multi_frame`` (false): Manydepth's multi-frame model (``manydepth.py``): ``build_multi_depth_net``
  builds the student, ``build_depth_net`` stays the single-frame teacher; its own keys
  (``num_depth_bins``, ``depth_binning``, ``min_depth_bin``/``max_depth_bin``, ``matching_channels``,
  ``pose_downsample``, the augmentation
  probabilities, ``freeze_teacher_epoch``/``_step``) default to ``manydepth.MULTI_FRAME_DEFAULTS``
  and are filled in only when it is on (ResNet and STDC backbones)

Monodepth2's original behaviour: ``init_depth: null, pose_init: monodepth2,
pose_translation_scale: 0.01``.

``DepthPoseModel`` (``model.py``) is the training forward pass: the depth net on frame 0 and
``predict_poses`` (the pose net on each source frame's pair with frame 0); ``ManyDepthModel`` is a
multi-frame run's (``manydepth.py``).
"""

from __future__ import annotations

from typing import Any

from training.networks.attention_decoder import AttentionDepthDecoder
from training.networks.darknet import DarknetEncoder, load_darknet_weights
from training.networks.depth_decoder import (
    DECODERS,
    DepthDecoder,
    DepthNet,
    LightDepthDecoder,
    SlimDepthDecoder,
)
from training.networks.guided import GUIDED_PRIORS, GuidedTwoFrameNet
from training.networks.inception_resnet_v2 import InceptionResNetV2Encoder, load_inception_resnet_v2_weights
from training.networks.lraspp import LRASPPDecoder, dilate_last_stage
from training.networks.manydepth import (
    ManyDepthModel,
    ManyDepthNet,
    RefineNet,
    TwoFrameDepthNet,
    multi_frame_config,
)
from training.networks.mobilenet import MobileNetV3Encoder, load_mobilenet_weights
from training.networks.model import DepthPoseModel, predict_poses, rescale_to_distance
from training.networks.pose import PoseNet
from training.networks.resnet import RESNEXT_SPECS, ResnetEncoder, load_torchvision_weights
from training.networks.stdc import STDCEncoder, load_stdc_weights
from training.networks.unetpp import UNetPlusPlusDecoder

BACKBONES = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnext50_32x4d",
    "stdc1",
    "stdc2",
    "mobilenetv3_large",
    "darknet",
    "inception_resnet_v2",
)
# The size of YOLOv8's backbone that ``darknet`` stands for (see darknet.DARKNET_SIZES).
DARKNET_SIZE = "s"
Encoder = ResnetEncoder | STDCEncoder | MobileNetV3Encoder | DarknetEncoder | InceptionResNetV2Encoder
# The seeds' decoders join DepthNet's table here: their modules import depth_decoder's blocks, so
# depth_decoder cannot import them (importing any training.networks module runs this file first).
DECODERS.update({"unetpp": UNetPlusPlusDecoder, "attention": AttentionDepthDecoder, "lraspp": LRASPPDecoder})

DEFAULT_MODEL_CFG: dict[str, Any] = {
    "backbone": "resnet18",
    "weights": None,
    "num_scales": 4,
    "min_depth": 0.1,
    "max_depth": 100.0,
    "init_depth": 12.0,
    "decoder": "monodepth2",
    "pose_weights": None,
    "pose_init": "forward",
    "pose_translation_scale": 1.0,
    "pose_rotation_scale": 0.01,
    "pose_init_translation": [0.0, 0.0, -1.0],
    "explainability": False,
}

__all__ = [
    "BACKBONES",
    "DECODERS",
    "DEFAULT_MODEL_CFG",
    "GUIDED_PRIORS",
    "AttentionDepthDecoder",
    "DarknetEncoder",
    "DepthDecoder",
    "DepthNet",
    "DepthPoseModel",
    "GuidedTwoFrameNet",
    "InceptionResNetV2Encoder",
    "LRASPPDecoder",
    "LightDepthDecoder",
    "ManyDepthModel",
    "ManyDepthNet",
    "MobileNetV3Encoder",
    "PoseNet",
    "RefineNet",
    "ResnetEncoder",
    "STDCEncoder",
    "SlimDepthDecoder",
    "TwoFrameDepthNet",
    "UNetPlusPlusDecoder",
    "build_depth_net",
    "build_encoder",
    "build_multi_depth_net",
    "build_pose_net",
    "load_darknet_weights",
    "load_inception_resnet_v2_weights",
    "load_mobilenet_weights",
    "load_stdc_weights",
    "load_torchvision_weights",
    "model_config",
    "multi_frame_config",
    "predict_poses",
    "rescale_to_distance",
]


def model_config(model_cfg: dict | None) -> dict[str, Any]:
    """``DEFAULT_MODEL_CFG`` overridden by ``model_cfg`` (unknown keys are kept for other users)."""
    cfg = dict(DEFAULT_MODEL_CFG)
    cfg.update(model_cfg or {})
    return cfg


def build_encoder(backbone: str, weights: str | None = None) -> Encoder:
    """A 5-level encoder (``num_ch_enc``) for ``backbone``, optionally with ImageNet weights."""
    encoder: Encoder
    if backbone.startswith("resnet") and backbone[6:].isdigit():
        encoder = ResnetEncoder(int(backbone[6:]))
        if weights:
            load_torchvision_weights(encoder, weights)
    elif backbone in RESNEXT_SPECS:
        depth, groups, width = RESNEXT_SPECS[backbone]
        encoder = ResnetEncoder(depth, groups=groups, width_per_group=width)
        if weights:
            load_torchvision_weights(encoder, weights)
    elif backbone in ("stdc1", "stdc2"):
        encoder = STDCEncoder(backbone)
        if weights:
            load_stdc_weights(encoder, weights)
    elif backbone == "mobilenetv3_large":
        encoder = MobileNetV3Encoder()
        if weights:
            load_mobilenet_weights(encoder, weights)
    elif backbone == "darknet":
        encoder = DarknetEncoder(DARKNET_SIZE)
        if weights:
            load_darknet_weights(encoder, weights)
    elif backbone == "inception_resnet_v2":
        encoder = InceptionResNetV2Encoder()
        if weights:
            load_inception_resnet_v2_weights(encoder, weights)
    else:
        raise ValueError(f"unknown backbone {backbone!r}; expected one of {', '.join(BACKBONES)}")
    return encoder


def _depth_net_args(cfg: dict) -> dict:
    """The keyword arguments DepthNet and ManyDepthNet share, from a resolved ``model`` section."""
    return {
        "backbone": str(cfg["backbone"]),
        "num_scales": int(cfg["num_scales"]),
        "min_depth": float(cfg["min_depth"]),
        "max_depth": float(cfg["max_depth"]),
        "init_depth": None if cfg["init_depth"] is None else float(cfg["init_depth"]),
        "decoder": str(cfg["decoder"]),
    }


def build_depth_net(model_cfg: dict) -> DepthNet:
    """DepthNet from the ``model`` config section (see the module docstring for the keys)."""
    cfg = model_config(model_cfg)
    encoder = build_encoder(str(cfg["backbone"]), cfg["weights"])
    if cfg["decoder"] == "lraspp":
        dilate_last_stage(encoder, str(cfg["backbone"]))  # LR-ASPP's encoder (refuses others)
    return DepthNet(encoder, **_depth_net_args(cfg))


def _matching_args(cfg: dict) -> dict:
    """The keyword arguments both students take for their matching, from a resolved ``model`` section."""
    channels = cfg["matching_channels"]
    return {
        "num_depth_bins": int(cfg["num_depth_bins"]),
        "depth_binning": str(cfg["depth_binning"]),
        "min_depth_bin": float(cfg["min_depth_bin"]),
        "max_depth_bin": float(cfg["max_depth_bin"]),
        "matching_channels": None if channels is None else int(channels),
        "pose_downsample": int(cfg["pose_downsample"]),
        "matching_level": int(cfg["matching_level"]),
        "cost_scale": str(cfg["cost_scale"]),
        "matching_source": str(cfg["matching_source"]),
    }


def build_multi_depth_net(model_cfg: dict) -> ManyDepthNet | RefineNet:
    """The multi-frame student (``model.multi_frame``) from the ``model`` config section."""
    cfg = multi_frame_config(model_config(model_cfg))
    if cfg["student"] == "refine":
        return RefineNet(float(cfg["min_depth"]), float(cfg["max_depth"]), **_matching_args(cfg))
    return ManyDepthNet(
        build_encoder(str(cfg["backbone"]), cfg["weights"]),
        **_depth_net_args(cfg),
        **_matching_args(cfg),
        motion_aware=bool(cfg["motion_aware"]),
        motion_search_radius=int(cfg["motion_search_radius"]),
        motion_threshold=float(cfg["motion_threshold"]),
    )


def build_pose_net(model_cfg: dict) -> PoseNet:
    """PoseNet (ResNet18 on frame pairs) from the ``model`` config section."""
    cfg = model_config(model_cfg)
    pose_weights = cfg["pose_weights"]
    if pose_weights is None and cfg["backbone"] == "resnet18":
        pose_weights = cfg["weights"]
    return PoseNet(
        num_layers=18,
        weights=pose_weights,
        rotation_scale=float(cfg["pose_rotation_scale"]),
        translation_scale=float(cfg["pose_translation_scale"]),
        init=str(cfg["pose_init"]),
        init_translation=[float(v) for v in cfg["pose_init_translation"]],
        explainability=bool(cfg["explainability"]),
    )
