"""Self-supervised (and optionally supervised) depth losses.

Monodepth2 (Godard et al., ICCV 2019): SSIM+L1 photometric error (alpha 0.85), per-pixel minimum
reprojection over the source frames, auto-masking of pixels where the unwarped source already
matches better (stationary camera, objects moving with the car), all scales upsampled to the input
resolution, edge-aware smoothness on mean-normalised disparity (weight 1e-3 / 2^scale).

DiPE (Jiang et al., 2020), ``masking: dipe``, as its authors' code computes it (HalleyJiang/DiPE
``trainer.py`` ``compute_losses``): per image, mu and the unbiased sigma of every source frame's raw
error over all pixels; per source frame f a mask keeps the pixels with mu - 1.0 sigma < e_f < mu +
0.5 sigma that land inside the source image, whose e_f is the minimum over the frames (+ 1e-7) and
below the unwarped frame f's error (auto-masking per frame, no tie-break noise); frame f's loss is
sum(mask e_f) / (sum(mask) + 1e-7) over the batch, and the frames' losses are summed. The large
errors it drops are mostly occlusions and independently moving objects. Its weighted multi-scale
scheme, ``multiscale: dipe_weighted``: each scale warped at its own resolution (images area-
downsampled, K scaled), photometric weight 0.25^scale. ``multiscale: own_resolution`` is Monodepth's
(Godard et al., CVPR 2017) scheme, the same at equal weights: a coarse scale's error keeps pointing
to the true disparity from further away than the input resolution's does (docs/STEREO_STUDY.md).

``dipe_pooled_min`` (old name ``dipe``): this project's earlier, looser reading of DiPE, on top of
Monodepth2's masking: one band (mu - 1.0 sigma, mu + 0.5 sigma) of the per-pixel minimum error,
population sigma, the loss normalised by the combined mask's sum.

SfMLearner (Zhou et al., CVPR 2017) explainability mask, ``masking: explainability``: each source
frame's error is weighted per pixel by a soft mask E_f that the pose net predicts, averaged over
sources (no minimum, no auto-masking: SfMLearner had neither), plus lambda_e * cross-entropy of E_f
against "explainable" (1), lambda_e = 0.2 as in the paper; its second-order smoothness
(|d_xx| + |d_xy| + |d_yx| + |d_yy|) is ``smoothness: second_order``.

Stereo (Monodepth2's S and MS): the stereo partner is one more source frame, ``"s"``, whose pose is
the calibration's (``("cam_T_cam", 0, "s")``); minimum reprojection and auto-masking treat it like
any other source (``stereo: minimum``). Under that minimum the video sources win most pixels, where
the pose net's free translation scale, not the baseline, sets the depth: MS came out 9 % too far and
16 % worse metric than median-scaled (docs/STEREO_STUDY.md). ``stereo: separate`` gives the stereo
partner its own auto-masked term, (video minimum term + stereo term) / 2, so that every pixel's depth
is tied to the baseline; stereo frames are simultaneous, so moving cars do not break that term.
With ``stereo_scale: baseline`` the video term still shapes the depth but cannot move each image's
scale (``without_scale_gradient``): the baseline alone sets it, and the pose net's translation
has to follow.

Manydepth (Watson et al., CVPR 2021), the multi-frame student of ``training.networks.manydepth``:
when ``outputs`` carry a ``"reprojection_mask"`` (1 where the cost volume is trusted), the student's
own mask replaces every other masking (``student_mask``: that mask by default; every pixel of a
sample whose matching was not augmented, or those of them Monodepth2's auto-mask keeps): the
per-pixel minimum error over the sources, mean over the mask (``masked_reprojection_loss``); with
``("consistency_disp", s)`` (the single-frame teacher's disparity, detached) the consistency loss
mean(|depth - teacher depth| * (1 - mask)) is added at each scale (``consistency: log``: of log
depths). ``ManydepthLoss`` adds the teacher's own loss while it trains.

PackNet-SfM (Guizilini et al., CVPR 2020) weak velocity supervision: |‖t_pred‖ - distance| over the
frame pairs whose travelled distance is known, which makes the depth metric.

Optional sparse depth supervision (LiDAR / ground truth, 0 = invalid) and a purely supervised mode,
with the supervised losses of the seeds (``depth_loss``): Eigen et al.'s (NIPS 2014) scale-invariant
log loss, DenseDepth's (Alhashim & Wonka 2018) L1 + gradient + SSIM on DenseDepth's normalised
inverse depth, and, wherever a batch carries ordinal point pairs (``"pairs"``, ``"relation"``),
Chen et al.'s (NIPS 2016, Depth in the Wild) ranking loss on log depth.

Usage in the trainer::

    outputs = model(batch)                          # training.networks.DepthPoseModel
    loss, diagnostics = criterion(batch, outputs)   # criterion = SelfSupervisedLoss(cfg, H, W)
    diagnostics.stats                               # floats for the loss log; also depth, warped, mask
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depth_node.geometry import scale_intrinsics
from training.geometry import BackprojectDepth, Project3D, disp_to_depth, warp_image

# The trainer's YAML ``loss:`` section mirrors these keys; missing keys take these values.
DEFAULT_LOSS_CFG: dict[str, Any] = {
    "mode": "self_supervised",  # self_supervised | supervised (depth loss only, needs batch["depth_gt"])
    "min_depth": 0.1,  # disp_to_depth range: must equal the model's (the trainer copies model.min/max_depth)
    "max_depth": 100.0,
    "ssim_weight": 0.85,  # alpha of SSIM vs L1
    "min_reprojection": True,  # per-pixel minimum over source frames (False: average, Monodepth2 --avg)
    "automask": True,
    "automask_noise": 1.0e-5,  # tie-break noise on the identity error (Monodepth2; DiPE has none)
    "smoothness_weight": 1.0e-3,  # divided by 2^scale
    # The pooled-min outlier band on top of monodepth2 masking (see the module docstring); old name
    # "dipe", still accepted. Read only with masking: monodepth2. Off: it cost abs_rel in every one of
    # 5 paired runs, and the shipped models train without it (docs/MOVING_CARS_STUDY.md).
    "dipe_pooled_min": False,
    "dipe_lower": 1.0,  # keep errors > mu - dipe_lower * sigma (DiPE's --low_ratio... -1.0)
    "dipe_upper": 0.5,  # keep errors < mu + dipe_upper * sigma (DiPE's --up_ratio... 0.5)
    # monodepth2: minimum reprojection / auto-masking / dipe_pooled_min as set above; dipe: DiPE's
    # per-frame masks (minimum and auto-masking per frame as set above); explainability: SfMLearner's
    # predicted mask instead of all of them (the trainer adds the mask to the pose net).
    "masking": "monodepth2",
    # full_resolution: every scale's depth upsampled to the input size (Monodepth2); dipe_weighted:
    # each scale at its own resolution, photometric weight 0.25^scale (DiPE's default scheme);
    # own_resolution: each scale at its own resolution, equal weights (Monodepth, 2017).
    "multiscale": "full_resolution",
    # How the stereo partner "s" (modality MS) enters the photometric loss: minimum, one more source
    # in the per-pixel minimum (Monodepth2); separate, its own auto-masked term beside the video
    # sources' minimum, the two averaged, so that every pixel sees the baseline (see the docstring).
    # separate: better than minimum on every whole-image metric, median-scaled and metric, and on
    # moving cars (docs/STEREO_STUDY.md). Read only with masking: monodepth2 (DiPE's per-frame masks
    # and SfMLearner's mask give each source its own term anyway; S, with no video source, is the
    # same either way).
    "stereo": "separate",
    # Which terms of stereo: separate may set each image's depth scale: baseline, the stereo term
    # alone (the video term's gradient loses its per-image scale component, ``without_scale_gradient``,
    # so the pose net's translation follows the baseline instead of pulling the depth to its own
    # scale); shared, both terms (Monodepth2). Read only where stereo: separate applies. baseline:
    # better than shared on every region, median-scaled and metric, at 600 and 900 steps (MS, one
    # seed; docs/STEREO_STUDY.md).
    "stereo_scale": "baseline",
    # Manydepth's consistency loss between the multi-frame student and its teacher: absolute,
    # |d - d_teacher| in depth units (Manydepth); log, |log d - log d_teacher|, the same relative error
    # near and far (an absolute term lets the far pixels' metre-sized differences set the gradient);
    # none, no such term: the student learns from its own photometric loss alone (an ablation).
    "consistency": "absolute",
    # Where the multi-frame student's own photometric loss applies (the consistency term takes the
    # rest): matching, Manydepth's reliable pixels (confident, argmin depth within 2x of the teacher's,
    # sample not augmented); all, every pixel of a sample whose matching was not augmented
    # (Manydepth's --disable_motion_masking); automask, those of them Monodepth2's auto-mask keeps
    # (the lead car and other pixels that move with the camera go to the teacher).
    "student_mask": "matching",
    "explainability_weight": 0.2,  # lambda_e of SfMLearner's mask regulariser
    "smoothness": "edge_aware",  # edge_aware (Monodepth2) | second_order (SfMLearner)
    "velocity_weight": 0.1,  # PackNet weak velocity supervision; applied when batch has finite distances
    # Warp with the pose net's translation rescaled to the travelled distance where it is known (the
    # pose net then only has to get the direction right; see training.networks.predict_poses, which
    # applies it). Off: Monodepth2/PackNet.
    "odometry_scale": False,
    "depth_weight": 0.0,  # sparse depth supervision next to the photometric loss (0: off)
    # log_l1 (|log d - log gt|) | abs_rel (|d - gt| / gt) | silog (Eigen) | densedepth (DenseDepth)
    "depth_loss": "log_l1",
    "silog_lambda": 0.5,  # lambda of silog: 0 = L2 of log depth, 1 = fully scale-invariant (Eigen: 0.5)
    "densedepth_lambda": 0.1,  # weight of DenseDepth's point-wise L1 term (its paper's lambda)
    # Ranking loss on ordinal pairs, applied wherever the batch has "pairs" (both modes; 0: off).
    "ranking_weight": 1.0,
}
DEPTH_LOSSES = ("log_l1", "abs_rel", "silog", "densedepth")
MASKINGS = ("monodepth2", "dipe", "explainability")
MULTISCALES = ("full_resolution", "dipe_weighted", "own_resolution")
CONSISTENCIES = ("absolute", "log", "none")
STUDENT_MASKS = ("matching", "all", "automask")
STEREO_TERMS = ("minimum", "separate")
STEREO_SCALES = ("baseline", "shared")
DIPE_SCALE_RATE = 0.25  # dipe_weighted's photometric weight per scale (DiPE's --scale_rate)
# Keys renamed since checkpoints were written: old name -> new name (a checkpoint stores its whole
# loss config, so an old one must still load and resume).
RENAMED_KEYS = {"dipe": "dipe_pooled_min"}
SMOOTHNESS = ("edge_aware", "second_order")
# The training modes (``training_mode``) whose depth is in metres: scored without scaling by
# depth-eval, exported with ``scale_is_metric=true``. Stereo: the baseline is in metres.
METRIC_TRAINING_MODES = ("self_supervised+velocity", "lidar", "supervised", "stereo", "mono+stereo")


def loss_config(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """``DEFAULT_LOSS_CFG`` overridden by ``cfg``; refuses unknown keys (a typo must not pass silently)."""
    cfg = dict(cfg or {})
    for old, new in RENAMED_KEYS.items():
        if old in cfg:
            value = cfg.pop(old)
            if new in cfg and cfg[new] != value:
                raise ValueError(
                    f"loss.{old}={value!r} (old name of loss.{new}) contradicts loss.{new}={cfg[new]!r}"
                )
            cfg[new] = value
    unknown = sorted(set(cfg) - set(DEFAULT_LOSS_CFG))
    if unknown:
        raise ValueError(f"unknown loss config keys {unknown}; known: {sorted(DEFAULT_LOSS_CFG)}")
    out = {**DEFAULT_LOSS_CFG, **cfg}
    if out["mode"] not in ("self_supervised", "supervised"):
        raise ValueError(f"loss.mode={out['mode']!r}: expected self_supervised or supervised")
    if out["depth_loss"] not in DEPTH_LOSSES:
        raise ValueError(f"loss.depth_loss={out['depth_loss']!r}: expected one of {DEPTH_LOSSES}")
    if not 0.0 <= out["silog_lambda"] <= 1.0:
        raise ValueError(f"loss.silog_lambda={out['silog_lambda']!r}: expected a number in [0, 1]")
    for key in ("densedepth_lambda", "ranking_weight"):
        if not out[key] >= 0.0:
            raise ValueError(f"loss.{key}={out[key]!r}: expected a number >= 0")
    if out["masking"] not in MASKINGS:
        raise ValueError(f"loss.masking={out['masking']!r}: expected one of {MASKINGS}")
    if out["multiscale"] not in MULTISCALES:
        raise ValueError(f"loss.multiscale={out['multiscale']!r}: expected one of {MULTISCALES}")
    if out["consistency"] not in CONSISTENCIES:
        raise ValueError(f"loss.consistency={out['consistency']!r}: expected one of {CONSISTENCIES}")
    if out["student_mask"] not in STUDENT_MASKS:
        raise ValueError(f"loss.student_mask={out['student_mask']!r}: expected one of {STUDENT_MASKS}")
    if out["smoothness"] not in SMOOTHNESS:
        raise ValueError(f"loss.smoothness={out['smoothness']!r}: expected one of {SMOOTHNESS}")
    if out["stereo"] not in STEREO_TERMS:
        raise ValueError(f"loss.stereo={out['stereo']!r}: expected one of {STEREO_TERMS}")
    if out["stereo_scale"] not in STEREO_SCALES:
        raise ValueError(f"loss.stereo_scale={out['stereo_scale']!r}: expected one of {STEREO_SCALES}")
    return out


def training_mode(config: Mapping[str, Any], used_velocity: bool | None = None) -> str:
    """The model's ``training_mode`` metadata from a training config.

    supervised | supervised_ordinal (DIW pairs) | supervised_scale_invariant (silog, lambda 1) | lidar
    (photometric + sparse depth) | stereo | mono+stereo (``data.modality`` S, MS)
    | self_supervised+velocity | self_supervised. ``used_velocity``: whether training batches really
    carried distances (the data decides); None assumes they did when ``velocity_weight`` > 0 and
    the data source can provide them.
    """
    cfg = loss_config(config.get("loss"))
    data = config.get("data", {}) or {}
    if cfg["mode"] == "supervised":
        # Point-pair orders (DIW) and a fully scale-invariant loss teach depth up to scale only.
        if data.get("source") == "diw":
            return "supervised_ordinal"
        if cfg["depth_loss"] == "silog" and cfg["silog_lambda"] == 1.0:
            return "supervised_scale_invariant"
        return "supervised"
    if cfg["depth_weight"] > 0 and data.get("depth_gt") not in (None, "none"):
        return "lidar"
    modality = data.get("modality", "M")
    if modality in ("S", "MS"):
        return "stereo" if modality == "S" else "mono+stereo"
    if used_velocity is None:
        has_motion = data.get("source", "kitti") in ("kitti", "bag") and (
            data.get("source") != "bag" or bool((data.get("bag") or {}).get("odom_topic"))
        )
        used_velocity = has_motion
    metric = cfg["velocity_weight"] > 0 or cfg["odometry_scale"]
    return "self_supervised+velocity" if used_velocity and metric else "self_supervised"


class SSIM(nn.Module):
    """Per-pixel structural dissimilarity (1 - SSIM) / 2 over 3x3 windows, reflection padded, in [0,1]."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(3, 1)
        self.pad = nn.ReflectionPad2d(1)
        self.C1 = 0.01**2
        self.C2 = 0.03**2

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        x, y = self.pad(x), self.pad(y)
        # One pooling call over all five moments instead of five calls (the loss's hot spot).
        mu_x, mu_y, xx, yy, xy = self.pool(torch.cat([x, y, x * x, y * y, x * y], 1)).chunk(5, dim=1)
        sigma_x = xx - mu_x**2
        sigma_y = yy - mu_y**2
        sigma_xy = xy - mu_x * mu_y
        num = (2 * mu_x * mu_y + self.C1) * (2 * sigma_xy + self.C2)
        den = (mu_x**2 + mu_y**2 + self.C1) * (sigma_x + sigma_y + self.C2)
        return torch.clamp((1 - num / den) / 2, 0, 1)


