"""A two-frame model without a learnt student: the single-frame depth as a prior, the frames' own
geometry searched around it (the idea of MaGNet, Bae et al., CVPR 2022: sample each pixel's
multi-view hypotheses around its single-view depth, not over one range for the whole image).

Every pixel gets ``count`` depth hypotheses spaced evenly in log depth from prior / ``ratio`` to
prior x ``ratio`` (``guided_hypotheses``). Each is projected into the previous frame with the pose
net's motion, and its photometric cost is the L1 RGB difference averaged over a ``window`` x
``window`` box (``photometric_cost``: block matching, as in stereo). The lowest cost, refined by the
parabola through it and its neighbours, is the matched depth; the output is the geometric mean of it
and the prior (``guided_depth``), so the frames move the depth by at most sqrt(``ratio``). The
prior stays where the costs cannot tell the hypotheses apart or should not be trusted:
- they land less than ``min_parallax`` pixels apart in the previous frame (near the focus of
  expansion, a car standing still, the same frame fed twice);
- a hypothesis of the box lands outside the previous frame;
- with ``automask``, the previous frame's same pixel matches better than any hypothesis
  (Monodepth2's auto-mask: the pixel moves with the camera, as the lead car and the sky do).

Why (``docs/MOVING_CARS_STUDY.md``, "The single-frame depth as a prior"): on held-out drives the
frames' patches matched the right depth more often than the learnt features and more often than the
teacher, but with gross errors where flat road and sky match anywhere, and the students trained on
that cost volume followed it there. Searched only around the single-frame depth, the gross errors
cannot happen, and nothing has to be learnt: any checkpoint with a pose net becomes a two-frame
model. What it cannot tell is a car that moves along its own line of sight (an oncoming car looks
nearer than it is); the study measures what that costs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.geometry import transformation_from_parameters
from training.networks.depth_decoder import DepthNet
from training.networks.manydepth import (
    bilinear_lookup,
    camera_matrices,
    inside_map,
    pose_frame,
    project_pixels,
)
from training.networks.pose import PoseNet

# Chosen on training drives (docs/MOVING_CARS_STUDY.md), not on the held-out ones.
GUIDED_DEFAULTS: dict[str, float | int | bool] = {
    "ratio": 2.0,  # hypotheses from prior / 2 to prior x 2
    "count": 9,
    "window": 11,  # the block matching's box, pixels
    "min_parallax": 1.0,  # pixels between the nearest and the farthest hypothesis in the previous frame
    "automask": True,
}


def guided_hypotheses(prior: Tensor, ratio: float, count: int) -> Tensor:
    """Each pixel's hypotheses [B,count,H,W] around its prior depth [B,1,H,W]: evenly spaced in log
    depth from prior / ``ratio`` to prior x ``ratio``."""
    steps = torch.linspace(-1.0, 1.0, count, dtype=prior.dtype, device=prior.device)
    return prior * torch.exp(math.log(ratio) * steps).view(1, count, 1, 1)


def photometric_cost(
    image: Tensor,
    prev: Tensor,
    hypotheses: Tensor,
    cam_T_cam: Tensor,
    K: Tensor,
    inv_K: Tensor,
    window: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(cost [B,D,H,W], inside [B,1,H,W] bool, parallax [B,1,H,W], identity [B,1,H,W]) of ``image``
    [B,3,H,W] against ``prev`` at each pixel's ``hypotheses`` [B,D,H,W] (``cam_T_cam``: current-camera
    points into the previous camera [B,4,4]; ``K``, ``inv_K`` at the images' size).

    ``cost``: the mean |RGB difference| averaged over the ``window`` box around each pixel;
    ``inside``: every hypothesis of every pixel of the box lands inside the previous frame;
    ``parallax``: how many pixels apart the nearest and the farthest hypothesis land; ``identity``:
    the same box cost against the previous frame's same pixels (no motion at all)."""
    b, _, h, w = image.shape
    d = hypotheses.shape[1]
    x, y = project_pixels(hypotheses.flatten(2), cam_T_cam, K, inv_K, h, w)  # [B,D,hw]
    warped = bilinear_lookup(prev, x, y)  # [B,D,hw,3]
    current = image.flatten(2).transpose(1, 2).unsqueeze(1)  # [B,1,hw,3]
    diff = (warped - current).abs().mean(-1).view(b, d, h, w)
    pad = window // 2
    cost = F.avg_pool2d(diff, window, 1, pad, count_include_pad=False)
    still = (prev - image).abs().mean(1, keepdim=True)
    identity = F.avg_pool2d(still, window, 1, pad, count_include_pad=False)
    landed = inside_map(x, y, h, w, 1).view(b, d, h, w).all(dim=1, keepdim=True).to(image.dtype)
    inside = -F.max_pool2d(-landed, window, 1, pad) > 0
    parallax = ((x[:, -1] - x[:, 0]) ** 2 + (y[:, -1] - y[:, 0]) ** 2).sqrt().view(b, 1, h, w)
    return cost, inside, parallax, identity


