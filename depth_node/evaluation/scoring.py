"""Scoring depth against ground truth, shared by the replay and the live eval node.

Predictions and ground truth are paired by stamp (approximate time, :class:`StreamEvaluator`), the
prediction is brought to the ground truth's size (:func:`depth_node.metrics.resize_depth`) and
scored metric and median-scaled with :mod:`depth_node.metrics`, so both tools report the same
numbers for the same frames. Where ground truth comes with per-pixel motion labels
(:data:`depth_node.metrics.MOTION_LABELS`, the synthetic world's), every motion region is scored as
well (:func:`score_regions`, the rule ``depth-eval`` follows); :class:`MotionPairing` pairs label
images with the depth ground truth of the same stamp.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from depth_node.evaluation.ground_truth import GroundTruth
from depth_node.geometry import crop_image
from depth_node.metrics import (
    MAX_DEPTH,
    MIN_DEPTH,
    MOTION_REGIONS,
    evaluate_depth,
    mean_metrics,
    motion_regions,
    region_truths,
    resize_depth,
)
from depth_node.runtime.conversions import image_to_numpy
from depth_node.runtime.errors import BadInputError
from depth_node.runtime.message_types import stamp_ns as header_stamp_ns

# Why motion labels could not be used (results.json counts each): not a mono8 image, not the ground
# truth's size, a value outside MOTION_LABELS, or no depth ground truth of the same stamp.
MOTION_DROP_REASONS = ("bad_message", "size_mismatch", "unknown_label", "no_ground_truth")


class MotionLabelsError(ValueError):
    """Motion labels that cannot be used: ``reason`` is one of ``MOTION_DROP_REASONS``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def motion_labels_from_msg(msg: Any, topic: str) -> np.ndarray:
    """(H, W) uint8 labels of a ``mono8`` sensor_msgs/Image; MotionLabelsError naming ``topic`` if it
    is not one or holds a value outside ``MOTION_LABELS``."""
    where = f"motion labels on {topic} at stamp {_seconds(header_stamp_ns(msg.header))}"
    if msg.encoding != "mono8":
        raise MotionLabelsError("bad_message", f"{where}: encoding {msg.encoding!r}, expected mono8")
    try:
        labels = image_to_numpy(msg)
        motion_regions(labels)  # the one check of the label values
    except BadInputError as err:
        raise MotionLabelsError("bad_message", f"{where}: {err}") from None
    except ValueError as err:
        raise MotionLabelsError(
            "unknown_label", f"{where}: {str(err).removeprefix('motion labels: ')}"
        ) from None
    return labels


def _seconds(stamp: int) -> str:
    return f"{stamp / 1e9:.3f} s"


def check_motion_size(labels: np.ndarray, shape: tuple[int, ...]) -> None:
    """MotionLabelsError ('size_mismatch') unless ``labels`` has the ground truth's ``shape``."""
    if labels.shape != tuple(shape):
        raise MotionLabelsError(
            "size_mismatch",
            f"motion labels of {labels.shape[-1]}x{labels.shape[0]} for ground truth of "
            f"{shape[-1]}x{shape[0]} (expected the same size)",
        )


def score_regions(
    gt: np.ndarray,
    pred: np.ndarray,
    motion: np.ndarray,
    median_scale: float,
    *,
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    garg_crop: bool = False,
) -> dict[str, dict[str, Any]]:
    """Each motion region of one frame scored on its own pixels: {region: {metric, median_scaled,
    valid_pixels}}, regions without a valid pixel left out.

    The region's ground truth is kept (0 elsewhere) and scored against the prediction as it is
    (metric) and times ``median_scale``, the *whole frame's* median(gt)/median(pred): a region's own
    median would hide that moving cars sit at another scale than the road around them. The rule of
    ``depth-eval`` (training/evaluate.py), so replay and offline evaluation agree. ``motion``:
    ``MOTION_LABELS`` at ``gt``'s size.
    """
    check_motion_size(motion, gt.shape)
    kwargs = {"min_depth": min_depth, "max_depth": max_depth, "garg_crop": garg_crop}
    out = {}
    for region, gt_region in region_truths(gt, motion).items():
        metric = evaluate_depth(gt_region, pred, **kwargs)
        scaled = evaluate_depth(gt_region, pred * median_scale, **kwargs)
        if metric is None or scaled is None:
            continue  # no pixel of this region has valid ground truth in this frame
        out[region] = {
            "metric": metric.metrics,
            "median_scaled": scaled.metrics,
            "valid_pixels": metric.valid_pixels,
        }
    return out