def photometric_error(pred: Tensor, target: Tensor, ssim: SSIM, alpha: float = 0.85) -> Tensor:
    """Monodepth2's reprojection error [B,1,H,W]: alpha * SSIM term + (1 - alpha) * L1, channel mean."""
    l1 = (pred - target).abs().mean(1, keepdim=True)
    return alpha * ssim(pred, target).mean(1, keepdim=True) + (1 - alpha) * l1


def smoothness_loss(disp: Tensor, image: Tensor) -> Tensor:
    """Edge-aware first-order smoothness: |∂d| * exp(-|∂I|), mean over x and y gradients."""
    grad_disp_x = (disp[:, :, :, :-1] - disp[:, :, :, 1:]).abs()
    grad_disp_y = (disp[:, :, :-1, :] - disp[:, :, 1:, :]).abs()
    grad_img_x = (image[:, :, :, :-1] - image[:, :, :, 1:]).abs().mean(1, keepdim=True)
    grad_img_y = (image[:, :, :-1, :] - image[:, :, 1:, :]).abs().mean(1, keepdim=True)
    return (grad_disp_x * torch.exp(-grad_img_x)).mean() + (grad_disp_y * torch.exp(-grad_img_y)).mean()


def second_order_smoothness(disp: Tensor) -> Tensor:
    """SfMLearner's smoothness: mean |∂xx d| + |∂xy d| + |∂yx d| + |∂yy d| (no image edges)."""
    dx = disp[:, :, :, 1:] - disp[:, :, :, :-1]
    dy = disp[:, :, 1:, :] - disp[:, :, :-1, :]
    dxx = dx[:, :, :, 1:] - dx[:, :, :, :-1]
    dxy = dx[:, :, 1:, :] - dx[:, :, :-1, :]
    dyx = dy[:, :, :, 1:] - dy[:, :, :, :-1]
    dyy = dy[:, :, 1:, :] - dy[:, :, :-1, :]
    return dxx.abs().mean() + dxy.abs().mean() + dyx.abs().mean() + dyy.abs().mean()


