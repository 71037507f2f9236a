"""A multi-frame depth model in the Manydepth line (Watson et al., CVPR 2021, "The Temporal Opportunist").

``ManyDepthNet`` (the student): the encoder runs on the current frame up to its 1/4-resolution level;
both frames' features at that level are reduced to ``matching_channels`` (16) by Manydepth's
``prematching_conv`` (1x1 conv + ReLU), and the previous frame's are warped into the current frame
over D depth hypotheses with the pose net's motion and the intrinsics scaled to 1/4; the channel mean
of the L1 feature difference per hypothesis is the cost volume [B,D,h,w]. A 3x3 conv + ReLU over the current
features and the cost volume (Manydepth's ``reduce_conv``) feeds the deeper encoder stages, and the
depth decoder sits on top (its 1/4 skip is the features before fusion, as in Manydepth). ResNet
(cost volume after ``layer1``, 64 channels for ResNet18) and STDC (after its second ConvX, 64
channels, before the first STDC stage) encoders both have their 1/4 level where Manydepth puts it.

``matching_level: 0`` matches at the encoder's 1/2 level instead (ResNet: after ``conv1``, 64
channels; STDC: after its first ConvX, 32 channels) and feeds the fused features to the rest of the
encoder from there. What matters is the matching grid's size in pixels: a car moving 0.8 m between
frames shifts a point 10 m away by 1-2 pixels of an 80x24 grid, well under the spacing that the
hypotheses need to be told apart. Manydepth's 1/4 level at its 640x192 is a 160x48 grid; at 320x96
that grid is the 1/2 level (``docs/MOVING_CARS_STUDY.md``, "The matching grid").
``cost_scale: relative`` divides each pixel's costs by their mean over the hypotheses before fusion
(``relative_cost``): raw costs are a tenth of the features' size, and the students trained with them
here ignored the previous frame (the same scores with each frame fed twice).

``matching_source: image`` matches the frames themselves instead of learnt features: the normalised
RGB frames average-pooled to twice the matching grid's size (full size for 320x96 at level 0), their
per-pixel L1 cost averaged over the 4x4-pixel patch around each grid pixel (``pooled_cost_volume``,
block matching as in stereo). On held-out drives the argmin of 3x3 RGB patches at full size was
right far more often than that of the level-0 features (``benchmarks/probe_cost_volume.py``).

``motion_aware: true`` is Manydepth2's step (Zhou et al., 2024): a moving car breaks the static-world
matching, so each pixel is first looked for within ``motion_search_radius`` grid pixels of where the
teacher's depth and the pose net's motion put it in the previous frame (``object_motion``); where
the best match lies more than ``motion_threshold`` pixels off, every hypothesis samples that much
further along (``cost_volume``'s ``motion``), i.e. against the car where it moved to. Manydepth2
takes the flow from a pretrained GMFlow (which cannot be downloaded here) and subtracts the static
flow of the teacher's depth (threshold 10 px at its 1/4 grid), then warps and blends the previous
image (``alpha`` 0.2-0.3); here the search on the matching features finds the difference directly,
and the cost volume samples it per pixel. The teacher then runs on the car as well (in
``TwoFrameDepthNet``).

Taken from Manydepth's code (``ResnetEncoderMatching``, ``trainer.py``):

- D hypotheses (``num_depth_bins``) spaced linearly in depth (``depth_binning: linear``;
  ``inverse``: linear in 1/depth) between a learnt min and max; the range starts at [0.1, 10] and
  follows the teacher's depth while the teacher trains: per image min and max of its scale-0
  depth, averaged over the batch, widened (max(min_depth, 0.9 min), 1.1 max), folded in with
  momentum 0.99 (``update_depth_range``). Here the range lives in buffers, so it is in checkpoints
  and the export.
- A hypothesis is valid where it lands at least 2 pixels inside the previous frame's feature map and
  the pixel itself lies 2 pixels inside the current one (both maps are zero padded by the encoder);
  a pixel with any invalid hypothesis gets an all-zero cost (``confidence`` 0). No gradient reaches
  the encoder through the cost volume (Manydepth builds it under ``no_grad``).
- The argmin depth over the valid hypotheses (the first bin where none is), for the consistency mask:
  the cost volume is trusted where it is confident and its argmin depth is within a factor 2 of the
  single-frame teacher's depth (``reliable_pixels``); elsewhere the student learns the teacher's depth.
  ``loss.student_mask: all`` is Manydepth's ``--disable_motion_masking``: the student's own loss on
  every pixel of the samples whose matching was not augmented (``training.losses.student_mask``).
- The matching augmentations, per sample: with probability 0.25 the previous frame is replaced by
  the current one (static camera, the pose net's motion kept), else with probability 0.25 the cost
  volume is emptied (Manydepth zeroes the pose, which makes its cost volume skip the frame). Their
  pixels are left to the consistency loss. Here both default to 0.1: on held-out drives the student
  was better with 0.1 than with 0.25 on the whole image and on moving cars, with two seeds, and as
  good fed each frame twice (``docs/MOVING_CARS_STUDY.md``, "Fewer matching augmentations").

Differences for the car's CPU (``benchmarks/bench_two_frame.py``; defaults in ``MULTI_FRAME_DEFAULTS``):
D = 16 rather than Manydepth's (and Manydepth2's) 96; matching on 16 channels through
``prematching_conv``, which Manydepth's code defines but never calls, and which here learns through
the cost volume (its only gradient; the encoder still gets none from there); the pose net sees both
frames average-pooled by ``pose_downsample`` (2), in training and in the export alike; the warp
gathers the four neighbours of a channels-last table (``bilinear_lookup``) rather than calling
``grid_sample``, identical on every sample the cost volume keeps. Together: two-frame inference at
640x192 on one CPU thread went from 8.8x the single-frame model's time to 1.5x (ResNet18 and STDC1,
end to end through the runtime's frame path, one run of the benchmark).

Other differences: the teacher has the student's backbone (Manydepth's is always ResNet18); ImageNet
normalisation is the project's (Manydepth uses 0.45/0.225); the pose for matching is the pose net's
raw output for (t-1, t) (the same forward pass as the loss's pose, detached, without
``odometry_scale``'s rescaling, which the car does not have); the cost volume is computed for the
whole batch at once rather than per sample; a hypothesis counts as missing where it falls outside
(Manydepth: where its masked cost is exactly 0, which also catches an exact feature match); freezing
stops the teacher's and pose net's updates within the one optimizer (Manydepth builds a new Adam and
a new StepLR over the student, which restarts the learning-rate schedule); the teacher's loss is the
configured ``SelfSupervisedLoss`` (``loss.masking`` etc.), the student's always Manydepth's masking.

``student: refine`` (``RefineNet``, not Manydepth's) leaves the depth to the teacher and learns only a
correction of its disparity from the cost volume: a few convs over small features of its own, the
costs and the teacher's disparity at the matching grid. The teacher trains as the single-frame model
does; the car runs it too. The hypothesis range, the camera and the matching (``match``) are the
same for both students (``CostVolumeMatching``).

``ManyDepthModel`` is the training forward pass (teacher, pose net, augmentations, student and the
masks the loss reads); ``TwoFrameDepthNet`` is what the car runs: ``(image, prev_image) -> depth``
with the pose net inside and the training intrinsics baked in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depth_node.geometry import scale_intrinsics
from training.geometry import depth_to_disp, disp_to_depth, transformation_from_parameters
from training.networks.depth_decoder import IMAGENET_MEAN, IMAGENET_STD, DepthNet
from training.networks.model import predict_poses
from training.networks.pose import PoseNet
from training.networks.resnet import ResnetEncoder
from training.networks.stdc import STDCEncoder

# The ``model`` keys of a multi-frame run and their defaults (Manydepth's), filled in only when
# ``multi_frame`` is on, so a single-frame run's resolved config stays as it was.
# Cost defaults (benchmarks/bench_two_frame.py, 640x192, one thread): 16 hypotheses over 16 matching
# channels and the pose net on half-resolution frames keep two-frame inference within 1.6x the
# single-frame model's; Manydepth's 96 hypotheses over 64 channels and a full-resolution pose net cost 8.8x.
MULTI_FRAME_DEFAULTS: dict[str, Any] = {
    "num_depth_bins": 16,  # Manydepth (and Manydepth2): 96
    "depth_binning": "linear",  # linear (in depth) | inverse (linear in 1/depth)
    "matching_channels": 16,  # Manydepth's prematching_conv: matched features reduced to this (null: none)
    "matching_level": 1,  # the encoder level matched: 1 (stride 4, Manydepth's) or 0 (stride 2)
    "cost_scale": "raw",  # raw (Manydepth's) | relative: each pixel's costs over their mean (relative_cost)
    "matching_source": "features",  # features (Manydepth's) | image: full-size patches (pooled_cost_volume)
    "pose_downsample": 2,  # the pose net sees both frames average-pooled by this factor (1: full size)
    "student": "encoder",  # encoder (Manydepth's: the cost volume fused into the student's encoder) |
    # refine: a small head corrects the teacher's disparity from the cost volume (RefineNet)
    "motion_aware": False,  # Manydepth2's step: match moving pixels against where they moved (object_motion)
    "motion_search_radius": 3,  # ... searching this many matching-grid pixels around the static flow
    "motion_threshold": 1.5,  # ... and compensating pixels whose own motion is longer than this (pixels)
    "min_depth_bin": 0.1,  # where the learnt hypothesis range starts
    "max_depth_bin": 10.0,
    "static_camera_prob": 0.1,  # Manydepth: 0.25 (docs/MOVING_CARS_STUDY.md, "Fewer matching augmentations")
    "empty_cost_volume_prob": 0.1,  # Manydepth: 0.25
    "freeze_teacher_epoch": 15,  # teacher and pose net stop training at this epoch (null: never)
    "freeze_teacher_step": None,  # ... or at this global step, whichever comes first
}
DEPTH_BINNINGS = ("linear", "inverse")
MATCHING_LEVELS = (0, 1)  # encoder levels the cost volume can enter: stride 2 or 4
COST_SCALES = ("raw", "relative")
MATCHING_SOURCES = ("features", "image")
STUDENTS = ("encoder", "refine")
BORDER = 2  # feature pixels at the border left out of matching (Manydepth's)
BIN_MOMENTUM = 0.99
# object_motion's preference between matches: each offset costs this much more than the one before
# it (shortest first), so that matches equal in exact arithmetic (flat or repeating texture) go to
# the same offset whatever the float rounding (ONNX Runtime and PyTorch differ by ~1e-7).
OFFSET_TIE_BREAK = 1e-5
# Monodepth2's normalised KITTI intrinsics (fx/W, fy/H, cx/W, cy/H): the default until the trainer
# records the training camera's.
KITTI_NORMALISED_INTRINSICS = (0.58, 1.92, 0.5, 0.5)


def multi_frame_config(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``model_cfg`` with ``MULTI_FRAME_DEFAULTS`` filled in; ValueError naming a bad value."""
    cfg = {**MULTI_FRAME_DEFAULTS, **model_cfg}
    if not (isinstance(cfg["num_depth_bins"], int) and cfg["num_depth_bins"] >= 2):
        raise ValueError(f"model.num_depth_bins={cfg['num_depth_bins']!r}: expected an integer >= 2")
    if cfg["depth_binning"] not in DEPTH_BINNINGS:
        raise ValueError(f"model.depth_binning={cfg['depth_binning']!r}: expected one of {DEPTH_BINNINGS}")
    channels = cfg["matching_channels"]
    if channels is not None and not (isinstance(channels, int) and channels >= 1):
        raise ValueError(f"model.matching_channels={channels!r}: expected an integer >= 1 or null")
    if cfg["matching_level"] not in MATCHING_LEVELS:
        raise ValueError(f"model.matching_level={cfg['matching_level']!r}: expected one of {MATCHING_LEVELS}")
    if cfg["cost_scale"] not in COST_SCALES:
        raise ValueError(f"model.cost_scale={cfg['cost_scale']!r}: expected one of {COST_SCALES}")
    if cfg["matching_source"] not in MATCHING_SOURCES:
        raise ValueError(
            f"model.matching_source={cfg['matching_source']!r}: expected one of {MATCHING_SOURCES}"
        )
    if cfg["student"] not in STUDENTS:
        raise ValueError(f"model.student={cfg['student']!r}: expected one of {STUDENTS}")
    if cfg["student"] == "refine" and cfg["motion_aware"]:
        raise ValueError(
            "model.student=refine with model.motion_aware: the refiner matches the static world only; "
            "use student: encoder"
        )
    if cfg["matching_source"] == "image" and cfg["motion_aware"]:
        raise ValueError(
            "model.matching_source=image with model.motion_aware: the motion search runs on the matching "
            "grid's features; use matching_source: features"
        )
    radius, threshold = cfg["motion_search_radius"], cfg["motion_threshold"]
    if not (isinstance(radius, int) and radius >= 1):
        raise ValueError(f"model.motion_search_radius={radius!r}: expected an integer >= 1")
    if not (isinstance(threshold, int | float) and 0 <= threshold < radius * 2**0.5):
        raise ValueError(
            f"model.motion_threshold={threshold!r}: expected a number of pixels >= 0 and shorter than the "
            f"longest motion the search finds ({radius} * sqrt(2))"
        )
    if not (isinstance(cfg["pose_downsample"], int) and cfg["pose_downsample"] >= 1):
        raise ValueError(f"model.pose_downsample={cfg['pose_downsample']!r}: expected an integer >= 1")
    if cfg["pose_downsample"] > 1 and cfg.get("explainability"):
        raise ValueError(
            f"model.pose_downsample={cfg['pose_downsample']} with model.explainability: the mask would come "
            "at the pose net's reduced size; use pose_downsample: 1"
        )
    if not 0 < float(cfg["min_depth_bin"]) < float(cfg["max_depth_bin"]):
        raise ValueError(
            f"model.min_depth_bin={cfg['min_depth_bin']!r}, max_depth_bin={cfg['max_depth_bin']!r}: "
            "expected 0 < min < max"
        )
    if cfg.get("decoder") == "lraspp":
        raise ValueError("model.decoder=lraspp: needs mobilenetv3_large, which the multi-frame model lacks")
    static, empty = float(cfg["static_camera_prob"]), float(cfg["empty_cost_volume_prob"])
    if not (0 <= static and 0 <= empty and static + empty <= 1):
        raise ValueError(
            f"model.static_camera_prob={static}, empty_cost_volume_prob={empty}: expected "
            "probabilities >= 0 summing to at most 1"
        )
    return cfg


