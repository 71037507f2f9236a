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

``student``: the same search around a multi-frame checkpoint's student instead (better on moving cars,
at the student's cost). ``search_width``: the window and the minimum parallax are in pixels of
320-wide frames, where they were chosen; wider frames are searched average-pooled to that width and
the correction is upsampled, which at 640x192 searches a quarter of the pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.geometry import transformation_from_parameters
from training.networks.depth_decoder import DepthNet
from training.networks.manydepth import (
    ManyDepthNet,
    RefineNet,
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
    "search_width": 320,  # frames wider are searched average-pooled to about this width
}
# What the frames are searched around: the single-frame depth, or a multi-frame checkpoint's student's.
GUIDED_PRIORS = ("single_frame", "student")


def guided_hypotheses(prior: Tensor, ratio: float, count: int) -> Tensor:
    """Each pixel's hypotheses [B,count,H,W] around its prior depth [B,1,H,W]: evenly spaced in log
    depth from prior / ``ratio`` to prior x ``ratio``."""
    steps = torch.linspace(-1.0, 1.0, count, dtype=prior.dtype, device=prior.device)
    return prior * torch.exp(math.log(ratio) * steps).view(1, count, 1, 1)


def box_mean(x: Tensor, window: int) -> Tensor:
    """The mean over the ``window`` x ``window`` box around each pixel of ``x`` [B,C,H,W], over the
    box's part inside the map. Two 1-D passes: the same mean as one 2-D pool at 2 ``window`` rather than
    ``window``^2 additions a pixel."""
    pad = window // 2
    rows = F.avg_pool2d(x, (1, window), 1, (0, pad), count_include_pad=False)
    return F.avg_pool2d(rows, (window, 1), 1, (pad, 0), count_include_pad=False)


def box_all(mask: Tensor, window: int) -> Tensor:
    """Whether every pixel of the ``window`` x ``window`` box around each pixel of ``mask`` [B,1,H,W]
    (float 0/1) is set (the part of the box inside the map); separable, as ``box_mean``."""
    pad = window // 2
    rows = -F.max_pool2d(-mask, (1, window), 1, (0, pad))
    return -F.max_pool2d(-rows, (window, 1), 1, (pad, 0)) > 0


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
    b, c, h, w = image.shape
    d = hypotheses.shape[1]
    x, y = project_pixels(hypotheses.flatten(2), cam_T_cam, K, inv_K, h, w)  # [B,D,hw]
    warped = bilinear_lookup(prev, x, y, channels_first=True)  # [B,3,D,hw]
    current = image.reshape(b, c, 1, h * w)
    diff = (warped - current).abs().mean(1).view(b, d, h, w)
    cost = box_mean(diff, window)
    identity = box_mean((prev - image).abs().mean(1, keepdim=True), window)
    landed = inside_map(x, y, h, w, 1).view(b, d, h, w).all(dim=1, keepdim=True).to(image.dtype)
    inside = box_all(landed, window)
    parallax = ((x[:, -1] - x[:, 0]) ** 2 + (y[:, -1] - y[:, 0]) ** 2).sqrt().view(b, 1, h, w)
    return cost, inside, parallax, identity


def guided_correction(cost: Tensor, usable: Tensor, ratio: float) -> Tensor:
    """The log-depth correction [B,1,H,W] to the prior: half the log ratio of the matched depth to the
    prior where ``usable`` [B,1,H,W], else 0. The matched depth is the lowest ``cost`` [B,D,H,W] over
    the hypotheses of ``guided_hypotheses(prior, ratio, D)``, moved to the vertex of the parabola
    through it and its two neighbours (at most half a step; none at the ends of the range)."""
    count = cost.shape[1]
    best = cost.argmin(dim=1, keepdim=True)
    inner = best.clamp(1, count - 2)
    c0, c1, c2 = (cost.gather(1, inner + k) for k in (-1, 0, 1))
    curvature = c0 - 2 * c1 + c2
    fits = (curvature > 1e-9) & (best == inner)
    vertex = torch.where(fits, 0.5 * (c0 - c2) / curvature.clamp(min=1e-9), torch.zeros_like(c1))
    # Hypothesis k lies at log(prior) + log(ratio) (2k / (D - 1) - 1).
    step = 2.0 * math.log(ratio) / (count - 1)
    log_offset = (best.to(cost.dtype) + vertex.clamp(-0.5, 0.5)) * step - math.log(ratio)
    return torch.where(usable, 0.5 * log_offset, torch.zeros_like(log_offset))