def explainability_loss(
    reprojection: Tensor, explainability: Tensor, regulariser_weight: float = 0.2
) -> tuple[Tensor, Tensor]:
    """SfMLearner's masked photometric loss: (scalar loss, mean mask [B,1,H,W]).

    ``reprojection`` [B,S,H,W]: error of each warped source; ``explainability`` [B,S,H,W] in (0,1]:
    E_f per source (1 where a source has no predicted mask, e.g. the stereo partner). Loss:
    mean over sources and pixels of E_f * e_f, plus ``regulariser_weight`` * mean(-log E_f), the
    cross-entropy against "explainable" that keeps the mask from switching everything off.
    """
    photometric = (explainability * reprojection).mean()
    regulariser = -torch.log(explainability.clamp(min=1e-6)).mean()
    return photometric + regulariser_weight * regulariser, explainability.detach().mean(1, keepdim=True)


def dipe_mask(error: Tensor, lower: float = 1.0, upper: float = 0.5, unbiased: bool = False) -> Tensor:
    """DiPE's outlier band, same shape as ``error`` (float 0/1): error in (mu - lower sd, mu + upper sd).

    mu and sd per image over everything else in ``error`` ([B,1,H,W]: its pixels; [B,S,H,W]: every
    source frame's pixels pooled, as DiPE's code). ``unbiased``: DiPE's code uses the unbiased sd
    (torch's default); the pooled-min variant used the population sd. No gradient.
    """
    flat = error.detach().flatten(1)
    mu = flat.mean(1).view(-1, 1, 1, 1)
    sd = flat.std(1, unbiased=unbiased).view(-1, 1, 1, 1)
    return ((error > mu - lower * sd) & (error < mu + upper * sd)).to(error.dtype)


