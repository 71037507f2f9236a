"""Depth error metrics (the one copy; training, replay and tests use it).

KITTI Eigen protocol: the seven metrics of ``METRIC_NAMES``, Garg crop, depth in (1e-3, 80) m.
NYU Depth V2 (Eigen et al. 2014, as BTS and DenseDepth evaluate it): ``NYU_METRIC_NAMES`` adds log10
and the MSE, Eigen's crop of the 480x640 frame, depth in (1e-3, 10) m. Ordinal pairs (DIW, Chen et
al. 2016): the weighted human disagreement rate, ``whdr``. Motion regions: the synthetic world's
per-pixel motion labels (``MOTION_LABELS``) split a frame into ``motion_regions`` that are scored
apart, because moving cars are where self-supervised depth fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
# NYU tables add log10 (mean |log10 pred - log10 gt|) and the MSE in m² (what the seed reports).
NYU_METRIC_NAMES = (*METRIC_NAMES, "log10", "mse")

# Eigen split evaluation limits used by Monodepth2 and everyone since.
MIN_DEPTH = 1e-3
MAX_DEPTH = 80.0
NYU_MAX_DEPTH = 10.0  # NYU Depth V2: the Kinect's range

# Per-pixel motion labels (uint8) of the synthetic world's drives: what a pixel shows does not move,
# moves the camera's way (the lead car and traffic in the car's direction: a photometric loss sees
# them nearly still and pushes them to infinity) or comes towards the camera (oncoming traffic).
MOTION_LABELS = {"static": 0, "same_way": 1, "oncoming": 2}
MOTION_REGIONS = ("static", "same_way", "oncoming", "moving")  # moving: same_way or oncoming


def compute_depth_errors(
    gt: np.ndarray, pred: np.ndarray, names: Sequence[str] = METRIC_NAMES
) -> dict[str, float]:
    """The metrics ``names`` (default: the seven standard ones) over matching 1-D arrays of valid,
    positive depths, in the order of ``names``."""
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if gt.shape != pred.shape or gt.ndim != 1 or gt.size == 0:
        raise ValueError(f"expected two equal, non-empty 1-D arrays, got {gt.shape} and {pred.shape}")
    unknown = [name for name in names if name not in NYU_METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown depth metrics {unknown}; known: {NYU_METRIC_NAMES}")
    thresh = np.maximum(gt / pred, pred / gt)
    squared = (gt - pred) ** 2
    values = {
        "abs_rel": np.mean(np.abs(gt - pred) / gt),
        "sq_rel": np.mean(squared / gt),
        "rmse": np.sqrt(np.mean(squared)),
        "rmse_log": np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2)),
        "a1": np.mean(thresh < 1.25),
        "a2": np.mean(thresh < 1.25**2),
        "a3": np.mean(thresh < 1.25**3),
        "log10": np.mean(np.abs(np.log10(pred) - np.log10(gt))),
        "mse": np.mean(squared),
    }
    return {name: float(values[name]) for name in names}


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


def nyu_crop_mask(height: int, width: int) -> np.ndarray:
    """Boolean mask of Eigen's NYU crop: rows 45:471, columns 41:601 of the 480x640 frame.

    The crop BTS (``eval_mask[45:471, 41:601]``) and AdaBins evaluate in; another frame size gets
    the same fractions, in integer arithmetic so that 480x640 is exact.
    """
    mask = np.zeros((height, width), dtype=bool)
    mask[45 * height // 480 : 471 * height // 480, 41 * width // 640 : 601 * width // 640] = True
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
    nyu_crop: bool = False,
    metric_names: Sequence[str] = METRIC_NAMES,
) -> FrameEvaluation | None:
    """Score one predicted depth map against ground truth of the same size (metres).

    Ground truth counts where it is finite and inside (min_depth, max_depth); invalid prediction
    pixels (NaN, <= 0) are excluded too rather than silently scored. With ``median_scaling`` the
    prediction is multiplied by median(gt) / median(pred) first (monocular protocol); the
    prediction is then clipped to [min_depth, max_depth] as in the published evaluation.
    ``garg_crop`` (KITTI) and ``nyu_crop`` (NYU) keep only the protocol's crop; ``metric_names``
    picks the metrics (``NYU_METRIC_NAMES`` for NYU tables). Returns None when no pixel is valid.
    """
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in size")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth) & np.isfinite(pred) & (pred > 0)
    if garg_crop:
        valid &= garg_crop_mask(*gt.shape)
    if nyu_crop:
        valid &= nyu_crop_mask(*gt.shape)
    if not valid.any():
        return None
    gt_valid, pred_valid = gt[valid], pred[valid]
    scale = 1.0
    if median_scaling:
        scale = float(np.median(gt_valid) / np.median(pred_valid))
        pred_valid = pred_valid * scale
    pred_valid = np.clip(pred_valid, min_depth, max_depth)
    metrics = compute_depth_errors(gt_valid, pred_valid, metric_names)
    return FrameEvaluation(metrics, scale, int(valid.sum()))


def mean_metrics(frames: list[dict[str, float]]) -> dict[str, float]:
    """Average per-frame metrics (the KITTI protocol averages frames, not pixels); the metrics of the
    first frame (the seven standard ones, plus log10 and mse where the frames have them)."""
    if not frames:
        raise ValueError("no frames to average")
    names = [name for name in NYU_METRIC_NAMES if name in frames[0]]
    return {name: float(np.mean([f[name] for f in frames])) for name in names}


def format_metrics_table(rows: dict[str, dict[str, float]]) -> str:
    """A fixed-width text table: one row per named result, the metrics as columns (the seven standard
    ones, plus log10 and mse where every row has them)."""
    columns = list(METRIC_NAMES)
    if rows:
        columns = [name for name in NYU_METRIC_NAMES if all(name in m for m in rows.values())]
    width = max([28, *(len(label) + 1 for label in rows)])
    header = f"{'':<{width}}" + "".join(f"{name:>10}" for name in columns)
    lines = [header]
    for label, metrics in rows.items():
        lines.append(f"{label:<{width}}" + "".join(f"{metrics[name]:>10.4f}" for name in columns))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Ordinal pairs (DIW): the weighted human disagreement rate


def motion_regions(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Bool masks of ``MOTION_REGIONS`` from a ``MOTION_LABELS`` map; other values are an error."""
    labels = np.asarray(labels)
    known = np.isin(labels, list(MOTION_LABELS.values()))
    if not known.all():
        raise ValueError(
            f"motion labels: expected values in {sorted(MOTION_LABELS.values())} ({MOTION_LABELS}), "
            f"got {sorted(np.unique(labels[~known]).tolist())}"
        )
    masks = {name: labels == value for name, value in MOTION_LABELS.items()}
    masks["moving"] = ~masks["static"]
    return masks


