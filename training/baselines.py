"""The baselines ``depth-eval`` scores every model beside, from the training frames' ground truth.

- constant: one depth everywhere (median-scaled: the frame's median; metric: the median GT depth
  of the training frames),
- layout: the per-pixel mean log-depth of the training frames' ground truth, i.e. the average
  road scene; a model that only learned the road's shape scores like this.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from depth_node.metrics import MAX_DEPTH, MIN_DEPTH, garg_crop_mask, nyu_crop_mask


def valid_gt_mask(gt: np.ndarray, min_depth: float = MIN_DEPTH, max_depth: float = MAX_DEPTH) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(gt) & (gt > min_depth) & (gt < max_depth)


@dataclass
class TrainingPrior:
    """What the baselines know from the training frames' ground truth.

    ``median_depth``: median of all valid GT depths (inside the Garg crop when the evaluation uses
    it); ``log_layout``: per-pixel mean log-depth at ``size`` (w, h), pixels never observed filled
    with log(median_depth).
    """

    median_depth: float
    log_layout: np.ndarray
    frames: int

    @property
    def size(self) -> tuple[int, int]:
        return self.log_layout.shape[1], self.log_layout.shape[0]

    def layout(self, width: int, height: int) -> np.ndarray:
        """The average-layout depth map (metres) at (width, height)."""
        log_depth = self.log_layout
        if (width, height) != self.size:
            log_depth = cv2.resize(log_depth, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.exp(log_depth).astype(np.float32)


def training_prior(
    gt_maps: Iterable[np.ndarray],
    size: tuple[int, int],
    *,
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    garg_crop: bool = True,
    nyu_crop: bool = False,
) -> TrainingPrior:
    """Accumulate the constant and layout baselines from training GT maps, at ``size`` (w, h).

    The constant's median is taken inside the protocol's crop (Garg's for KITTI, Eigen's for NYU),
    where the frames are scored; the layout covers the whole frame.

    Maps of another size are brought to ``size`` keeping only measured pixels (sparse resize).
    """
    from training.datasets.common import resize_sparse_depth

    width, height = size
    log_sum = np.zeros((height, width), dtype=np.float64)
    count = np.zeros((height, width), dtype=np.int64)
    samples: list[np.ndarray] = []
    frames = 0
    for gt in gt_maps:
        gt = np.asarray(gt, dtype=np.float32)
        if gt.shape != (height, width):
            gt = resize_sparse_depth(gt, width, height)
        valid = valid_gt_mask(gt, min_depth, max_depth)
        log_sum[valid] += np.log(gt[valid])
        count[valid] += 1
        region = valid
        if garg_crop:
            region = region & garg_crop_mask(height, width)
        if nyu_crop:
            region = region & nyu_crop_mask(height, width)
        samples.append(gt[region])
        frames += 1
    if frames == 0:
        raise ValueError("no training ground truth for the baselines")
    values = np.concatenate(samples)
    if values.size == 0:
        raise ValueError("training ground truth has no valid pixels")
    median = float(np.median(values))
    layout = np.full((height, width), math.log(median), dtype=np.float64)
    seen = count > 0
    layout[seen] = log_sum[seen] / count[seen]
    return TrainingPrior(median, layout.astype(np.float32), frames)