def camera_matrices(
    intrinsics: tuple[float, float, float, float], height: int, width: int
) -> tuple[Tensor, Tensor]:
    """(K, inv_K) [1,4,4] for images of ``height`` x ``width`` from (fx, fy, cx, cy) normalised by
    image size."""
    fx, fy, cx, cy = intrinsics
    K = np.eye(4)
    K[:3, :3] = scale_intrinsics(np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]]), (1, 1), (width, height))
    inv_K = np.linalg.inv(K)
    return torch.tensor(K, dtype=torch.float32)[None], torch.tensor(inv_K, dtype=torch.float32)[None]


def depth_bins(min_depth: Tensor, max_depth: Tensor, count: int, binning: str = "linear") -> Tensor:
    """``count`` depth hypotheses [count], ascending from ``min_depth`` to ``max_depth`` (0-d tensors):
    equally spaced in depth (``linear``) or in inverse depth (``inverse``)."""
    steps = torch.arange(count, dtype=min_depth.dtype, device=min_depth.device) / (count - 1)
    if binning == "linear":
        return min_depth + (max_depth - min_depth) * steps
    if binning == "inverse":
        return 1.0 / (1.0 / min_depth - (1.0 / min_depth - 1.0 / max_depth) * steps)
    raise ValueError(f"depth binning {binning!r}: expected one of {DEPTH_BINNINGS}")


