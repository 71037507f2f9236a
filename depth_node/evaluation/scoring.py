"""Scoring depth against ground truth, shared by the replay and the live eval node.

Predictions and ground truth are paired by stamp (approximate time, :class:`StreamEvaluator`), the
prediction is brought to the ground truth's size (:func:`depth_node.metrics.resize_depth`) and
scored metric and median-scaled with :mod:`depth_node.metrics`, so both tools report the same
numbers for the same frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from depth_node.evaluation.ground_truth import GroundTruth
from depth_node.geometry import crop_image
from depth_node.metrics import MAX_DEPTH, MIN_DEPTH, evaluate_depth, mean_metrics, resize_depth


def score_frame(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    garg_crop: bool = False,
) -> dict[str, Any] | None:
    """Metric and median-scaled scores of one frame (both via :func:`depth_node.metrics.evaluate_depth`).

    ``pred`` must already be at ``gt``'s size. Returns None when no pixel can be scored.
    ``median_scale`` is median(gt)/median(pred): how far the runtime's metric scale is off (1 = right).
    """
    kwargs = {"min_depth": min_depth, "max_depth": max_depth, "garg_crop": garg_crop}
    metric = evaluate_depth(gt, pred, **kwargs)
    if metric is None:
        return None
    scaled = evaluate_depth(gt, pred, median_scaling=True, **kwargs)
    assert scaled is not None
    return {
        "metric": metric.metrics,
        "median_scaled": scaled.metrics,
        "median_scale": scaled.scale,
        "valid_pixels": metric.valid_pixels,
    }


@dataclass
class Scored:
    """A prediction matched with its ground truth and scored (``scores`` None: nothing to score)."""

    key: Any
    stamp_ns: int
    pred: np.ndarray  # at the ground truth's size
    gt: np.ndarray
    scores: dict[str, Any] | None
    extra: Any = None


@dataclass
class _Pending:
    stamp_ns: int
    item: Any
    key: Any = None
    extra: Any = None


class StreamEvaluator:
    """Approximate-time pairing of predictions with ground truth, then scoring; ROS-free.

    Predictions and ground truth arrive in any order; each is paired with the other side's nearest
    stamp within ``tolerance_s``. Entries older than ``max_age_s`` behind the newest stamp seen are
    given up (counted, and unmatched predictions handed back by :meth:`take_unmatched`). Used by the
    replay and by the live evaluator node, so both score the same way.
    """

    def __init__(
        self,
        *,
        min_depth: float = MIN_DEPTH,
        max_depth: float = MAX_DEPTH,
        garg_crop: bool = False,
        tolerance_s: float = 0.05,
        max_age_s: float = 2.0,
    ) -> None:
        self.min_depth, self.max_depth, self.garg_crop = min_depth, max_depth, garg_crop
        self.tolerance_ns = int(tolerance_s * 1e9)
        self.max_age_ns = int(max_age_s * 1e9)
        self._predictions: list[_Pending] = []
        self._truths: list[_Pending] = []
        self._unmatched: list[_Pending] = []
        self._newest = -(2**63)
        self.frames: list[dict[str, Any]] = []  # scores of every scored frame, in scoring order
        self.unmatched_truth = 0
        self.unscorable = 0

    @staticmethod
    def _take_nearest(pool: list[_Pending], stamp_ns: int, tolerance_ns: int) -> _Pending | None:
        if not pool:
            return None
        best = min(range(len(pool)), key=lambda i: abs(pool[i].stamp_ns - stamp_ns))
        if abs(pool[best].stamp_ns - stamp_ns) > tolerance_ns:
            return None
        return pool.pop(best)

    def _expire(self) -> None:
        horizon = self._newest - self.max_age_ns
        keep = [p for p in self._predictions if p.stamp_ns >= horizon]
        self._unmatched += [p for p in self._predictions if p.stamp_ns < horizon]
        self._predictions = keep
        old = len(self._truths)
        self._truths = [t for t in self._truths if t.stamp_ns >= horizon]
        self.unmatched_truth += old - len(self._truths)

    def add_prediction(
        self,
        stamp_ns: int,
        depth: np.ndarray,
        key: Any = None,
        crop: tuple[int, int, int, int] | None = None,
        extra: Any = None,
    ) -> list[Scored]:
        """A depth image (metres, NaN invalid) of the camera image stamped ``stamp_ns``.

        ``crop`` (left, top, width, height) in camera pixels: the part of the image it covers.
        """
        self._newest = max(self._newest, stamp_ns)
        truth = self._take_nearest(self._truths, stamp_ns, self.tolerance_ns)
        pending = _Pending(stamp_ns, (depth, crop), key, extra)
        out = [] if truth is None else [self._score(pending, truth.item)]
        if truth is None:
            self._predictions.append(pending)
        self._expire()
        return out

    def add_truth(self, stamp_ns: int, truth: GroundTruth) -> list[Scored]:
        """Ground truth for the camera image stamped ``stamp_ns``."""
        self._newest = max(self._newest, stamp_ns)
        prediction = self._take_nearest(self._predictions, stamp_ns, self.tolerance_ns)
        out = [] if prediction is None else [self._score(prediction, truth)]
        if prediction is None:
            self._truths.append(_Pending(stamp_ns, truth))
        self._expire()
        return out

    def _score(self, prediction: _Pending, truth: GroundTruth) -> Scored:
        depth, crop = prediction.item
        gt = crop_image(truth.depth(), crop)
        pred = resize_depth(depth, gt.shape[1], gt.shape[0])
        scores = score_frame(
            gt, pred, min_depth=self.min_depth, max_depth=self.max_depth, garg_crop=self.garg_crop
        )
        if scores is None:
            self.unscorable += 1
        else:
            self.frames.append(scores)
        return Scored(prediction.key, prediction.stamp_ns, pred, gt, scores, prediction.extra)

    def take_unmatched(self, flush: bool = False) -> list[tuple[Any, int, Any]]:
        """(key, stamp_ns, extra) of predictions given up on (all still pending with ``flush``)."""
        if flush:
            self._unmatched += self._predictions
            self._predictions = []
            self.unmatched_truth += len(self._truths)
            self._truths = []
        out = [(p.key, p.stamp_ns, p.extra) for p in self._unmatched]
        self._unmatched = []
        return out

    def summary(self) -> dict[str, Any] | None:
        """Mean metric and median-scaled metrics over the scored frames (None before any)."""
        if not self.frames:
            return None
        scales = np.array([f["median_scale"] for f in self.frames])
        return {
            "frames": len(self.frames),
            "metric": mean_metrics([f["metric"] for f in self.frames]),
            "median_scaled": mean_metrics([f["median_scaled"] for f in self.frames]),
            "median_scale_mean": float(scales.mean()),
            "median_scale_std": float(scales.std()),
        }


def running_metrics_line(summary: Mapping[str, Any]) -> str:
    """One log line of a :meth:`StreamEvaluator.summary` (the live node logs this)."""
    m, s = summary["metric"], summary["median_scaled"]
    return (
        f"{summary['frames']} frames: abs_rel {m['abs_rel']:.4f} rmse {m['rmse']:.3f} m a1 {m['a1']:.4f}"
        f" | median-scaled abs_rel {s['abs_rel']:.4f} a1 {s['a1']:.4f}"
        f" | median scale {summary['median_scale_mean']:.3f}"
    )


def metrics_key_values(
    summary: Mapping[str, Any], evaluator: StreamEvaluator, bad_messages: int = 0
) -> list[tuple[str, str]]:
    """(key, value) strings for a diagnostic_msgs/DiagnosticStatus of the running evaluation."""
    values = [("frames scored", str(summary["frames"]))]
    values += [(f"metric {k}", f"{v:.4f}") for k, v in summary["metric"].items()]
    values += [(f"median-scaled {k}", f"{v:.4f}") for k, v in summary["median_scaled"].items()]
    values += [
        ("median scale mean", f"{summary['median_scale_mean']:.4f}"),
        ("median scale std", f"{summary['median_scale_std']:.4f}"),
        ("ground truth unmatched", str(evaluator.unmatched_truth)),
        ("frames without valid ground truth", str(evaluator.unscorable)),
        ("bad messages", str(bad_messages)),
    ]
    return values