def region_truths(gt: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per motion region, ``gt`` with every pixel outside the region set to 0 (= not scored): the
    region's pixels alone, to be scored with the whole frame's median scale, so that moving cars at
    another scale than the road around them show (the one rule of depth-eval and the replay)."""
    if labels.shape != gt.shape:
        raise ValueError(f"motion labels of shape {labels.shape} for ground truth of {gt.shape}")
    return {
        region: np.where(mask, gt, 0.0).astype(np.float32) for region, mask in motion_regions(labels).items()
    }


def ordinal_disagreement(
    depth: np.ndarray, pairs: np.ndarray, relation: np.ndarray, delta: float = 0.0
) -> np.ndarray:
    """Per pair, whether the predicted order disagrees with the human one (bool [P]).

    ``depth`` [H,W]: the prediction; ``pairs`` [P,4]: (x_a, y_a, x_b, y_b) pixel coordinates at its
    resolution (x right, y down, pixel centres at integers, so inside [-0.5, W - 0.5] x [-0.5,
    H - 0.5]), read at the pixel they fall in, as DIW's test reads its integer points;
    ``relation`` [P]: +1 a farther than b, -1 a nearer, 0 equal (DIW's '>' / '<' / '=').
    The prediction says "equal" where max(d_a/d_b, d_b/d_a) <= 1 + delta (Bell et al.'s
    WHDR_delta); with delta = 0, DIW's convention: a pair agrees only where
    (d_a - d_b) * relation > 0, so a predicted tie disagrees with every ordered pair. A point
    without a valid prediction (NaN, <= 0) disagrees.
    """
    depth = np.asarray(depth, dtype=np.float64)
    pairs = np.asarray(pairs, dtype=np.float64)
    relation = np.asarray(relation)
    if depth.ndim != 2:
        raise ValueError(f"depth: expected an [H,W] map, got shape {depth.shape}")
    if pairs.ndim != 2 or pairs.shape[1] != 4 or relation.shape != (pairs.shape[0],):
        raise ValueError(f"pairs/relation: expected [P,4] and [P], got {pairs.shape} and {relation.shape}")
    if not np.isin(relation, (-1, 0, 1)).all():
        raise ValueError(f"relation: expected values in {{-1, 0, 1}}, got {np.unique(relation).tolist()}")
    if not np.isfinite(pairs).all():
        raise ValueError("pairs: expected finite pixel coordinates")
    height, width = depth.shape
    x, y = pairs[:, 0::2], pairs[:, 1::2]
    if (x < -0.5).any() or (x > width - 0.5).any() or (y < -0.5).any() or (y > height - 0.5).any():
        raise ValueError(
            f"pairs: a point lies outside the {width}x{height} depth map (expected (x, y) pixels)"
        )
    cols = np.clip(np.rint(x), 0, width - 1).astype(np.int64)
    rows = np.clip(np.rint(y), 0, height - 1).astype(np.int64)
    d_a, d_b = depth[rows[:, 0], cols[:, 0]], depth[rows[:, 1], cols[:, 1]]
    valid = np.isfinite(d_a) & np.isfinite(d_b) & (d_a > 0) & (d_b > 0)
    log_ratio = np.log(np.where(valid, d_a, 1.0)) - np.log(np.where(valid, d_b, 1.0))
    predicted = np.where(log_ratio > np.log1p(delta), 1, np.where(log_ratio < -np.log1p(delta), -1, 0))
    return ~valid | (predicted != relation)


def disagreement_rate(disagree: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """WHDR = sum_k w_k [pair k disagrees] / sum_k w_k (weights 1 by default: DIW weighs every pair
    alike), ``pair_accuracy`` = 1 - WHDR and the number of pairs. Over many images, pass every
    image's ``ordinal_disagreement`` concatenated: pairs are pooled, not per-image rates averaged."""
    disagree = np.asarray(disagree, dtype=bool)
    w = np.ones(disagree.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    if disagree.ndim != 1 or w.shape != disagree.shape or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights: expected {disagree.size} non-negative values with a positive sum")
    rate = float(np.sum(w * disagree) / np.sum(w))
    return {"whdr": rate, "pair_accuracy": 1.0 - rate, "pairs": float(disagree.size)}


def whdr(
    depth: np.ndarray,
    pairs: np.ndarray,
    relation: np.ndarray,
    weights: np.ndarray | None = None,
    delta: float = 0.0,
) -> dict[str, float]:
    """DIW's weighted human disagreement rate of one prediction (``disagreement_rate`` of
    ``ordinal_disagreement``: see both for the pairs, the tie rule and the weights)."""
    return disagreement_rate(ordinal_disagreement(depth, pairs, relation, delta), weights)


def relative_error_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(pred - gt) / gt where both are valid, NaN elsewhere (signed: shows too near vs too far)."""
    pred = np.asarray(pred, dtype=np.float32)
    gt = np.asarray(gt, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = (pred - gt) / gt
        error[~(np.isfinite(gt) & (gt > 0) & np.isfinite(pred) & (pred > 0))] = np.nan
    return error