def update_depth_range(
    min_bin: Tensor, max_bin: Tensor, depth: Tensor, floor: float, momentum: float = BIN_MOMENTUM
) -> tuple[Tensor, Tensor]:
    """Manydepth's running update of the hypothesis range from a depth map [B,1,H,W] (the teacher's).

    Per image min and max, averaged over the batch, widened to max(floor, 0.9 min) and 1.1 max, then
    folded in: new = momentum * old + (1 - momentum) * observed. Returns (min, max), 0-d tensors.
    """
    depth = depth.detach().float()
    low = (depth.amin(dim=(1, 2, 3)).mean() * 0.9).clamp(min=floor)
    high = depth.amax(dim=(1, 2, 3)).mean() * 1.1
    return momentum * min_bin + (1 - momentum) * low, momentum * max_bin + (1 - momentum) * high


def bilinear_lookup(features: Tensor, x: Tensor, y: Tensor, channels_first: bool = False) -> Tensor:
    """``features`` [B,C,h,w] sampled bilinearly at pixel coordinates ``x``, ``y`` [B,D,n] -> [B,D,n,C]
    (``channels_first``: [B,C,D,n]).

    Exact (as ``grid_sample`` with ``align_corners=True``) where the four neighbours lie inside the
    map, which holds for every sample the cost volume keeps (``BORDER`` >= 1); elsewhere the
    coordinates are clamped into the map, giving finite values that the cost volume discards. Rows of a
    channels-last table are gathered instead of calling ``grid_sample``: ONNX Runtime's CPU GridSample
    took 2.4x as long for 16 channels x 32 hypotheses at 48x160 (124 ms vs 52 ms, one thread). For a
    few channels (RGB) the channels-last product broadcasts over a last axis of 3, which ONNX Runtime
    runs 3-4x slower than gathering each channel's plane (``channels_first``).
    """
    b, c, h, w = features.shape
    x, y = x.clamp(0, w - 1), y.clamp(0, h - 1)
    x0, y0 = x.floor().clamp(max=w - 2), y.floor().clamp(max=h - 2)
    wx, wy = x - x0, y - y0
    first = (y0 * w + x0).long()  # the top-left neighbour's index in a h*w plane
    if channels_first:
        planes = features.flatten(2)  # [B,C,hw]
        wx, wy = wx.unsqueeze(1), wy.unsqueeze(1)

        def corner(step: int) -> Tensor:
            index = (first + step).flatten(1).unsqueeze(1).expand(b, c, -1)
            return torch.gather(planes, 2, index).view(b, c, *first.shape[1:])

    else:
        wx, wy = wx.unsqueeze(-1), wy.unsqueeze(-1)
        first = first + torch.arange(b, device=features.device).view(b, 1, 1) * (h * w)
        table = features.flatten(2).transpose(1, 2).reshape(b * h * w, c)

        def corner(step: int) -> Tensor:
            return table[(first + step).reshape(-1)].view(*first.shape, c)

    top = corner(0) * (1 - wx) + corner(1) * wx
    bottom = corner(w) * (1 - wx) + corner(w + 1) * wx
    return top * (1 - wy) + bottom * wy


@dataclass
class CostVolume:
    """``cost`` [B,D,h,w] (zero where not confident), ``confidence`` [B,1,h,w] float 0/1 (every
    hypothesis valid), ``matching_depth`` [B,1,h,w]: the depth of the lowest valid cost."""

    cost: Tensor
    confidence: Tensor
    matching_depth: Tensor