def guided_depth(prior: Tensor, cost: Tensor, usable: Tensor, ratio: float) -> Tensor:
    """The depth [B,1,H,W]: where ``usable``, the geometric mean of ``prior`` and the matched depth
    (``guided_correction``), else ``prior``."""
    return prior * torch.exp(guided_correction(cost, usable, ratio))


def search_factor(width: int, search_width: int) -> int:
    """By how much frames ``width`` pixels wide are pooled for the search: to about ``search_width``,
    never up."""
    return max(1, round(width / search_width))


class GuidedTwoFrameNet(nn.Module):
    """What the car would run, like ``TwoFrameDepthNet``: ``forward(image, prev_image) -> depth``
    [N,1,H,W] in model units, both inputs [N,3,height,width] RGB in [0,1]. ``depth_net`` and
    ``pose_net`` are a checkpoint's own, unchanged; ``intrinsics`` (fx, fy, cx, cy) normalised by image
    size, the camera the matching's geometry assumes; ``pose_downsample``: the factor the pose net's
    frames were pooled by in training (``pose_frame``).

    ``student``: a multi-frame checkpoint's student (``ManyDepthNet`` or ``RefineNet``, with the same
    pose net and camera); its depth, rather than ``depth_net``'s, is the prior searched around.

    ``search_width``: the window and ``min_parallax`` are in pixels of frames this wide (the width they
    were chosen at): wider frames are average-pooled to about it for the search, and the correction is
    upsampled to the full-size prior. At 640x192 this searches a quarter of the pixels.
    """

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
        search_width: int = GUIDED_DEFAULTS["search_width"],
        student: ManyDepthNet | RefineNet | None = None,
    ) -> None:
        super().__init__()
        if ratio <= 1.0 or count < 3 or window < 1 or window % 2 == 0 or search_width < 1:
            raise ValueError(
                f"guided matching: need ratio > 1 (got {ratio}), count >= 3 (got {count}), "
                f"an odd window (got {window}) and search_width >= 1 (got {search_width})"
            )
        self.depth_net = depth_net
        self.pose_net = pose_net
        self.student = student
        self.intrinsics = tuple(float(v) for v in intrinsics)
        self.pose_downsample = int(pose_downsample)
        self.ratio, self.count, self.window = float(ratio), int(count), int(window)
        self.min_parallax, self.automask = float(min_parallax), bool(automask)
        self.search_factor = search_factor(width, int(search_width))
        size = (height // self.search_factor, width // self.search_factor)
        K, inv_K = camera_matrices(intrinsics, *size)
        self.register_buffer("K", K, persistent=False)
        self.register_buffer("inv_K", inv_K, persistent=False)
        if student is not None:  # the student matches at the full size, as in TwoFrameDepthNet
            student_K, student_inv_K = camera_matrices(intrinsics, height, width)
            self.register_buffer("student_K", student_K, persistent=False)
            self.register_buffer("student_inv_K", student_inv_K, persistent=False)

    def prior(self, image: Tensor, prev_image: Tensor, cam_T_cam: Tensor) -> Tensor:
        """The depth searched around: the single-frame depth, or the student's."""
        if self.student is None:
            return self.depth_net.predict_depth(image)
        reference = self.depth_net.predict_depth(image) if self.student.needs_reference else None
        return self.student.predict_depth(
            image, prev_image, cam_T_cam, self.student_K, self.student_inv_K, reference
        )

    def forward(self, image: Tensor, prev_image: Tensor) -> Tensor:
        factor = self.pose_downsample
        axisangle, translation = self.pose_net(pose_frame(prev_image, factor), pose_frame(image, factor))
        cam_T_cam = transformation_from_parameters(axisangle, translation, invert=True)
        prior = self.prior(image, prev_image, cam_T_cam)
        factor = self.search_factor
        small_prior, small_image, small_prev = (
            F.avg_pool2d(x, factor) if factor > 1 else x for x in (prior, image, prev_image)
        )
        hypotheses = guided_hypotheses(small_prior, self.ratio, self.count)
        cost, inside, parallax, identity = photometric_cost(
            small_image, small_prev, hypotheses, cam_T_cam, self.K, self.inv_K, self.window
        )
        usable = inside & (parallax >= self.min_parallax)
        if self.automask:
            usable = usable & (cost.amin(dim=1, keepdim=True) < identity)
        correction = guided_correction(cost, usable, self.ratio)
        if factor > 1:
            correction = F.interpolate(
                correction, size=prior.shape[-2:], mode="bilinear", align_corners=False
            )
        return prior * torch.exp(correction)