def without_scale_gradient(depth: Tensor) -> Tensor:
    """``depth`` [B,1,H,W] unchanged in value, with no gradient along each image's global scale.

    d * (g.detach() / g), g the image's geometric mean depth: scaling one image's depth by (1 + eps)
    leaves it unchanged to first order, so a loss on it can shape the depth but not move its scale.
    The geometric mean makes that the gradient on log depth minus its per-image mean: every pixel's
    relative change is corrected alike (an arithmetic mean would take the correction mostly from the
    near pixels, whose relative change is largest).
    """
    log_scale = depth.log().mean(dim=(1, 2, 3), keepdim=True)
    return depth * (log_scale.detach() - log_scale).exp()


def inside_image(grid: Tensor) -> Tensor:
    """[B,1,H,W] float 0/1: where a ``Project3D`` sampling grid [B,H,W,2] lands inside the source image.

    DiPE's "occlusion mask from image boundary" (Vid2Depth's principled mask): outside, border padding
    only repeats the edge, so the error there says nothing about depth or pose.
    """
    return (grid.abs() <= 1).all(-1).unsqueeze(1).to(grid.dtype)


def dipe_reprojection_loss(
    reprojection: Tensor,
    identity: Tensor | None,
    inside: Tensor | None,
    min_reprojection: bool = True,
    lower: float = 1.0,
    upper: float = 0.5,
) -> tuple[Tensor, Tensor]:
    """DiPE's photometric loss (its ``compute_losses``): (scalar loss, per-frame masks [B,S,H,W]).

    ``reprojection`` [B,S,H,W]: raw error e_f of each warped source frame; ``identity`` [B,S,H,W]:
    error of each unwarped source (auto-masking per frame; None = off); ``inside`` [B,S,H,W]: 1
    where the warp lands inside the source image (None = everywhere). Frame f's mask multiplies
    inside, e_f <= min_f' e_f' + 1e-7 (with ``min_reprojection``), e_f < identity_f and the band of
    ``dipe_mask`` over all frames' errors (unbiased sd). Loss: sum over frames of sum(mask e_f) /
    (sum(mask) + 1e-7), each sum over the whole batch as in DiPE's code.
    """
    mask = torch.ones_like(reprojection) if inside is None else inside
    if min_reprojection:
        mask = mask * (reprojection <= reprojection.min(1, keepdim=True)[0] + 1e-7)
    if identity is not None:
        mask = mask * (reprojection < identity)
    mask = (mask * dipe_mask(reprojection, lower, upper, unbiased=True)).detach()
    per_frame = (mask * reprojection).sum((0, 2, 3)) / (mask.sum((0, 2, 3)) + 1e-7)
    return per_frame.sum(), mask


def reduce_reprojection(
    reprojection: Tensor,
    identity: Tensor | None,
    min_reprojection: bool = True,
    dipe: bool = True,
    dipe_lower: float = 1.0,
    dipe_upper: float = 0.5,
) -> tuple[Tensor, Tensor]:
    """Photometric loss from per-source errors: (scalar loss, mask [B,1,H,W] of the counted pixels).

    ``reprojection`` [B,S,H,W]: error of each warped source frame; ``identity`` [B,S,H,W] (or
    [B,1,H,W]): error of the unwarped sources (auto-masking; None = off), tie-break noise included.
    Per pixel the minimum (or, ``min_reprojection`` off, the mean) over sources is taken, of both.
    Auto-masking keeps a pixel when the warped error is strictly below the identity one (Monodepth2's
    argmin over [identity, reprojection] picking a reprojection). ``dipe`` (the pooled-min variant) keeps, per
    image, minimum errors inside (mu - lower sd, mu + upper sd), population sd. With it the loss is
    the masked mean (sum / mask sum); with auto-masking alone it is exactly Monodepth2's mean over all
    pixels of min(identity, reprojection).
    """

    def over_sources(errors: Tensor) -> Tensor:
        return errors.min(1, keepdim=True)[0] if min_reprojection else errors.mean(1, keepdim=True)

    reprojection = over_sources(reprojection)
    mask = torch.ones_like(reprojection)
    best_identity = None
    if identity is not None:
        best_identity = over_sources(identity)
        mask = (reprojection < best_identity).to(reprojection.dtype)
    if dipe:
        mask = mask * dipe_mask(reprojection, dipe_lower, dipe_upper)
    elif best_identity is not None:
        # The identity part carries no gradient to depth or pose: it only keeps the scale of the loss.
        return torch.minimum(best_identity, reprojection).mean(), mask
    return (reprojection * mask).sum() / mask.sum().clamp(min=1.0), mask


def masked_reprojection_loss(reprojection: Tensor, mask: Tensor, min_reprojection: bool = True) -> Tensor:
    """Manydepth's multi-frame photometric loss: the per-pixel minimum (or mean) of ``reprojection``
    [B,S,H,W] over the sources, averaged over ``mask`` [B,1,H,W]: sum(mask e) / (sum(mask) + 1e-7)."""
    error = reprojection.min(1, keepdim=True)[0] if min_reprojection else reprojection.mean(1, keepdim=True)
    return (error * mask).sum() / (mask.sum() + 1e-7)


def student_mask(
    kind: str,
    reliable: Tensor,
    augmented: Tensor | None,
    reprojection: Tensor,
    identity: Tensor | None,
    min_reprojection: bool = True,
) -> Tensor:
    """Where the multi-frame student's photometric loss applies [B,1,h,w] (``loss.student_mask``).

    ``reliable`` [B,1,h,w]: Manydepth's reliable pixels (augmented samples already 0); ``augmented``
    [B] (1: static camera or empty cost volume); ``reprojection`` [B,S,h,w] and ``identity``
    [B,S,h,w] (None: auto-masking off, so ``automask`` keeps every pixel): the warped and the
    unwarped sources' errors.
    """
    if kind == "matching":
        return reliable
    if augmented is None:
        raise KeyError(f"loss.student_mask={kind!r} needs the model's outputs['matching_augmented']")
    kept = (1.0 - augmented.to(reliable.dtype)).view(-1, 1, 1, 1).expand_as(reliable)
    if kind == "automask" and identity is not None:
        kept = kept * reduce_reprojection(reprojection, identity, min_reprojection, dipe=False)[1]
    return kept


def consistency_loss(depth: Tensor, target: Tensor, mask: Tensor, kind: str = "absolute") -> Tensor:
    """Manydepth's consistency loss: mean over all pixels of |depth - target| * mask, ``target`` (the
    teacher's depth) without gradient; ``kind`` "log": of |log depth - log target| instead."""
    target = target.detach()
    if kind == "log":
        depth, target = depth.log(), target.log()
    return ((depth - target).abs() * mask).mean()