def pixel_grid(height: int, width: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """(u, v) [height*width]: the column and row of every pixel, row by row, in ``like``'s dtype."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=like.dtype, device=like.device),
        torch.arange(width, dtype=like.dtype, device=like.device),
        indexing="ij",
    )
    return u.reshape(-1), v.reshape(-1)


def project_pixels(
    depth: Tensor, cam_T_cam: Tensor, K: Tensor, inv_K: Tensor, height: int, width: int
) -> tuple[Tensor, Tensor]:
    """Where each pixel of a ``height`` x ``width`` grid lands in the lookup frame (x, y) [B,D,hw] when
    back-projected at ``depth`` [B|1,D,hw] (D depths per pixel) with ``inv_K``, moved by ``cam_T_cam``
    [B,4,4] (current-camera points into the lookup camera) and projected with ``K``. Behind the
    camera: far outside."""
    u, v = pixel_grid(height, width, depth)
    rays = torch.matmul(inv_K[:, :3, :3], torch.stack([u, v, torch.ones_like(u)]))  # [B,3,hw]
    P = torch.matmul(K, cam_T_cam)[:, :3, :]
    # P [d r; 1] = d (M r) + t: project every depth without building d * r first.
    cam = depth.unsqueeze(2) * torch.matmul(P[:, :, :3], rays).unsqueeze(1) + P[:, :, 3].view(-1, 1, 3, 1)
    uv = cam[:, :, :2] / cam[:, :, 2:3].clamp(min=1e-7)  # [B,D,2,hw]
    return uv[:, :, 0], uv[:, :, 1]


def inside_map(x: Tensor, y: Tensor, height: int, width: int, border: int) -> Tensor:
    """Whether pixel coordinates lie at least ``border`` pixels inside a ``height`` x ``width`` map."""
    return (x >= border) & (x <= width - border) & (y >= border) & (y <= height - border)


def cost_volume(
    current: Tensor,
    lookup: Tensor,
    cam_T_cam: Tensor,
    K: Tensor,
    inv_K: Tensor,
    bins: Tensor,
    empty: Tensor | None = None,
    border: int = BORDER,
    motion: Tensor | None = None,
) -> CostVolume:
    """Manydepth's L1 feature cost volume of ``current`` [B,C,h,w] against ``lookup`` [B,C,h,w].

    For each hypothesis d of ``bins`` [D], every pixel is back-projected at depth d with ``inv_K``,
    moved by ``cam_T_cam`` [B,4,4] (current-camera points into the lookup camera) and projected with
    ``K`` (both [B,4,4] or [1,4,4] at the features' resolution); the lookup features are sampled there
    (bilinear, ``bilinear_lookup``) and the cost is mean_c |warped - current|. ``empty`` [B] bool:
    samples whose cost volume is emptied (all zero, not confident; Manydepth's zero-pose frames).
    ``motion`` [B,2,h,w]: each pixel's own motion in pixels (``object_motion``), added to where every
    hypothesis samples, so that a moving pixel is matched as if it had stood still (Manydepth2).
    Differentiable in the features (the projection is not); the caller decides what gets gradients.
    """
    b, _, h, w = current.shape
    d = bins.numel()
    x, y = project_pixels(bins.view(1, d, 1), cam_T_cam, K, inv_K, h, w)  # [B,D,hw]
    if motion is not None:
        x, y = x + motion[:, 0].reshape(b, 1, h * w), y + motion[:, 1].reshape(b, 1, h * w)
    u, v = pixel_grid(h, w, current)
    interior = (u >= border) & (u < w - border) & (v >= border) & (v < h - border)  # Manydepth's [2:-2]
    valid = (inside_map(x, y, h, w, border) & interior).view(b, d, h, w)
    if empty is not None:
        valid = valid & ~empty.view(b, 1, 1, 1)
    warped = bilinear_lookup(lookup, x.detach(), y.detach())  # [B,D,hw,C]
    current_rows = current.flatten(2).transpose(1, 2).unsqueeze(1)  # [B,1,hw,C]
    diff = (warped - current_rows).abs().mean(-1).view(b, d, h, w)
    confidence = valid.all(dim=1, keepdim=True)
    best = torch.where(valid, diff, torch.full_like(diff, float("inf"))).argmin(dim=1, keepdim=True)
    # where, not a product: a discarded sample's cost is finite but not meaningful.
    cost = torch.where(confidence, diff, torch.zeros_like(diff))
    return CostVolume(cost, confidence.to(diff.dtype), bins[best].detach())


def pooled_cost_volume(volume: CostVolume, factor: int, bins: Tensor) -> CostVolume:
    """A full-size cost volume [B,D,H,W] matched in patches: each cost averaged over the
    (2 ``factor``)^2 pixels around every ``factor``-th pixel, the matching grid's [B,D,H/factor,W/factor]
    (block matching, as in stereo). A grid pixel is confident where every pixel of its patch is; its
    matching depth is the hypothesis of ``bins`` [D] with the lowest patch cost."""
    kernel, pad = 2 * factor, factor // 2
    cost = F.avg_pool2d(volume.cost, kernel, factor, pad, count_include_pad=False)
    confidence = -F.max_pool2d(-volume.confidence, kernel, factor, pad)
    cost = torch.where(confidence > 0, cost, torch.zeros_like(cost))
    return CostVolume(cost, confidence, bins[cost.argmin(dim=1, keepdim=True)].detach())


def search_offsets(radius: int) -> list[tuple[int, int]]:
    """The (dx, dy) of a (2 radius + 1)^2 window, shortest first (ties in the search go to less motion)."""
    window = [(dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    return sorted(window, key=lambda o: o[0] ** 2 + o[1] ** 2)


def object_motion(
    current: Tensor,
    lookup: Tensor,
    cam_T_cam: Tensor,
    K: Tensor,
    inv_K: Tensor,
    reference_depth: Tensor,
    radius: int,
    border: int = BORDER,
) -> Tensor:
    """Each pixel's own motion [B,2,h,w] (x, y in feature pixels): the offset, within ``radius`` of
    where ``reference_depth`` [B,1,h,w] and the camera's motion put the pixel in the lookup frame,
    at which the lookup features [B,C,h,w] match ``current``'s best (mean L1 over channels).

    Manydepth2 gets the optical flow from a pretrained GMFlow and subtracts the static flow of the
    teacher's depth; the difference of the two is what this searches for directly, on the matching
    features, so no flow network is needed. Near-equal matches go to the shorter offset
    (``OFFSET_TIE_BREAK``); pixels with no offset inside the map get 0.
    """
    b, _, h, w = current.shape
    offsets = current.new_tensor(search_offsets(radius))  # [O,2]
    x, y = project_pixels(reference_depth.reshape(b, 1, h * w), cam_T_cam, K, inv_K, h, w)  # [B,1,hw]
    xs, ys = x + offsets[:, 0].view(1, -1, 1), y + offsets[:, 1].view(1, -1, 1)  # [B,O,hw]
    warped = bilinear_lookup(lookup, xs, ys)  # [B,O,hw,C]
    diff = (warped - current.flatten(2).transpose(1, 2).unsqueeze(1)).abs().mean(-1)
    preference = torch.arange(len(offsets), dtype=diff.dtype, device=diff.device).view(1, -1, 1)
    diff = diff + OFFSET_TIE_BREAK * preference
    diff = torch.where(inside_map(xs, ys, h, w, border), diff, torch.full_like(diff, float("inf")))
    best = diff.argmin(dim=1)  # [B,hw]
    motion = offsets[best].permute(0, 2, 1).reshape(b, 2, h, w)
    found = torch.isfinite(diff.amin(dim=1)).view(b, 1, h, w)
    return torch.where(found, motion, torch.zeros_like(motion))


def relative_cost(cost: Tensor, eps: float = 1e-6) -> Tensor:
    """Each pixel's costs [B,D,h,w] divided by their mean over the D hypotheses (all-zero pixels stay 0).

    Raw L1 feature differences are small beside the features they are fused with (0.05-0.06 against
    0.44-0.47 mean magnitude in trained students, varying by 0.08 over the hypotheses), so the fusion
    conv reads them at a twentieth of the features' weight and Adam, moving each weight by about the
    learning rate per step, cannot scale them up within a short run. Relative costs are about 1 with a
    dip at the matching depth, and flat (about 1 everywhere) where nothing matches better than anything else.
    """
    return cost / cost.mean(dim=1, keepdim=True).clamp(min=eps)


def matching_mask(matching_depth: Tensor, teacher_depth: Tensor) -> Tensor:
    """Manydepth's ``compute_matching_mask``: 1 where the cost volume's argmin depth and the teacher's
    depth differ by less than a factor 2 either way ((m - t) / t < 1 and (t - m) / m < 1), else 0."""
    agree = ((matching_depth - teacher_depth) / teacher_depth < 1.0) & (
        (teacher_depth - matching_depth) / matching_depth < 1.0
    )
    return agree.to(teacher_depth.dtype)


def reliable_pixels(
    confidence: Tensor, matching_depth: Tensor, teacher_depth: Tensor, augmented: Tensor
) -> Tensor:
    """Where the student's reprojection loss applies [B,1,H,W] (1) and where the consistency loss
    takes over (0): confident, argmin depth consistent with the teacher's, sample not augmented.

    ``confidence`` and ``matching_depth`` at the cost volume's resolution (upsampled nearest, as
    Manydepth), ``teacher_depth`` [B,1,H,W], ``augmented`` [B] (1: static camera or empty volume).
    """
    size = teacher_depth.shape[-2:]
    confidence = F.interpolate(confidence, size=size, mode="nearest")
    matching_depth = F.interpolate(matching_depth, size=size, mode="nearest")
    keep = confidence * matching_mask(matching_depth, teacher_depth)
    return keep * (1.0 - augmented.to(keep.dtype).view(-1, 1, 1, 1))


def matching_augmentation(
    batch_size: int, static_prob: float, empty_prob: float, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """Manydepth's per-sample draw: (static [B], empty [B]) bool; u ~ U(0,1): static camera for
    u < static_prob, else empty cost volume for u < static_prob + empty_prob."""
    u = torch.rand(batch_size).to(device)
    static = u < static_prob
    return static, ~static & (u < static_prob + empty_prob)


class CostVolumeMatching(nn.Module):
    """What every student shares: the learnt hypothesis range, the training camera and the matching
    (``match``). ``_init_matching`` sets it up, the prematching conv included; a subclass provides
    ``_matching_features(image)`` (its features up to the matching grid, the last one matched), the
    ImageNet ``mean`` and ``std`` buffers and ``min_depth``.

    Buffers (in the state dict, so in checkpoints and the export): ``min_depth_bin`` and
    ``max_depth_bin``, the learnt hypothesis range; ``intrinsics``, the training camera's normalised
    (fx/W, fy/H, cx/W, cy/H), which the exported model matches with.
    """

    def _init_matching(
        self,
        num_depth_bins: int,
        depth_binning: str,
        min_depth_bin: float,
        max_depth_bin: float,
        pose_downsample: int,
        matching_level: int,
        cost_scale: str,
        matching_source: str,
        level_channels: Sequence[int],
        matching_channels: int | None,
        motion_aware: bool = False,
        motion_search_radius: int = 3,
        motion_threshold: float = 1.5,
    ) -> None:
        """``level_channels``: the channels of the student's features at each matching level."""
        if depth_binning not in DEPTH_BINNINGS:
            raise ValueError(f"depth binning {depth_binning!r}: expected one of {DEPTH_BINNINGS}")
        if matching_level not in MATCHING_LEVELS:
            raise ValueError(f"matching level {matching_level!r}: expected one of {MATCHING_LEVELS}")
        if cost_scale not in COST_SCALES:
            raise ValueError(f"cost scale {cost_scale!r}: expected one of {COST_SCALES}")
        if matching_source not in MATCHING_SOURCES:
            raise ValueError(f"matching source {matching_source!r}: expected one of {MATCHING_SOURCES}")
        self.num_depth_bins = int(num_depth_bins)
        self.depth_binning = depth_binning
        # How much smaller the pose net's frames are (kept here: the student's export and training
        # pass both need it, and the pose net itself is the single-frame model's).
        self.pose_downsample = int(pose_downsample)
        self.matching_level = int(matching_level)
        self.cost_scale = cost_scale
        self.matching_source = matching_source
        self.motion_aware = bool(motion_aware)
        self.motion_search_radius = int(motion_search_radius)
        self.motion_threshold = float(motion_threshold)
        channels = int(level_channels[self.matching_level])
        # Manydepth's prematching_conv (its code defines it, 64 -> 16, but never calls it): the cost
        # volume's work scales with the channels it compares.
        self.prematching_conv = (
            nn.Sequential(nn.Conv2d(channels, int(matching_channels), 1), nn.ReLU(inplace=True))
            if matching_channels and matching_source == "features"
            else nn.Identity()
        )
        self.register_buffer("min_depth_bin", torch.tensor(float(min_depth_bin)))
        self.register_buffer("max_depth_bin", torch.tensor(float(max_depth_bin)))
        self.register_buffer("intrinsics", torch.tensor(KITTI_NORMALISED_INTRINSICS))

    @property
    def needs_reference(self) -> bool:
        """Whether it runs on its teacher's depth, so that the car runs the teacher too."""
        return self.motion_aware

    # -- the hypotheses and the camera -------------------------------------------------------
    def depth_bins(self) -> Tensor:
        """The current hypotheses [D] (ascending depth)."""
        return depth_bins(self.min_depth_bin, self.max_depth_bin, self.num_depth_bins, self.depth_binning)

    @torch.no_grad()
    def update_depth_bins(self, depth: Tensor) -> None:
        """Fold a teacher depth map [B,1,H,W] into the hypothesis range (``update_depth_range``)."""
        low, high = update_depth_range(self.min_depth_bin, self.max_depth_bin, depth, self.min_depth)
        self.min_depth_bin.copy_(low)
        self.max_depth_bin.copy_(high)

    def set_intrinsics(self, K: np.ndarray, size: tuple[int, int]) -> None:
        """Record the training camera: 3x3 ``K`` for images of ``size`` (width, height)."""
        normalised = scale_intrinsics(K, size, (1, 1))
        values = [normalised[0, 0], normalised[1, 1], normalised[0, 2], normalised[1, 2]]
        self.intrinsics.copy_(torch.tensor(values, dtype=torch.float32))

    def intrinsics_at(self, height: int, width: int) -> tuple[Tensor, Tensor]:
        """(K, inv_K) [1,4,4] of the recorded camera for images of ``height`` x ``width``."""
        fx, fy, cx, cy = (float(v) for v in self.intrinsics)
        return camera_matrices((fx, fy, cx, cy), height, width)

    # -- the matching -----------------------------------------------------------------------
    def match(
        self,
        current: Tensor,
        image: Tensor,
        lookup: Tensor,
        cam_T_cam: Tensor,
        K: Tensor,
        inv_K: Tensor,
        empty: Tensor | None = None,
        reference_depth: Tensor | None = None,
    ) -> tuple[CostVolume, Tensor | None]:
        """The cost volume of ``image`` against ``lookup`` at the matching grid of ``current`` (the
        image's encoder features at ``matching_level``), and each pixel's own motion [B,2,h,w] where
        ``reference_depth`` is given (Manydepth2's compensation, else None). Arguments as ``forward``'s.

        ``matching_source: features`` matches the prematching conv's features of both frames;
        ``image`` matches the normalised frames average-pooled to twice the grid's size (full size
        for 320x96 at level 0) and pools the costs over 4x4-pixel patches onto the grid.
        """
        # Python ints (constants when traced for the export, whose sizes are fixed).
        height, width = int(image.shape[-2]), int(image.shape[-1])
        grid = (int(current.shape[-1]), int(current.shape[-2]))
        by_image = self.matching_source == "image"
        if by_image and reference_depth is not None:
            raise ValueError("matching source 'image' with motion_aware: the motion search needs features")
        shrink = width // (2 * grid[0])
        size = (width // shrink, height // shrink) if by_image else grid
        # The one intrinsics scaling (depth_node.geometry) as a matrix S, its inverse in numpy (a
        # matrix inverse has no ONNX operator).
        S = scale_intrinsics(np.eye(4), (width, height), size)
        K_s = K.new_tensor(S) @ K.float()
        inv_K_s = inv_K.float() @ inv_K.new_tensor(np.linalg.inv(S))
        bins = self.depth_bins().float()
        # No gradient into the encoder through the matching (Manydepth's); the prematching conv gets
        # one, as it has no other way to learn. float32 even under mixed precision, since
        # half-precision pixel coordinates are off by a fraction of a pixel.
        if not by_image:
            with torch.no_grad():
                lookup_features = self._matching_features(lookup)[-1]
        with torch.autocast(device_type=image.device.type, enabled=False):
            if by_image:
                matched_current, matched_lookup = (
                    F.avg_pool2d(((f - self.mean) / self.std).float(), shrink) for f in (image, lookup)
                )
            else:
                matched_current = self.prematching_conv(current.detach().float())
                matched_lookup = self.prematching_conv(lookup_features.float())
            motion = None
            if reference_depth is not None:
                motion = self._object_motion(
                    matched_current, matched_lookup, cam_T_cam.float(), K_s, inv_K_s, reference_depth
                )
            volume = cost_volume(
                matched_current, matched_lookup, cam_T_cam.float(), K_s, inv_K_s, bins, empty, motion=motion
            )
        return (pooled_cost_volume(volume, 2, bins) if by_image else volume), motion

    def _object_motion(
        self,
        current: Tensor,
        lookup: Tensor,
        cam_T_cam: Tensor,
        K: Tensor,
        inv_K: Tensor,
        depth: Tensor,
    ) -> Tensor:
        """Manydepth2's compensation [B,2,h,w]: each pixel's own motion (``object_motion``, around the
        static flow of the reference depth [B,1,H,W], resized bilinearly to the matching grid as
        Manydepth2 does), kept where it is longer than ``motion_threshold`` pixels, else 0."""
        depth = F.interpolate(depth.float(), size=current.shape[-2:], mode="bilinear", align_corners=False)
        with torch.no_grad():
            motion = object_motion(current, lookup, cam_T_cam, K, inv_K, depth, self.motion_search_radius)
        moving = motion.norm(dim=1, keepdim=True) > self.motion_threshold
        return torch.where(moving, motion, torch.zeros_like(motion))


class ManyDepthNet(DepthNet, CostVolumeMatching):
    """The multi-frame depth net: built like ``DepthNet`` (encoder, decoder, depth range, initial
    depth), plus the fusion conv and the hypothesis range.

    ``forward(image, lookup, cam_T_cam, K, inv_K, empty=None)``: images [B,3,H,W] RGB in [0,1] (H, W
    multiples of 32), ``cam_T_cam`` [B,4,4] current-camera points into the lookup camera, ``K`` /
    ``inv_K`` [B,4,4] (or [1,4,4] for all) at the input resolution. Returns ``("disp", s)`` as
    ``DepthNet`` does, plus
    ``"matching_depth"`` and ``"cost_confidence"`` [B,1,H/4,W/4] (see ``cost_volume``).

    The hypothesis range, the camera and the matching are ``CostVolumeMatching``'s.
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
        num_depth_bins: int = 16,
        depth_binning: str = "linear",
        min_depth_bin: float = 0.1,
        max_depth_bin: float = 10.0,
        matching_channels: int | None = 16,
        pose_downsample: int = 2,
        matching_level: int = 1,
        cost_scale: str = "raw",
        matching_source: str = "features",
        motion_aware: bool = False,
        motion_search_radius: int = 3,
        motion_threshold: float = 1.5,
    ) -> None:
        if not isinstance(encoder, ResnetEncoder | STDCEncoder):
            raise ValueError(
                f"multi-frame model: backbone {backbone!r} is not supported; expected a ResNet or STDC "
                "backbone (the cost volume enters at their 1/4 level)"
            )
        super().__init__(encoder, backbone, num_scales, min_depth, max_depth, init_depth, decoder)
        self._init_matching(
            num_depth_bins,
            depth_binning,
            min_depth_bin,
            max_depth_bin,
            pose_downsample,
            matching_level,
            cost_scale,
            matching_source,
            encoder.num_ch_enc,
            matching_channels,
            motion_aware,
            motion_search_radius,
            motion_threshold,
        )
        channels = encoder.num_ch_enc[self.matching_level]
        self.reduce_conv = nn.Sequential(
            nn.Conv2d(channels + self.num_depth_bins, channels, 3, 1, 1), nn.ReLU(inplace=True)
        )

    @torch.no_grad()
    def start_from_single_frame(self, depth_state: Mapping[str, Tensor]) -> None:
        """Start as a trained single-frame depth net (``state_dict`` of a ``DepthNet`` of this backbone).

        Manydepth starts student and teacher from the same ImageNet weights; here a single-frame
        checkpoint plays that part. The encoder and decoder take its weights, and the fusion conv
        starts as a pass-through of the current frame's features (identity on them, zero on the
        cost volume; they are post-ReLU, so the ReLU after it changes nothing). The student then
        predicts exactly what its teacher does, and learns from there how much to trust the cost
        volume, instead of a random fusion conv scrambling every deeper feature.
        """
        own = self.state_dict()
        added = {k for k in own if k.split(".")[0] in ("prematching_conv", "reduce_conv")}
        added |= {"min_depth_bin", "max_depth_bin", "intrinsics"}
        # Checked before loading, so that weights which do not fit leave the net as it was.
        wrong = sorted(k for k, v in depth_state.items() if k not in own or own[k].shape != v.shape)
        wrong += sorted(set(own) - set(depth_state) - added)
        if wrong:
            raise ValueError(f"single-frame weights do not fit this multi-frame net: {wrong[:3]}")
        self.load_state_dict(depth_state, strict=False)
        conv = self.reduce_conv[0]
        channels = conv.out_channels
        conv.weight.zero_()
        conv.weight[torch.arange(channels), torch.arange(channels), 1, 1] = 1.0
        conv.bias.zero_()

    # -- the encoder, level by level ---------------------------------------------------------
    def _level(self, x: Tensor, level: int) -> Tensor:
        """Encoder level ``level`` (0: stride 2 ... 4: stride 32) applied to the previous level's output."""
        enc = self.encoder
        if isinstance(enc, ResnetEncoder):
            if level == 0:
                return enc.relu(enc.bn1(enc.conv1(x)))
            if level == 1:
                return enc.layer1(enc.maxpool(x))
            return getattr(enc, f"layer{level}")(x)
        start, end = enc.stage_slices[level]
        for idx in range(start, end):
            x = enc.features[idx](x)
        return x

    def _matching_features(self, image: Tensor) -> list[Tensor]:
        """The encoder's levels 0 .. ``matching_level`` of ``image``; the last one is matched."""
        features = [self._level((image - self.mean) / self.std, 0)]
        for level in range(1, self.matching_level + 1):
            features.append(self._level(features[-1], level))
        return features

    # -- the forward pass --------------------------------------------------------------------
    def forward(  # type: ignore[override]
        self,
        image: Tensor,
        lookup: Tensor,
        cam_T_cam: Tensor,
        K: Tensor,
        inv_K: Tensor,
        empty: Tensor | None = None,
        reference_depth: Tensor | None = None,
    ) -> dict[Any, Tensor]:
        if image.shape[-2] % 32 or image.shape[-1] % 32:
            raise ValueError(f"ManyDepthNet input size {tuple(image.shape[-2:])} must be a multiple of 32")
        if lookup.shape != image.shape:
            raise ValueError(
                f"ManyDepthNet: lookup frame {tuple(lookup.shape)} must have the shape of image "
                f"{tuple(image.shape)}"
            )
        features = self._matching_features(image)
        current = features[-1]
        if self.motion_aware and reference_depth is None:
            raise ValueError("model.motion_aware: the matching needs the reference (teacher's) depth")
        reference = reference_depth if self.motion_aware else None
        volume, motion = self.match(current, image, lookup, cam_T_cam, K, inv_K, empty, reference)
        cost = relative_cost(volume.cost) if self.cost_scale == "relative" else volume.cost
        fused = self.reduce_conv(torch.cat([current, cost.to(current.dtype)], 1))
        deeper = [fused]
        for level in range(self.matching_level + 1, 5):
            deeper.append(self._level(deeper[-1], level))
        outputs: dict[Any, Tensor] = dict(self.decoder([*features, *deeper[1:]]))
        outputs["matching_depth"] = volume.matching_depth
        outputs["cost_confidence"] = volume.confidence
        if motion is not None:
            outputs["object_motion"] = motion
        return outputs

    def predict_depth(  # type: ignore[override]
        self,
        image: Tensor,
        lookup: Tensor,
        cam_T_cam: Tensor,
        K: Tensor,
        inv_K: Tensor,
        reference_depth: Tensor | None = None,
    ) -> Tensor:
        """Scale-0 depth [B,1,H,W] in model units."""
        disp = self.forward(image, lookup, cam_T_cam, K, inv_K, reference_depth=reference_depth)[("disp", 0)]
        return disp_to_depth(disp, self.min_depth, self.max_depth)[1]


class RefineNet(CostVolumeMatching):
    """``model.student: refine``: the teacher's disparity, corrected where the cost volume says
    otherwise. Not Manydepth's student (which is ``ManyDepthNet``): a small net of its own beside the
    teacher, which the car runs anyway.

    ``feature_conv`` (3x3 convs and ReLUs, stride 2 per level down to the matching grid,
    ``channels`` wide) stands in for the encoder: its features are matched through
    ``prematching_conv`` and read by the head. The head (three 3x3 convs) takes them, the cost volume
    (relative with ``cost_scale: relative``) and the teacher's scale-0 disparity logit at the grid,
    and returns a correction of that logit, which is upsampled and added to the teacher's logit at
    every scale. Its last conv starts at zero, so the student starts as exactly its teacher, and
    where the matching is no help (an empty cost volume, a static camera) the consistency loss keeps
    it there.

    ``forward(image, lookup, cam_T_cam, K, inv_K, empty, reference_disps)``: arguments as
    ``ManyDepthNet``'s, ``reference_disps`` {s: the teacher's ``("disp", s)``} (no gradient reaches
    the teacher). Returns ``("disp", s)`` for those scales, ``"matching_depth"`` and
    ``"cost_confidence"``.
    """

    def __init__(
        self,
        min_depth: float = 0.1,
        max_depth: float = 100.0,
        num_depth_bins: int = 16,
        depth_binning: str = "linear",
        min_depth_bin: float = 0.1,
        max_depth_bin: float = 10.0,
        matching_channels: int | None = 16,
        pose_downsample: int = 2,
        matching_level: int = 1,
        cost_scale: str = "raw",
        matching_source: str = "features",
        channels: int = 32,
    ) -> None:
        super().__init__()
        self._init_matching(
            num_depth_bins,
            depth_binning,
            min_depth_bin,
            max_depth_bin,
            pose_downsample,
            matching_level,
            cost_scale,
            matching_source,
            [channels] * len(MATCHING_LEVELS),
            matching_channels,
        )
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, 2, 1), nn.ReLU(inplace=True)]
        for _ in range(self.matching_level):
            layers += [nn.Conv2d(channels, channels, 3, 2, 1), nn.ReLU(inplace=True)]
        self.feature_conv = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Conv2d(channels + self.num_depth_bins + 1, channels, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, 1, 3, 1, 1),
        )
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    @property
    def needs_reference(self) -> bool:
        return True

    def start_from_single_frame(self, depth_state: Mapping[str, Tensor]) -> None:
        """Nothing to take: the teacher takes the single-frame weights, and the refiner starts as
        its teacher whatever they are (its last conv is zero)."""

    def _matching_features(self, image: Tensor) -> list[Tensor]:
        return [self.feature_conv((image - self.mean) / self.std)]

    def forward(
        self,
        image: Tensor,
        lookup: Tensor,
        cam_T_cam: Tensor,
        K: Tensor,
        inv_K: Tensor,
        empty: Tensor | None = None,
        reference_disps: Mapping[int, Tensor] | None = None,
    ) -> dict[Any, Tensor]:
        if not reference_disps:
            raise ValueError("model.student=refine: the refiner needs its teacher's disparities")
        current = self._matching_features(image)[-1]
        volume, _ = self.match(current, image, lookup, cam_T_cam, K, inv_K, empty)
        cost = relative_cost(volume.cost) if self.cost_scale == "relative" else volume.cost
        teacher_logit = {s: disp_logit(disp.detach().float()) for s, disp in reference_disps.items()}
        first = teacher_logit[min(teacher_logit)]
        at_grid = F.interpolate(first, size=current.shape[-2:], mode="bilinear", align_corners=False)
        correction = self.head(torch.cat([current, cost.to(current.dtype), at_grid.to(current.dtype)], 1))
        outputs: dict[Any, Tensor] = {}
        for s, logit in teacher_logit.items():
            step = F.interpolate(correction, size=logit.shape[-2:], mode="bilinear", align_corners=False)
            outputs[("disp", s)] = torch.sigmoid(logit + step)
        outputs["matching_depth"] = volume.matching_depth
        outputs["cost_confidence"] = volume.confidence
        return outputs

    def predict_depth(
        self,
        image: Tensor,
        lookup: Tensor,
        cam_T_cam: Tensor,
        K: Tensor,
        inv_K: Tensor,
        reference_depth: Tensor | None = None,
    ) -> Tensor:
        """Scale-0 depth [B,1,H,W] in model units, refining the teacher's ``reference_depth``."""
        if reference_depth is None:
            raise ValueError("model.student=refine: the refiner needs its teacher's depth")
        reference = {0: depth_to_disp(reference_depth, self.min_depth, self.max_depth)}
        disp = self.forward(image, lookup, cam_T_cam, K, inv_K, reference_disps=reference)[("disp", 0)]
        return disp_to_depth(disp, self.min_depth, self.max_depth)[1]


