"""Self-supervised (and optionally supervised) depth losses.

Monodepth2 (Godard et al., ICCV 2019): SSIM+L1 photometric error (alpha 0.85), per-pixel minimum
reprojection over the source frames, auto-masking of pixels where the unwarped source already
matches better (stationary camera, objects moving with the car), all scales upsampled to the input
resolution, edge-aware smoothness on mean-normalised disparity (weight 1e-3 / 2^scale).

DiPE (Jiang et al., 2020) outlier masking: per image, only pixels whose minimum reprojection error
lies in (mu - 1.0 sigma, mu + 0.5 sigma) of that image's errors count; the large errors are mostly
occlusions and independently moving objects. The masked loss is normalised by the mask's sum.

SfMLearner (Zhou et al., CVPR 2017) explainability mask, ``masking: explainability``: each source
frame's error is weighted per pixel by a soft mask E_f that the pose net predicts, averaged over
sources (no minimum, no auto-masking: SfMLearner had neither), plus lambda_e * cross-entropy of E_f
against "explainable" (1), lambda_e = 0.2 as in the paper; its second-order smoothness
(|d_xx| + |d_xy| + |d_yx| + |d_yy|) is ``smoothness: second_order``.

Stereo (Monodepth2's S and MS): the stereo partner is one more source frame, ``"s"``, whose pose is
the calibration's (``("cam_T_cam", 0, "s")``); minimum reprojection and auto-masking treat it like
any other source.

PackNet-SfM (Guizilini et al., CVPR 2020) weak velocity supervision: |‖t_pred‖ - distance| over the
frame pairs whose travelled distance is known, which makes the depth metric.

Optional sparse depth supervision (LiDAR / ground truth, 0 = invalid) and a purely supervised mode.

Usage in the trainer::

    outputs = model(batch)                          # training.networks.DepthPoseModel
    loss, diagnostics = criterion(batch, outputs)   # criterion = SelfSupervisedLoss(cfg, H, W)
    diagnostics.stats                               # floats for the loss log; also depth, warped, mask
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.geometry import BackprojectDepth, Project3D, disp_to_depth, warp_image

# The trainer's YAML ``loss:`` section mirrors these keys; missing keys take these values.
DEFAULT_LOSS_CFG: dict[str, Any] = {
    "mode": "self_supervised",  # self_supervised | supervised (depth loss only, needs batch["depth_gt"])
    "min_depth": 0.1,  # disp_to_depth range: must equal the model's (the trainer copies model.min/max_depth)
    "max_depth": 100.0,
    "ssim_weight": 0.85,  # alpha of SSIM vs L1
    "min_reprojection": True,  # per-pixel minimum over source frames (False: average, Monodepth2 --avg)
    "automask": True,
    "automask_noise": 1.0e-5,  # tie-break noise on the identity error (Monodepth2)
    "smoothness_weight": 1.0e-3,  # divided by 2^scale
    "dipe": True,  # DiPE outlier masking
    "dipe_lower": 1.0,  # keep errors > mu - dipe_lower * sigma
    "dipe_upper": 0.5,  # keep errors < mu + dipe_upper * sigma
    # monodepth2: minimum reprojection / auto-masking / DiPE as set above; explainability:
    # SfMLearner's predicted mask instead of all three (the trainer adds the mask to the pose net).
    "masking": "monodepth2",
    "explainability_weight": 0.2,  # lambda_e of SfMLearner's mask regulariser
    "smoothness": "edge_aware",  # edge_aware (Monodepth2) | second_order (SfMLearner)
    "velocity_weight": 0.1,  # PackNet weak velocity supervision; applied when batch has finite distances
    # Warp with the pose net's translation rescaled to the travelled distance where it is known (the
    # pose net then only has to get the direction right; see training.networks.predict_poses, which
    # applies it). Off: Monodepth2/PackNet.
    "odometry_scale": False,
    "depth_weight": 0.0,  # sparse depth supervision next to the photometric loss (0: off)
    "depth_loss": "log_l1",  # log_l1 (|log d - log gt|) | abs_rel (|d - gt| / gt)
}
DEPTH_LOSSES = ("log_l1", "abs_rel")
MASKINGS = ("monodepth2", "explainability")
SMOOTHNESS = ("edge_aware", "second_order")
# The training modes (``training_mode``) whose depth is in metres: scored without scaling by
# depth-eval, exported with ``scale_is_metric=true``. Stereo: the baseline is in metres.
METRIC_TRAINING_MODES = ("self_supervised+velocity", "lidar", "supervised", "stereo", "mono+stereo")


def loss_config(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """``DEFAULT_LOSS_CFG`` overridden by ``cfg``; refuses unknown keys (a typo must not pass silently)."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULT_LOSS_CFG))
    if unknown:
        raise ValueError(f"unknown loss config keys {unknown}; known: {sorted(DEFAULT_LOSS_CFG)}")
    out = {**DEFAULT_LOSS_CFG, **cfg}
    if out["mode"] not in ("self_supervised", "supervised"):
        raise ValueError(f"loss.mode={out['mode']!r}: expected self_supervised or supervised")
    if out["depth_loss"] not in DEPTH_LOSSES:
        raise ValueError(f"loss.depth_loss={out['depth_loss']!r}: expected one of {DEPTH_LOSSES}")
    if out["masking"] not in MASKINGS:
        raise ValueError(f"loss.masking={out['masking']!r}: expected one of {MASKINGS}")
    if out["smoothness"] not in SMOOTHNESS:
        raise ValueError(f"loss.smoothness={out['smoothness']!r}: expected one of {SMOOTHNESS}")
    return out