def region_summary(frames: list[dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
    """Per region, over the frames that scored it: {frames, pixels, median_scaled, metric} (frame
    means, as the whole-frame numbers); None when no frame had motion labels."""
    out = {}
    for region in MOTION_REGIONS:
        scored = [f["regions"][region] for f in frames if region in (f.get("regions") or {})]
        if scored:
            out[region] = {
                "frames": len(scored),
                "pixels": sum(s["valid_pixels"] for s in scored),
                "median_scaled": mean_metrics([s["median_scaled"] for s in scored]),
                "metric": mean_metrics([s["metric"] for s in scored]),
            }
    return out or None


def score_frame(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    garg_crop: bool = False,
    motion: np.ndarray | None = None,
) -> dict[str, Any] | None:
    """Metric and median-scaled scores of one frame (both via :func:`depth_node.metrics.evaluate_depth`).

    ``pred`` must already be at ``gt``'s size. Returns None when no pixel can be scored.
    ``median_scale`` is median(gt)/median(pred): how far the runtime's metric scale is off (1 = right).
    With ``motion`` labels (at ``gt``'s size), ``regions`` holds :func:`score_regions`.
    """
    kwargs = {"min_depth": min_depth, "max_depth": max_depth, "garg_crop": garg_crop}
    metric = evaluate_depth(gt, pred, **kwargs)
    if metric is None:
        return None
    scaled = evaluate_depth(gt, pred, median_scaling=True, **kwargs)
    assert scaled is not None
    scores: dict[str, Any] = {
        "metric": metric.metrics,
        "median_scaled": scaled.metrics,
        "median_scale": scaled.scale,
        "valid_pixels": metric.valid_pixels,
    }
    if motion is not None:
        scores["regions"] = score_regions(gt, pred, motion, scaled.scale, **kwargs)
    return scores


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

    def add_truth(self, stamp_ns: int, truth: GroundTruth, motion: np.ndarray | None = None) -> list[Scored]:
        """Ground truth for the camera image stamped ``stamp_ns``, with its motion labels if known
        (then every motion region is scored too; MotionLabelsError when they are not its size)."""
        if motion is not None:
            check_motion_size(motion, truth.depth().shape)
        self._newest = max(self._newest, stamp_ns)
        prediction = self._take_nearest(self._predictions, stamp_ns, self.tolerance_ns)
        out = [] if prediction is None else [self._score(prediction, (truth, motion))]
        if prediction is None:
            self._truths.append(_Pending(stamp_ns, (truth, motion)))
        self._expire()
        return out

    def _score(self, prediction: _Pending, truth_item: tuple[GroundTruth, np.ndarray | None]) -> Scored:
        depth, crop = prediction.item
        truth, motion = truth_item
        gt = crop_image(truth.depth(), crop)
        pred = resize_depth(depth, gt.shape[1], gt.shape[0])
        scores = score_frame(
            gt,
            pred,
            min_depth=self.min_depth,
            max_depth=self.max_depth,
            garg_crop=self.garg_crop,
            motion=None if motion is None else crop_image(motion, crop),
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
        """Mean metric and median-scaled metrics over the scored frames (None before any), and per
        motion region (``regions``: :func:`region_summary`)."""
        if not self.frames:
            return None
        scales = np.array([f["median_scale"] for f in self.frames])
        return {
            "frames": len(self.frames),
            "metric": mean_metrics([f["metric"] for f in self.frames]),
            "median_scaled": mean_metrics([f["median_scaled"] for f in self.frames]),
            "median_scale_mean": float(scales.mean()),
            "median_scale_std": float(scales.std()),
            "regions": region_summary(self.frames),
        }


# (stamp_ns, ground truth, its motion labels or None): what MotionPairing hands on to add_truth.
TruthWithLabels = tuple[int, GroundTruth, np.ndarray | None]


class MotionPairing:
    """Motion labels paired with the depth ground truth of the same stamp (exact: one rendered frame
    gives both), before the truth goes on to :meth:`StreamEvaluator.add_truth`.

    Either may come first. One waits for the other until a stamp ``max_wait_s`` newer has been seen
    (less than the evaluator's ``max_age_s``, so its prediction is still there); then a truth goes on
    without labels (counted: scored whole, not per region) and labels are dropped as
    ``no_ground_truth``. Unusable labels are counted under their ``MOTION_DROP_REASONS`` reason
    (:meth:`drop`), the first one's message kept for the report.
    """

    def __init__(self, topic: str, max_wait_s: float = 1.0) -> None:
        self.topic = topic
        self.max_wait_ns = int(max_wait_s * 1e9)
        self._truths: dict[int, GroundTruth] = {}
        self._labels: dict[int, np.ndarray] = {}
        self._newest = -(2**63)
        self.paired = 0
        self.truths_without_labels = 0
        self.dropped = dict.fromkeys(MOTION_DROP_REASONS, 0)
        self.first_drop: str | None = None

    def drop(self, err: MotionLabelsError) -> None:
        self.dropped[err.reason] += 1
        self.first_drop = self.first_drop or str(err)

    def add_truth(self, stamp_ns: int, truth: GroundTruth) -> list[TruthWithLabels]:
        labels = self._labels.pop(stamp_ns, None)
        if labels is not None:
            return [self._pair(stamp_ns, truth, labels), *self._expire(stamp_ns)]
        out = self._release_truth(stamp_ns)  # a second truth of one stamp: the first goes on alone
        self._truths[stamp_ns] = truth
        return out + self._expire(stamp_ns)

    def add_labels(self, stamp_ns: int, labels: np.ndarray) -> list[TruthWithLabels]:
        truth = self._truths.pop(stamp_ns, None)
        if truth is not None:
            return [self._pair(stamp_ns, truth, labels), *self._expire(stamp_ns)]
        self._drop_labels(stamp_ns)  # a second label image of one stamp: the first is unpaired
        self._labels[stamp_ns] = labels
        return self._expire(stamp_ns)

    def flush(self) -> list[TruthWithLabels]:
        """Everything still waiting (the end of the stream): truths go on without labels."""
        for stamp in list(self._labels):
            self._drop_labels(stamp)
        return [t for stamp in sorted(self._truths) for t in self._release_truth(stamp)]

    def _pair(self, stamp_ns: int, truth: GroundTruth, labels: np.ndarray) -> TruthWithLabels:
        try:
            check_motion_size(labels, truth.depth().shape)
        except MotionLabelsError as err:
            self.drop(MotionLabelsError(err.reason, f"{err} on {self.topic} at stamp {_seconds(stamp_ns)}"))
            self.truths_without_labels += 1
            return stamp_ns, truth, None
        self.paired += 1
        return stamp_ns, truth, labels

    def _release_truth(self, stamp_ns: int) -> list[TruthWithLabels]:
        truth = self._truths.pop(stamp_ns, None)
        if truth is None:
            return []
        self.truths_without_labels += 1
        return [(stamp_ns, truth, None)]

    def _drop_labels(self, stamp_ns: int) -> None:
        if self._labels.pop(stamp_ns, None) is not None:
            self.drop(
                MotionLabelsError(
                    "no_ground_truth",
                    f"motion labels on {self.topic} at stamp {_seconds(stamp_ns)} have no depth ground "
                    "truth of the same stamp",
                )
            )

    def _expire(self, stamp_ns: int) -> list[TruthWithLabels]:
        self._newest = max(self._newest, stamp_ns)
        horizon = self._newest - self.max_wait_ns
        for stamp in [s for s in self._labels if s < horizon]:
            self._drop_labels(stamp)
        return [
            t for stamp in sorted(s for s in self._truths if s < horizon) for t in self._release_truth(stamp)
        ]


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