def disp_logit(disp: Tensor, eps: float = 1e-6) -> Tensor:
    """The pre-sigmoid value of a disparity in (0, 1), clamped ``eps`` inside (ONNX has no logit)."""
    disp = disp.clamp(eps, 1.0 - eps)
    return torch.log(disp / (1.0 - disp))


def pose_frame(image: Tensor, downsample: int) -> Tensor:
    """A frame as the pose net sees it: average-pooled by ``downsample`` (1: as it is). A ResNet18 pose
    net on 640x192 frames costs 4.9 GMAC, more than half the single-frame ResNet18 depth net's 8.0;
    on 320x96 it costs 1.2."""
    return F.avg_pool2d(image, downsample) if downsample > 1 else image


def matching_pose(outputs: Mapping[Any, Tensor]) -> Tensor:
    """The pose net's transform of current-camera points into frame -1's camera [B,4,4], from its raw
    output for the pair (-1, 0) (no odometry rescaling: the car has none), detached."""
    axisangle, translation = outputs[("axisangle", 0, -1)], outputs[("translation", 0, -1)]
    return transformation_from_parameters(axisangle.detach(), translation.detach(), invert=True)


class ManyDepthModel(nn.Module):
    """Manydepth's training forward pass: ``depth_net`` (the single-frame teacher), ``pose_net`` and
    ``multi_depth_net`` (the student) as one module, so DistributedDataParallel syncs all three.

    Outputs: the student's ``("disp", s)``; ``("cam_T_cam", 0, f)`` detached (the student's loss must
    not train the pose net); ``"reprojection_mask"`` [B,1,H,W] (``reliable_pixels``);
    ``"matching_augmented"`` [B] bool (static camera or empty cost volume this sample);
    ``("consistency_disp", s)``: the teacher's disparity, detached, the consistency loss's target;
    ``"matching_depth"`` and ``"cost_confidence"`` at 1/4. While the teacher trains, also its own
    outputs under ``("teacher", *key)`` (its disparities and the pose net's outputs), for its loss
    (``training.losses.ManydepthLoss``). In training mode the matching augmentations apply and the
    hypothesis range follows the teacher's depth (until the teacher is frozen).
    """

    def __init__(
        self,
        depth_net: DepthNet,
        pose_net: PoseNet,
        multi_depth_net: ManyDepthNet | RefineNet,
        frame_ids: Sequence[int],
        odometry_scale: bool = False,
        static_camera_prob: float = 0.1,
        empty_cost_volume_prob: float = 0.1,
    ) -> None:
        super().__init__()
        if -1 not in frame_ids:
            raise ValueError(
                f"multi-frame model: data.frame_ids={list(frame_ids)} lacks -1, the frame it matches against"
            )
        self.depth_net = depth_net
        self.pose_net = pose_net
        self.multi_depth_net = multi_depth_net
        self.frame_ids = list(frame_ids)
        self.odometry_scale = odometry_scale
        self.static_camera_prob = float(static_camera_prob)
        self.empty_cost_volume_prob = float(empty_cost_volume_prob)
        self.teacher_frozen = False

    def set_teacher_frozen(self, frozen: bool) -> None:
        """Freeze (or not) the teacher and the pose net: no gradient, BatchNorm on running statistics,
        no teacher loss, no more hypothesis-range updates (Manydepth's ``freeze_teacher``)."""
        if frozen != self.teacher_frozen:
            self.teacher_frozen = frozen
            self.train(self.training)

    def train(self, mode: bool = True) -> ManyDepthModel:
        super().train(mode)
        if self.teacher_frozen:
            self.depth_net.eval()
            self.pose_net.eval()
        return self

    def matching_inputs(
        self, batch: Mapping[Any, Tensor], poses: Mapping[Any, Tensor]
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
        """(lookup frame [B,3,H,W], pose [B,4,4], empty [B] bool or None, augmented [B] bool): frame -1
        and the pose net's motion, with the matching augmentations drawn in training mode."""
        lookup = batch[("color_aug", -1, 0)]
        pose = matching_pose(poses)
        if not self.training:
            return lookup, pose, None, torch.zeros(lookup.shape[0], dtype=torch.bool, device=lookup.device)
        static, empty = matching_augmentation(
            lookup.shape[0], self.static_camera_prob, self.empty_cost_volume_prob, lookup.device
        )
        # Static camera: Manydepth looks up the current frame without its colour augmentation.
        lookup = torch.where(static.view(-1, 1, 1, 1), batch[("color", 0, 0)], lookup)
        return lookup, pose, empty, static | empty

    def _pose_keys(self) -> list[tuple[str, int, int]]:
        """The batch entries the pose net reads (``predict_poses``)."""
        return [("color_aug", f, 0) for f in self.frame_ids if f != "s"]

    def forward(self, batch: Mapping[Any, Tensor]) -> dict[Any, Tensor]:
        image = batch[("color_aug", 0, 0)]
        train_teacher = not self.teacher_frozen
        factor = self.multi_depth_net.pose_downsample
        pose_batch = {**batch, **{key: pose_frame(batch[key], factor) for key in self._pose_keys()}}
        with torch.set_grad_enabled(torch.is_grad_enabled() and train_teacher):
            teacher = dict(self.depth_net(image))
            poses = predict_poses(self.pose_net, pose_batch, self.frame_ids, self.odometry_scale)
        if "stereo_T" in batch:
            poses[("cam_T_cam", 0, "s")] = batch["stereo_T"]
        lookup, pose, empty, augmented = self.matching_inputs(batch, poses)
        net = self.multi_depth_net
        teacher_depth = disp_to_depth(teacher[("disp", 0)].detach().float(), net.min_depth, net.max_depth)[1]
        if isinstance(net, RefineNet):
            teacher_disps = {key[1]: value for key, value in teacher.items() if key[0] == "disp"}
            student = net(image, lookup, pose, batch["K"], batch["inv_K"], empty, teacher_disps)
        else:
            student = net(image, lookup, pose, batch["K"], batch["inv_K"], empty, teacher_depth)

        outputs: dict[Any, Tensor] = dict(student)
        outputs["reprojection_mask"] = reliable_pixels(
            student["cost_confidence"], student["matching_depth"], teacher_depth, augmented
        )
        outputs["matching_augmented"] = augmented
        for key, value in teacher.items():
            outputs[("consistency_disp", key[1])] = value.detach()
        for key, value in poses.items():
            if key[0] == "cam_T_cam":
                outputs[key] = value.detach()
        if train_teacher:
            outputs.update({("teacher", *key): value for key, value in {**teacher, **poses}.items()})
            if self.training:
                net.update_depth_bins(teacher_depth)
        return outputs


class TwoFrameDepthNet(nn.Module):
    """What the car runs: ``forward(image, prev_image) -> depth`` [N,1,H,W] in model units, both
    inputs [N,3,H,W] RGB in [0,1].

    The pose net estimates the motion from ``prev_image`` to ``image``; the student matches with the
    intrinsics recorded at training (``ManyDepthNet.intrinsics``, normalised by image size) scaled to
    ``height`` x ``width``. A camera whose normalised intrinsics differ from those needs the model
    re-exported with its own (the cost volume's geometry depends on them). A motion-aware student
    (``model.motion_aware``) also needs its single-frame teacher (``reference_net``), whose depth
    places the static flow it compensates moving pixels against, and a refining student
    (``model.student: refine``) the teacher's depth it corrects; the car runs that too.
    """

    def __init__(
        self,
        net: ManyDepthNet | RefineNet,
        pose_net: PoseNet,
        height: int,
        width: int,
        reference_net: DepthNet | None = None,
    ) -> None:
        super().__init__()
        if net.needs_reference and reference_net is None:
            raise ValueError("a motion-aware or refining two-frame model needs its teacher (reference_net)")
        self.net = net
        self.pose_net = pose_net
        self.reference_net = reference_net if net.needs_reference else None
        K, inv_K = net.intrinsics_at(height, width)
        self.register_buffer("K", K, persistent=False)
        self.register_buffer("inv_K", inv_K, persistent=False)

    def forward(self, image: Tensor, prev_image: Tensor) -> Tensor:
        factor = self.net.pose_downsample
        axisangle, translation = self.pose_net(pose_frame(prev_image, factor), pose_frame(image, factor))
        cam_T_cam = transformation_from_parameters(axisangle, translation, invert=True)
        reference = None if self.reference_net is None else self.reference_net.predict_depth(image)
        return self.net.predict_depth(image, prev_image, cam_T_cam, self.K, self.inv_K, reference)