def training_mode(config: Mapping[str, Any], used_velocity: bool | None = None) -> str:
    """The model's ``training_mode`` metadata from a training config.

    supervised | lidar (photometric + sparse depth) | stereo | mono+stereo (``data.modality`` S, MS)
    | self_supervised+velocity | self_supervised. ``used_velocity``: whether training batches really
    carried distances (the data decides); None assumes they did when ``velocity_weight`` > 0 and
    the data source can provide them.
    """
    cfg = loss_config(config.get("loss"))
    data = config.get("data", {}) or {}
    if cfg["mode"] == "supervised":
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


def dipe_mask(error: Tensor, lower: float = 1.0, upper: float = 0.5) -> Tensor:
    """DiPE outlier mask [B,1,H,W] (float 0/1): per image, error inside (mu - lower sd, mu + upper sd).

    Statistics over all pixels of each image (population standard deviation), no gradient.
    """
    flat = error.detach().flatten(1)
    mu = flat.mean(1).view(-1, 1, 1, 1)
    sd = flat.std(1, unbiased=False).view(-1, 1, 1, 1)
    return ((error > mu - lower * sd) & (error < mu + upper * sd)).to(error.dtype)


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
    Per pixel the minimum (or mean) over sources is taken. Auto-masking keeps a pixel when the
    warped error is strictly below every identity error (Monodepth2's argmin over
    [identity, reprojection] picking a reprojection). DiPE keeps, per image, errors inside
    (mu - lower sd, mu + upper sd). With DiPE the loss is the masked mean (sum / mask sum); with
    auto-masking alone it is exactly Monodepth2's mean over all pixels of min(identity, reprojection).
    """
    if min_reprojection:
        reprojection = reprojection.min(1, keepdim=True)[0]
    else:
        reprojection = reprojection.mean(1, keepdim=True)
    mask = torch.ones_like(reprojection)
    best_identity = None
    if identity is not None:
        best_identity = identity.min(1, keepdim=True)[0]
        mask = (reprojection < best_identity).to(reprojection.dtype)
    if dipe:
        mask = mask * dipe_mask(reprojection, dipe_lower, dipe_upper)
    elif best_identity is not None:
        # The identity part carries no gradient to depth or pose: it only keeps the scale of the loss.
        return torch.minimum(best_identity, reprojection).mean(), mask
    return (reprojection * mask).sum() / mask.sum().clamp(min=1.0), mask


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


def depth_supervision_loss(depth: Tensor, depth_gt: Tensor, kind: str = "log_l1") -> Tensor | None:
    """Sparse depth loss where ``depth_gt`` > 0 (and finite). None when no pixel is valid."""
    valid = (depth_gt > 0) & torch.isfinite(depth_gt)
    if not valid.any():
        return None
    pred, gt = depth[valid], depth_gt[valid]
    if kind == "log_l1":
        return (torch.log(pred) - torch.log(gt)).abs().mean()
    if kind == "abs_rel":
        return ((pred - gt).abs() / gt).mean()
    raise ValueError(f"unknown depth loss {kind!r}; expected one of {DEPTH_LOSSES}")


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
        parts: dict[str, list[Tensor]] = {"photometric": [], "smoothness": [], "depth_sup": []}
        identity = None
        if not supervised and cfg["automask"] and cfg["masking"] == "monodepth2":
            identity = self._identity_error(batch, source_ids)

        total = target.new_zeros(())
        for s in scales:
            total = total + self._scale_loss(batch, outputs, s, source_ids, identity, parts, diagnostics)
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
        if supervised and batch.get("depth_gt") is None:
            raise KeyError("loss.mode=supervised needs batch['depth_gt']")
        return scales, source_ids

    def _identity_error(self, batch: Mapping[Any, Tensor], source_ids: Sequence[int | str]) -> Tensor:
        """Error of the unwarped source frames (auto-masking); it does not depend on the scale."""
        target = batch[("color", 0, 0)]
        identity = torch.cat([self.photometric(batch[("color", f, 0)], target) for f in source_ids], 1)
        if not self.cfg["min_reprojection"]:
            identity = identity.mean(1, keepdim=True)
        # Tie-break so that a perfectly static pixel is not ambiguously masked (Monodepth2).
        return identity + torch.randn_like(identity) * self.cfg["automask_noise"]

    def _scale_loss(
        self,
        batch: Mapping[Any, Tensor],
        outputs: Mapping[Any, Tensor],
        s: int,
        source_ids: Sequence[int | str],
        identity: Tensor | None,
        parts: dict[str, list[Tensor]],
        diagnostics: LossDiagnostics,
    ) -> Tensor:
        """Depth supervision, photometric and smoothness terms of scale ``s`` (terms go to ``parts``)."""
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

        depth_gt = batch.get("depth_gt")
        if depth_gt is not None and (supervised or cfg["depth_weight"] > 0):
            d_loss = depth_supervision_loss(depth, depth_gt, cfg["depth_loss"])
            if d_loss is not None:
                weight = 1.0 if supervised else cfg["depth_weight"]
                scale_loss = scale_loss + weight * d_loss
                parts["depth_sup"].append(d_loss.detach())
            elif supervised:
                # No valid ground truth in this batch: a zero loss that still has a graph, so
                # the trainer's backward() works.
                scale_loss = scale_loss + 0.0 * disp.sum()

        if not supervised:
            photo, mask, warped = self._photometric_term(batch, outputs, depth, source_ids, identity)
            if s == 0:
                diagnostics.warped = {f: image.detach() for f, image in warped.items()}
                diagnostics.mask = mask.detach()
                diagnostics.stats["mask_fraction"] = float(mask.mean())
            scale_loss = scale_loss + photo
            parts["photometric"].append(photo.detach())
            # Smoothness at the disparity's own resolution, against the image at that size.
            mean_disp = disp.mean(dim=(2, 3), keepdim=True)
            color = target
            if disp.shape[-2:] != target.shape[-2:]:
                color = F.interpolate(target, disp.shape[-2:], mode="area")
            if cfg["smoothness"] == "second_order":
                smooth = second_order_smoothness(disp / (mean_disp + 1e-7))
            else:
                smooth = smoothness_loss(disp / (mean_disp + 1e-7), color)
            scale_loss = scale_loss + cfg["smoothness_weight"] / (2**s) * smooth
            parts["smoothness"].append(smooth.detach())
        return scale_loss

    def _photometric_term(
        self,
        batch: Mapping[Any, Tensor],
        outputs: Mapping[Any, Tensor],
        depth: Tensor,
        source_ids: Sequence[int | str],
        identity: Tensor | None,
    ) -> tuple[Tensor, Tensor, dict[int | str, Tensor]]:
        """(loss, mask of the counted pixels, warped source images) for one scale's full-size depth."""
        cfg = self.cfg
        target = batch[("color", 0, 0)]
        K, inv_K = batch["K"].float(), batch["inv_K"].float()
        warped: dict[int | str, Tensor] = {}
        errors = []
        for f in source_ids:
            cam_T_cam = outputs[("cam_T_cam", 0, f)].float()
            warped[f] = warp_image(
                batch[("color", f, 0)], depth, cam_T_cam, K, inv_K, self.backproject, self.project
            )
            errors.append(self.photometric(warped[f], target))
        if cfg["masking"] == "explainability":
            ones = torch.ones_like(errors[0])
            masks = [outputs.get(("explainability", 0, f), ones).float() for f in source_ids]
            loss, mask = explainability_loss(
                torch.cat(errors, 1), torch.cat(masks, 1), cfg["explainability_weight"]
            )
            return loss, mask, warped
        loss, mask = reduce_reprojection(
            torch.cat(errors, 1),
            identity,
            min_reprojection=cfg["min_reprojection"],
            dipe=cfg["dipe"],
            dipe_lower=cfg["dipe_lower"],
            dipe_upper=cfg["dipe_upper"],
        )
        return loss, mask, warped

    def _velocity_term(
        self, batch: Mapping[Any, Tensor], outputs: Mapping[Any, Tensor], source_ids: Sequence[int | str]
    ) -> Tensor | None:
        translations = {
            f: outputs[("translation", 0, f)].float() for f in source_ids if ("translation", 0, f) in outputs
        }
        distances = {f: batch[("distance", f)] for f in source_ids if ("distance", f) in batch}
        return velocity_loss(translations, distances) if distances else None