def velocity_loss(translations: Mapping[int, Tensor], distances: Mapping[int, Tensor]) -> Tensor | None:
    """PackNet weak velocity loss: mean of |‖t_f‖ - distance_f| over pairs with a finite distance.

    ``translations[f]`` [B,3], ``distances[f]`` [B] metres (NaN = unknown). None when no pair counts.
    """
    terms = []
    for f, t in translations.items():
        if f not in distances:
            continue
        dist = distances[f].to(t.dtype).reshape(-1)
        valid = torch.isfinite(dist)
        if valid.any():
            terms.append((torch.linalg.norm(t[valid], dim=1) - dist[valid]).abs())
    if not terms:
        return None
    return torch.cat(terms).mean()


def valid_depth(depth_gt: Tensor) -> Tensor:
    """Where ground truth counts: finite and > 0 (0 marks a pixel without a measurement)."""
    return (depth_gt > 0) & torch.isfinite(depth_gt)


def silog_loss(depth: Tensor, depth_gt: Tensor, lam: float = 0.5) -> Tensor | None:
    """Eigen et al.'s scale-invariant log loss [B,1,H,W] -> scalar; None when no pixel is valid.

    Per image, over its n valid pixels: D = 1/n sum d_i^2 - lam/n^2 (sum d_i)^2, d_i = log y_i -
    log y*_i; images averaged (those without valid pixels left out). lam = 1 is the scale-invariant
    error exactly, lam = 0 the L2 of log depth; the paper trains with 0.5 ("the average of these").
    BTS trains 10 sqrt(D) with lam = 0.85, a variant not offered here.
    """
    valid = valid_depth(depth_gt)
    # Both logs of 1 where there is no truth: d = 0 there, and no inf/NaN in values or gradients.
    d = torch.log(torch.where(valid, depth, 1.0)) - torch.log(torch.where(valid, depth_gt, 1.0))
    d = d.flatten(1)
    n = valid.flatten(1).sum(1)
    counted = n > 0
    if not counted.any():
        return None
    n = n[counted]
    per_image = (d[counted] ** 2).sum(1) / n - lam * (d[counted].sum(1) / n) ** 2
    return per_image.mean()


def densedepth_loss(
    depth: Tensor,
    depth_gt: Tensor,
    ssim: SSIM,
    min_depth: float,
    max_depth: float,
    lam: float = 0.1,
) -> Tensor | None:
    """DenseDepth's L = lam L_depth + L_grad + L_SSIM [B,1,H,W] -> scalar; None when no pixel is valid.

    As DenseDepth's code, on the normalised inverse depth y = max_depth / depth (its ``DepthNorm``;
    its NYU run: 10 m / depth in [1, 100]): L_depth = mean |y - y*|; L_grad = sum of |dx y - dx y*|
    and |dy y - dy y*| over neighbour pairs divided by the pixel count (TF's image_gradients with
    its zero last row/column); L_SSIM = mean (1 - SSIM(y, y*)) / 2 in [0, 1], with SSIM's constants
    for the range L = max_depth / min_depth (computed as SSIM(y/L, y*/L) with unit-range constants,
    the same number). The SSIM is this module's 3x3 one (Monodepth2's), not DenseDepth's 11x11
    Gaussian: one SSIM in the code base, and a small window keeps more of a target with holes.
    Invalid target pixels (0/NaN) are masked: L_depth over valid pixels, L_grad over pairs of two
    valid pixels divided by the valid count, L_SSIM over pixels whose whole 3x3 window is valid
    (term left out when none is).
    """
    valid = valid_depth(depth_gt)
    if not valid.any():
        return None
    mask = valid.to(depth.dtype)
    # Both maps 0 where there is no truth (finite values and gradients whatever is there).
    y = torch.where(valid, max_depth / torch.where(valid, depth, 1.0), 0.0)
    y_gt = torch.where(valid, max_depth / torch.where(valid, depth_gt, 1.0), 0.0)
    n = mask.sum()
    l_depth = ((y - y_gt).abs() * mask).sum() / n
    grad_x = (y.diff(dim=3) - y_gt.diff(dim=3)).abs() * (mask[..., 1:] * mask[..., :-1])
    grad_y = (y.diff(dim=2) - y_gt.diff(dim=2)).abs() * (mask[..., 1:, :] * mask[..., :-1, :])
    l_grad = (grad_x.sum() + grad_y.sum()) / n
    # A window counts only where all its 9 target pixels are valid (a 3x3 min-pool of the mask).
    window = -F.max_pool2d(-ssim.pad(mask), 3, 1)
    total = lam * l_depth + l_grad
    if window.sum() > 0:
        scale = max_depth / min_depth
        total = total + (ssim(y / scale, y_gt / scale) * window).sum() / window.sum()
    return total


def ranking_loss(depth: Tensor, pairs: Tensor, relation: Tensor) -> Tensor | None:
    """Chen et al.'s ranking loss on ordinal point pairs -> scalar; None when no pair counts.

    ``depth`` [B,1,H,W]; ``pairs`` [B,P,4]: (x_a, y_a, x_b, y_b) pixel coordinates at ``depth``'s
    resolution (x right, y down, pixel centres at integers, so inside [-0.5, W - 0.5] x [-0.5,
    H - 0.5]; rows with a non-finite coordinate are padding and skipped); ``relation`` [B,P]: +1 a
    farther than b, -1 a nearer, 0 equal. A point outside the map is refused rather than clamped:
    it means coordinates of another resolution or in (y, x) order. Per pair, with z = log depth
    sampled at the points: log(1 + exp(-r (z_a - z_b))) for r != 0 and (z_a - z_b)^2 for r = 0;
    mean over pairs.

    Sign convention as the authors' code (``relative_depth.lua``, DIW '>' = +1, correct where
    (z_a - z_b) r > 0 with z their depth output). Their z is the network's raw depth; here it is
    log depth: the same order, but the loss no longer depends on the scene's scale, which ordinal
    labels cannot know, and the equal-pair term penalises ratios rather than metres. Depth is
    sampled bilinearly (exactly the pixel at integer coordinates, as the authors index it), so
    sub-pixel points scaled from another resolution still get a smooth gradient.
    """
    if pairs.dim() != 3 or pairs.shape[-1] != 4 or relation.shape != pairs.shape[:2]:
        shapes = f"{tuple(pairs.shape)} and {tuple(relation.shape)}"
        raise ValueError(f"pairs/relation: expected [B,P,4] and [B,P], got {shapes}")
    if pairs.shape[0] != depth.shape[0]:
        raise ValueError(f"pairs: {pairs.shape[0]} images of pairs for {depth.shape[0]} depth maps")
    counted = torch.isfinite(pairs).all(-1)
    if not counted.any():
        return None
    height, width = depth.shape[-2:]
    points = pairs.nan_to_num(0.0).view(pairs.shape[0], -1, 2, 2).to(depth.dtype)
    if ((points < -0.5) | (points > points.new_tensor([width - 0.5, height - 0.5]))).any():
        raise ValueError(
            f"pairs: a point lies outside the {width}x{height} depth map (expected (x, y) pixels)"
        )
    # grid_sample's align_corners=True maps -1 and 1 to the centres of the first and last pixel
    # (the half-pixel margin beyond them reads the border pixel).
    size = points.new_tensor([max(width - 1, 1), max(height - 1, 1)])
    grid = points / size * 2 - 1
    z = F.grid_sample(torch.log(depth), grid, mode="bilinear", padding_mode="border", align_corners=True)
    diff = z[:, 0, :, 0] - z[:, 0, :, 1]
    r = relation.to(depth.dtype)
    per_pair = torch.where(r != 0, F.softplus(-r * diff), diff**2)  # softplus(x) = log(1 + e^x)
    return per_pair[counted].mean()


