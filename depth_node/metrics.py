"""Depth error metrics of the KITTI Eigen protocol (the one copy; training, replay and tests use it)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")

# Eigen split evaluation limits used by Monodepth2 and everyone since.
MIN_DEPTH = 1e-3
MAX_DEPTH = 80.0


def compute_depth_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The seven standard metrics over matching 1-D arrays of valid, positive depths."""
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if gt.shape != pred.shape or gt.ndim != 1 or gt.size == 0:
        raise ValueError(f"expected two equal, non-empty 1-D arrays, got {gt.shape} and {pred.shape}")
    thresh = np.maximum(gt / pred, pred / gt)
    return {
        "abs_rel": float(np.mean(np.abs(gt - pred) / gt)),
        "sq_rel": float(np.mean((gt - pred) ** 2 / gt)),
        "rmse": float(np.sqrt(np.mean((gt - pred) ** 2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        "a1": float(np.mean(thresh < 1.25)),
        "a2": float(np.mean(thresh < 1.25**2)),
        "a3": float(np.mean(thresh < 1.25**3)),
    }


def resize_depth(depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """A predicted depth map resized to the ground truth's size, the Monodepth2 evaluation way.

    Monodepth2 resizes *disparity* bilinearly; so does this, on 1/depth, and keeps pixels invalid
    (NaN) wherever the nearest source pixel was invalid, so that sky and holes are not smeared.
    """
    if depth.shape == (height, width):
        return depth
    valid = np.isfinite(depth) & (depth > 0)
    disparity = np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0).astype(np.float32)
    disparity = cv2.resize(disparity, (width, height), interpolation=cv2.INTER_LINEAR)
    keep = cv2.resize(valid.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
    out = np.full((height, width), np.nan, dtype=np.float32)
    keep &= disparity > 0
    out[keep] = 1.0 / disparity[keep]
    return out


def garg_crop_mask(height: int, width: int) -> np.ndarray:
    """Boolean mask of the crop of Garg et al. (ECCV 2016), as applied in the Eigen evaluation."""
    mask = np.zeros((height, width), dtype=bool)
    top, bottom = int(0.40810811 * height), int(0.99189189 * height)
    left, right = int(0.03594771 * width), int(0.96405229 * width)
    mask[top:bottom, left:right] = True
    return mask


@dataclass
class FrameEvaluation:
    """One frame's metrics, the scale that was applied to the prediction, and the pixel count."""

    metrics: dict[str, float]
    scale: float
    valid_pixels: int


def evaluate_depth(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    garg_crop: bool = False,
    median_scaling: bool = False,
) -> FrameEvaluation | None:
    """Score one predicted depth map against ground truth of the same size (metres).

    Ground truth counts where it is finite and inside (min_depth, max_depth); invalid prediction
    pixels (NaN, <= 0) are excluded too rather than silently scored. With ``median_scaling`` the
    prediction is multiplied by median(gt) / median(pred) first (monocular protocol); the
    prediction is then clipped to [min_depth, max_depth] as in the published evaluation.
    Returns None when no pixel is valid.
    """
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in size")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth) & np.isfinite(pred) & (pred > 0)
    if garg_crop:
        valid &= garg_crop_mask(*gt.shape)
    if not valid.any():
        return None
    gt_valid, pred_valid = gt[valid], pred[valid]
    scale = 1.0
    if median_scaling:
        scale = float(np.median(gt_valid) / np.median(pred_valid))
        pred_valid = pred_valid * scale
    pred_valid = np.clip(pred_valid, min_depth, max_depth)
    return FrameEvaluation(compute_depth_errors(gt_valid, pred_valid), scale, int(valid.sum()))


def mean_metrics(frames: list[dict[str, float]]) -> dict[str, float]:
    """Average per-frame metrics (the KITTI protocol averages frames, not pixels)."""
    if not frames:
        raise ValueError("no frames to average")
    return {name: float(np.mean([f[name] for f in frames])) for name in METRIC_NAMES}


def format_metrics_table(rows: dict[str, dict[str, float]]) -> str:
    """A fixed-width text table: one row per named result, the seven metrics as columns."""
    width = max([28, *(len(label) + 1 for label in rows)])
    header = f"{'':<{width}}" + "".join(f"{name:>10}" for name in METRIC_NAMES)
    lines = [header]
    for label, metrics in rows.items():
        lines.append(f"{label:<{width}}" + "".join(f"{metrics[name]:>10.4f}" for name in METRIC_NAMES))
    return "\n".join(lines)


def relative_error_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(pred - gt) / gt where both are valid, NaN elsewhere (signed: shows too near vs too far)."""
    pred = np.asarray(pred, dtype=np.float32)
    gt = np.asarray(gt, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = (pred - gt) / gt
        error[~(np.isfinite(gt) & (gt > 0) & np.isfinite(pred) & (pred > 0))] = np.nan
    return error