def guided_depth(prior: Tensor, cost: Tensor, usable: Tensor, ratio: float) -> Tensor:
    """The depth [B,1,H,W]: where ``usable`` [B,1,H,W], the geometric mean of ``prior`` and the matched
    depth, else ``prior``. The matched depth is the lowest ``cost`` [B,D,H,W] over the hypotheses of
    ``guided_hypotheses(prior, ratio, D)``, moved to the vertex of the parabola through it and its
    two neighbours (at most half a step; none at the ends of the range)."""
    count = cost.shape[1]
    best = cost.argmin(dim=1, keepdim=True)
    inner = best.clamp(1, count - 2)
    c0, c1, c2 = (cost.gather(1, inner + k) for k in (-1, 0, 1))
    curvature = c0 - 2 * c1 + c2
    fits = (curvature > 1e-9) & (best == inner)
    vertex = torch.where(fits, 0.5 * (c0 - c2) / curvature.clamp(min=1e-9), torch.zeros_like(c1))
    # Hypothesis k lies at log(prior) + log(ratio) (2k / (D - 1) - 1).
    step = 2.0 * math.log(ratio) / (count - 1)
    log_offset = (best.to(prior.dtype) + vertex.clamp(-0.5, 0.5)) * step - math.log(ratio)
    return torch.where(usable, prior * torch.exp(0.5 * log_offset), prior)


class GuidedTwoFrameNet(nn.Module):
    """What the car would run, like ``TwoFrameDepthNet``: ``forward(image, prev_image) -> depth``
    [N,1,H,W] in model units, both inputs [N,3,H,W] RGB in [0,1]. ``depth_net`` and ``pose_net`` are a
    checkpoint's own, unchanged; ``intrinsics`` (fx, fy, cx, cy) normalised by image size, the camera
    the matching's geometry assumes; ``pose_downsample``: the factor the pose net's frames were
    pooled by in training (``pose_frame``)."""

    def __init__(
        self,
        depth_net: DepthNet,
        pose_net: PoseNet,
        intrinsics: tuple[float, float, float, float],
        height: int,
        width: int,
        pose_downsample: int = 1,
        ratio: float = GUIDED_DEFAULTS["ratio"],
        count: int = GUIDED_DEFAULTS["count"],
        window: int = GUIDED_DEFAULTS["window"],
        min_parallax: float = GUIDED_DEFAULTS["min_parallax"],
        automask: bool = GUIDED_DEFAULTS["automask"],
    ) -> None:
        super().__init__()
        if ratio <= 1.0 or count < 3 or window < 1 or window % 2 == 0:
            raise ValueError(
                f"guided matching: need ratio > 1 (got {ratio}), count >= 3 (got {count}) "
                f"and an odd window (got {window})"
            )
        self.depth_net = depth_net
        self.pose_net = pose_net
        self.pose_downsample = int(pose_downsample)
        self.ratio, self.count, self.window = float(ratio), int(count), int(window)
        self.min_parallax, self.automask = float(min_parallax), bool(automask)
        K, inv_K = camera_matrices(intrinsics, height, width)
        self.register_buffer("K", K, persistent=False)
        self.register_buffer("inv_K", inv_K, persistent=False)

    def forward(self, image: Tensor, prev_image: Tensor) -> Tensor:
        factor = self.pose_downsample
        axisangle, translation = self.pose_net(pose_frame(prev_image, factor), pose_frame(image, factor))
        cam_T_cam = transformation_from_parameters(axisangle, translation, invert=True)
        prior = self.depth_net.predict_depth(image)
        hypotheses = guided_hypotheses(prior, self.ratio, self.count)
        cost, inside, parallax, identity = photometric_cost(
            image, prev_image, hypotheses, cam_T_cam, self.K, self.inv_K, self.window
        )
        usable = inside & (parallax >= self.min_parallax)
        if self.automask:
            usable = usable & (cost.amin(dim=1, keepdim=True) < identity)
        return guided_depth(prior, cost, usable, self.ratio)