def depth_supervision_loss(
    depth: Tensor,
    depth_gt: Tensor,
    kind: str = "log_l1",
    *,
    silog_lambda: float = 0.5,
    densedepth_lambda: float = 0.1,
    min_depth: float = 0.1,
    max_depth: float = 100.0,
    ssim: SSIM | None = None,
) -> Tensor | None:
    """Depth loss ``kind`` (``DEPTH_LOSSES``) where ``depth_gt`` > 0 (and finite). None when no pixel
    is valid. ``silog_lambda``: silog's lam; ``densedepth_lambda``, ``min_depth``, ``max_depth``,
    ``ssim``: densedepth's lam, depth range (the loss config's) and SSIM module."""
    if kind == "silog":
        return silog_loss(depth, depth_gt, silog_lambda)
    if kind == "densedepth":
        return densedepth_loss(depth, depth_gt, ssim or SSIM(), min_depth, max_depth, densedepth_lambda)
    valid = valid_depth(depth_gt)
    if not valid.any():
        return None
    pred, gt = depth[valid], depth_gt[valid]
    if kind == "log_l1":
        return (torch.log(pred) - torch.log(gt)).abs().mean()
    if kind == "abs_rel":
        return ((pred - gt).abs() / gt).mean()
    raise ValueError(f"unknown depth loss {kind!r}; expected one of {DEPTH_LOSSES}")


@dataclass
class ScaleImages:
    """The frames at one resolution: what the photometric loss of a scale warps and compares.

    ``target`` [B,3,h,w]; ``sources`` per source frame; ``K``/``inv_K`` [B,4,4] scaled to (h, w);
    ``identity``: error of the unwarped sources, [B,S,h,w] (or [B,1,h,w] when averaging), None
    without auto-masking.
    """

    target: Tensor
    sources: dict[int | str, Tensor]
    K: Tensor
    inv_K: Tensor
    identity: Tensor | None = None


def downsample_area(image: Tensor, size: Sequence[int]) -> Tensor:
    """``image`` [B,C,H,W] area-downsampled to ``size`` (h, w); unchanged when it already has it."""
    return image if tuple(image.shape[-2:]) == tuple(size) else F.interpolate(image, tuple(size), mode="area")


@dataclass
class LossDiagnostics:
    """What one evaluation of ``SelfSupervisedLoss`` reports besides the loss (logging, validation).

    ``stats``: Python floats (the loss terms, ``mask_fraction``, ``median_depth``, ...); ``depth``:
    per scale s, depth [B,1,H,W] at input resolution; ``warped``: per source frame f, the scale-0
    warped image [B,3,H,W]; ``mask``: the scale-0 loss mask [B,1,H,W] (None when supervised).
    Tensors are detached.
    """

    stats: dict[str, float] = field(default_factory=dict)
    depth: dict[int, Tensor] = field(default_factory=dict)
    warped: dict[int | str, Tensor] = field(default_factory=dict)
    mask: Tensor | None = None


class SelfSupervisedLoss(nn.Module):
    """``forward(batch, outputs) -> (loss, LossDiagnostics)``; see the module docstring, ``DEFAULT_LOSS_CFG``.

    ``outputs`` holds ``("disp", s)`` for the scales and, for the photometric loss,
    ``("cam_T_cam", 0, f)`` for each source frame f (``training.networks.predict_poses`` makes
    them); the source frames are the f of those keys. ``outputs`` is only read.
    """

    def __init__(self, cfg: Mapping[str, Any] | None, height: int, width: int) -> None:
        super().__init__()
        self.cfg = loss_config(cfg)
        self.height, self.width = height, width
        self.ssim = SSIM()
        self.backproject = BackprojectDepth(height, width)
        self.project = Project3D(height, width)
        # Per-resolution view-synthesis geometry for multiscale dipe_weighted / own_resolution, built on
        # first use.
        self._geometry: dict[tuple[int, int, torch.device], tuple[BackprojectDepth, Project3D]] = {}

    def photometric(self, pred: Tensor, target: Tensor) -> Tensor:
        return photometric_error(pred, target, self.ssim, self.cfg["ssim_weight"])

    def forward(
        self, batch: Mapping[Any, Tensor], outputs: Mapping[Any, Tensor]
    ) -> tuple[Tensor, LossDiagnostics]:
        # Always float32, also under the trainer's mixed precision: in fp16, pixel coordinates of a
        # 640-wide image are off by up to a quarter pixel, and SSIM's variances lose their precision.
        device_type = batch[("color", 0, 0)].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return self._forward(batch, outputs)

    def _forward(
        self, batch: Mapping[Any, Tensor], outputs: Mapping[Any, Tensor]
    ) -> tuple[Tensor, LossDiagnostics]:
        cfg = self.cfg
        supervised = cfg["mode"] == "supervised"
        scales, source_ids = self._scales_and_sources(batch, outputs)
        target = batch[("color", 0, 0)]
        diagnostics = LossDiagnostics()
        # Detached per-scale terms, turned into floats once at the end (one GPU sync, not one per term).
        parts: dict[str, list[Tensor]] = {"photometric": [], "smoothness": [], "depth_sup": [], "ranking": []}
        images: dict[tuple[int, int], ScaleImages] = {}  # per resolution: one for full_resolution
        total = target.new_zeros(())
        for s in scales:
            total = total + self._scale_loss(batch, outputs, s, source_ids, images, parts, diagnostics)
        total = total / len(scales)

        if not supervised and cfg["velocity_weight"] > 0:
            v_loss = self._velocity_term(batch, outputs, source_ids)
            if v_loss is not None:
                total = total + cfg["velocity_weight"] * v_loss
                parts["velocity"] = [v_loss.detach()]
        translations = [
            outputs[("translation", 0, f)] for f in source_ids if ("translation", 0, f) in outputs
        ]
        if translations:
            parts["translation_norm"] = [torch.linalg.norm(torch.cat(translations).detach(), dim=1).mean()]
        parts["median_depth"] = [diagnostics.depth[scales[0]].median()]
        parts["loss"] = [total.detach()]
        for name, values in parts.items():
            if values:
                diagnostics.stats[name] = float(torch.stack(values).mean())
        if supervised:
            diagnostics.stats["photometric"] = diagnostics.stats["smoothness"] = 0.0
        return total, diagnostics

    def _scales_and_sources(
        self, batch: Mapping[Any, Tensor], outputs: Mapping[Any, Tensor]
    ) -> tuple[list[int], list[int | str]]:
        """The disparity scales and the source frames in ``outputs``; refuses what the mode cannot use."""
        scales = sorted(key[1] for key in outputs if isinstance(key, tuple) and key[0] == "disp")
        if not scales:
            raise KeyError("outputs carry no ('disp', s) entries")
        supervised = self.cfg["mode"] == "supervised"
        sources = [key[2] for key in outputs if isinstance(key, tuple) and key[:2] == ("cam_T_cam", 0)]
        # Video frames in order, then the stereo partner "s" (as Monodepth2's frame_ids).
        source_ids = sorted(f for f in sources if f != "s") + [f for f in sources if f == "s"]
        if not supervised and not source_ids:
            raise KeyError("self-supervised loss needs ('cam_T_cam', 0, f) outputs (see predict_poses)")
        has_pairs = batch.get("pairs") is not None and self.cfg["ranking_weight"] > 0
        if supervised and batch.get("depth_gt") is None and not has_pairs:
            raise KeyError("loss.mode=supervised needs batch['depth_gt'] or ordinal batch['pairs']")
        if batch.get("pairs") is not None and batch.get("relation") is None:
            raise KeyError("batch['pairs'] needs batch['relation'] (+1 farther, -1 nearer, 0 equal)")
        return scales, source_ids

    def _images_at(
        self, batch: Mapping[Any, Tensor], source_ids: Sequence[int | str], size: tuple[int, int]
    ) -> ScaleImages:
        """The frames, intrinsics and identity errors at ``size`` (h, w) (area-downsampled, K scaled)."""
        cfg = self.cfg
        target = batch[("color", 0, 0)]
        K, inv_K = batch["K"].float(), batch["inv_K"].float()
        if tuple(target.shape[-2:]) != size:
            # The one intrinsics scaling (depth_node.geometry) as a matrix S: K_s = S K.
            full = (target.shape[-1], target.shape[-2])
            S = K.new_tensor(scale_intrinsics(np.eye(4), full, (size[1], size[0])))
            K, inv_K = S @ K, inv_K @ torch.linalg.inv(S)
        images = ScaleImages(
            downsample_area(target, size),
            {f: downsample_area(batch[("color", f, 0)], size) for f in source_ids},
            K,
            inv_K,
        )
        if cfg["automask"] and cfg["masking"] != "explainability":
            identity = torch.cat([self.photometric(images.sources[f], images.target) for f in source_ids], 1)
            if cfg["masking"] == "monodepth2":
                # Tie-break so that a perfectly static pixel is not ambiguously masked (Monodepth2;
                # DiPE's code adds none).
                identity = identity + torch.randn_like(identity) * cfg["automask_noise"]
            images.identity = identity
        return images

    def _warp_geometry(
        self, size: tuple[int, int], device: torch.device
    ) -> tuple[BackprojectDepth, Project3D]:
        """The view-synthesis layers for depth maps of ``size`` (h, w), built once per size and device."""
        if size == (self.height, self.width):
            return self.backproject, self.project
        key = (*size, device)
        if key not in self._geometry:
            self._geometry[key] = (BackprojectDepth(*size).to(device), Project3D(*size))
        return self._geometry[key]

    def _scale_loss(
        self,
        batch: Mapping[Any, Tensor],
        outputs: Mapping[Any, Tensor],
        s: int,
        source_ids: Sequence[int | str],
        images: dict[tuple[int, int], ScaleImages],
        parts: dict[str, list[Tensor]],
        diagnostics: LossDiagnostics,
    ) -> Tensor:
        """Depth supervision, ranking, photometric and smoothness terms of scale ``s`` (into ``parts``).

        ``images``: the frames per resolution, filled on first use.
        """
        cfg = self.cfg
        supervised = cfg["mode"] == "supervised"
        target = batch[("color", 0, 0)]
        disp = outputs[("disp", s)].float()
        disp_full = disp
        if disp.shape[-2:] != (self.height, self.width):
            disp_full = F.interpolate(disp, (self.height, self.width), mode="bilinear", align_corners=False)
        depth = disp_to_depth(disp_full, cfg["min_depth"], cfg["max_depth"])[1]
        diagnostics.depth[s] = depth.detach()
        scale_loss = target.new_zeros(())

        supervised_terms = 0
        depth_gt = batch.get("depth_gt")
        if depth_gt is not None and (supervised or cfg["depth_weight"] > 0):
            d_loss = depth_supervision_loss(
                depth,
                depth_gt,
                cfg["depth_loss"],
                silog_lambda=cfg["silog_lambda"],
                densedepth_lambda=cfg["densedepth_lambda"],
                min_depth=cfg["min_depth"],
                max_depth=cfg["max_depth"],
                ssim=self.ssim,
            )
            if d_loss is not None:
                weight = 1.0 if supervised else cfg["depth_weight"]
                scale_loss = scale_loss + weight * d_loss
                parts["depth_sup"].append(d_loss.detach())
                supervised_terms += 1
        if batch.get("pairs") is not None and cfg["ranking_weight"] > 0:
            r_loss = ranking_loss(depth, batch["pairs"].float(), batch["relation"])
            if r_loss is not None:
                scale_loss = scale_loss + cfg["ranking_weight"] * r_loss
                parts["ranking"].append(r_loss.detach())
                supervised_terms += 1
        if supervised and not supervised_terms:
            # No valid ground truth or pair in this batch: a zero loss that still has a graph, so
            # the trainer's backward() works.
            scale_loss = scale_loss + 0.0 * disp.sum()

        if not supervised:
            # full_resolution: this scale's depth upsampled to the input (Monodepth2); dipe_weighted:
            # warped at the disparity's own resolution and weighted 0.25^s (DiPE); own_resolution: the
            # same at weight 1 (Monodepth).
            own_resolution = cfg["multiscale"] in ("dipe_weighted", "own_resolution")
            photo_weight = DIPE_SCALE_RATE**s if cfg["multiscale"] == "dipe_weighted" else 1.0
            size = tuple(disp.shape[-2:]) if own_resolution else (self.height, self.width)
            if size not in images:
                images[size] = self._images_at(batch, source_ids, size)
            photo_depth = (
                disp_to_depth(disp, cfg["min_depth"], cfg["max_depth"])[1] if own_resolution else depth
            )
            photo, mask, warped = self._photometric_term(outputs, images[size], photo_depth, source_ids)
            teacher_disp = outputs.get(("consistency_disp", s))
            if teacher_disp is not None and cfg["consistency"] != "none":
                # Manydepth's student: the teacher's depth where the mask is 0.
                teacher_disp = teacher_disp.float()
                if teacher_disp.shape[-2:] != photo_depth.shape[-2:]:
                    teacher_disp = F.interpolate(teacher_disp, size, mode="bilinear", align_corners=False)
                teacher_depth = disp_to_depth(teacher_disp, cfg["min_depth"], cfg["max_depth"])[1]
                consistency = consistency_loss(photo_depth, teacher_depth, 1.0 - mask, cfg["consistency"])
                scale_loss = scale_loss + consistency
                parts.setdefault("consistency", []).append(consistency.detach())
            if s == 0:
                diagnostics.warped = {f: image.detach() for f, image in warped.items()}
                diagnostics.mask = mask.detach()
                diagnostics.stats["mask_fraction"] = float(mask.mean())
            scale_loss = scale_loss + photo_weight * photo
            parts["photometric"].append(photo.detach())
            # Smoothness at the disparity's own resolution, against the image at that size.
            mean_disp = disp.mean(dim=(2, 3), keepdim=True)
            color = downsample_area(target, disp.shape[-2:])
            if cfg["smoothness"] == "second_order":
                smooth = second_order_smoothness(disp / (mean_disp + 1e-7))
            else:
                smooth = smoothness_loss(disp / (mean_disp + 1e-7), color)
            scale_loss = scale_loss + cfg["smoothness_weight"] / (2**s) * smooth
            parts["smoothness"].append(smooth.detach())
        return scale_loss

    def _photometric_term(
        self,
        outputs: Mapping[Any, Tensor],
        images: ScaleImages,
        depth: Tensor,
        source_ids: Sequence[int | str],
    ) -> tuple[Tensor, Tensor, dict[int | str, Tensor]]:
        """(loss, mask [B,1,h,w] of the counted pixels, warped sources) for a depth at ``images``' size.

        With ``masking: dipe`` the mask is the union of the per-frame masks (a pixel counted in any frame).
        """
        cfg = self.cfg
        backproject, project = self._warp_geometry(tuple(depth.shape[-2:]), depth.device)
        separate_stereo = (
            cfg["masking"] == "monodepth2"
            and "reprojection_mask" not in outputs
            and cfg["stereo"] == "separate"
            and "s" in source_ids
            and len(source_ids) > 1
        )
        video_depth = depth
        if separate_stereo and cfg["stereo_scale"] == "baseline":
            video_depth = without_scale_gradient(depth)
        warped: dict[int | str, Tensor] = {}
        errors, inside = [], []
        for f in source_ids:
            cam_T_cam = outputs[("cam_T_cam", 0, f)].float()
            warped[f] = warp_image(
                images.sources[f],
                depth if f == "s" else video_depth,
                cam_T_cam,
                images.K,
                images.inv_K,
                backproject,
                project,
            )
            errors.append(self.photometric(warped[f], images.target))
            if cfg["masking"] == "dipe":
                # The same grid warp_image sampled with (recomputed: the warp stays in one place).
                inside.append(inside_image(project(backproject(depth, images.inv_K), images.K, cam_T_cam)))
        if "reprojection_mask" in outputs:  # Manydepth's student: its mask replaces every other
            reliable = F.interpolate(outputs["reprojection_mask"].float(), depth.shape[-2:], mode="nearest")
            reprojection = torch.cat(errors, 1)
            mask = student_mask(
                cfg["student_mask"],
                reliable,
                outputs.get("matching_augmented"),
                reprojection,
                images.identity,
                cfg["min_reprojection"],
            )
            loss = masked_reprojection_loss(reprojection, mask, cfg["min_reprojection"])
            return loss, mask, warped
        if cfg["masking"] == "explainability":
            ones = torch.ones_like(errors[0])
            masks = [
                downsample_area(outputs.get(("explainability", 0, f), ones).float(), depth.shape[-2:])
                for f in source_ids
            ]
            loss, mask = explainability_loss(
                torch.cat(errors, 1), torch.cat(masks, 1), cfg["explainability_weight"]
            )
            return loss, mask, warped
        if cfg["masking"] == "dipe":
            loss, masks = dipe_reprojection_loss(
                torch.cat(errors, 1),
                images.identity,
                torch.cat(inside, 1),
                min_reprojection=cfg["min_reprojection"],
                lower=cfg["dipe_lower"],
                upper=cfg["dipe_upper"],
            )
            return loss, masks.amax(1, keepdim=True), warped
        reduce = partial(
            reduce_reprojection,
            min_reprojection=cfg["min_reprojection"],
            dipe=cfg["dipe_pooled_min"],
            dipe_lower=cfg["dipe_lower"],
            dipe_upper=cfg["dipe_upper"],
        )
        if separate_stereo:
            # The stereo partner is last (``_scales_and_sources``), in the errors and the identity.
            identity = images.identity
            video_loss, video_mask = reduce(
                torch.cat(errors[:-1], 1), None if identity is None else identity[:, :-1]
            )
            stereo_loss, stereo_mask = reduce(errors[-1], None if identity is None else identity[:, -1:])
            return (video_loss + stereo_loss) / 2, torch.maximum(video_mask, stereo_mask), warped
        loss, mask = reduce(torch.cat(errors, 1), images.identity)
        return loss, mask, warped

    def _velocity_term(
        self, batch: Mapping[Any, Tensor], outputs: Mapping[Any, Tensor], source_ids: Sequence[int | str]
    ) -> Tensor | None:
        translations = {
            f: outputs[("translation", 0, f)].float() for f in source_ids if ("translation", 0, f) in outputs
        }
        distances = {f: batch[("distance", f)] for f in source_ids if ("distance", f) in batch}
        return velocity_loss(translations, distances) if distances else None


class ManydepthLoss(nn.Module):
    """Manydepth's training loss (``training.networks.ManyDepthModel``'s outputs): the student's
    (``criterion`` with its reprojection mask and consistency target) plus, while the teacher trains
    (its outputs under ``("teacher", *key)``), the teacher's own ``criterion`` loss.

    The diagnostics are the student's; the teacher's stats join them as ``teacher_<name>``, and
    ``loss`` is the sum.
    """

    def __init__(self, criterion: SelfSupervisedLoss) -> None:
        super().__init__()
        self.criterion = criterion

    def forward(
        self, batch: Mapping[Any, Tensor], outputs: Mapping[Any, Tensor]
    ) -> tuple[Tensor, LossDiagnostics]:
        is_teacher = {key: isinstance(key, tuple) and key[0] == "teacher" for key in outputs}
        student = {key: value for key, value in outputs.items() if not is_teacher[key]}
        loss, diagnostics = self.criterion(batch, student)
        teacher = {key[1:]: value for key, value in outputs.items() if is_teacher[key]}
        if teacher:
            teacher_loss, teacher_diagnostics = self.criterion(batch, teacher)
            loss = loss + teacher_loss
            stats = teacher_diagnostics.stats
            diagnostics.stats.update({f"teacher_{name}": value for name, value in stats.items()})
            diagnostics.stats["loss"] += stats["loss"]
        return loss, diagnostics
