"""depth_node.evaluation.scoring: per-frame scores, stamp pairing and the running summary.

The numbers themselves come from depth_node.metrics (test_metrics.py); here: that the replay and the
live eval node score the same way — pairing by stamp, resizing and cropping to the ground truth,
metric and median-scaled scores, and the lines they log.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from depth_node.evaluation.ground_truth import GroundTruth
from depth_node.evaluation.scoring import (
    StreamEvaluator,
    metrics_key_values,
    running_metrics_line,
    score_frame,
)
from depth_node.metrics import METRIC_NAMES, evaluate_depth, resize_depth


def test_metrics_equal_a_hand_computation_on_2x2_images() -> None:
    # gt 100 m is beyond the 80 m cap and the NaN has no truth: 3 pixels count.
    gt = np.array([[2.0, 4.0], [8.0, 100.0]], dtype=np.float32)
    pred = np.array([[1.0, 2.0], [16.0, 5.0]], dtype=np.float32)
    scores = score_frame(gt, pred, max_depth=80.0)
    assert scores is not None and scores["valid_pixels"] == 3
    # Metric: every prediction is off by a factor 2 -> a1 = a2 = a3 = 0, rmse_log = ln 2.
    m = scores["metric"]
    assert m["abs_rel"] == pytest.approx((1 / 2 + 2 / 4 + 8 / 8) / 3)
    assert m["sq_rel"] == pytest.approx((1 / 2 + 4 / 4 + 64 / 8) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((1 + 4 + 64) / 3))
    assert m["rmse_log"] == pytest.approx(math.log(2))
    assert (m["a1"], m["a2"], m["a3"]) == (0.0, 0.0, 0.0)
    # Median scaling: median(gt) = 4, median(pred) = 2 -> x2: pred 2, 4, 32.
    s = scores["median_scaled"]
    assert scores["median_scale"] == pytest.approx(2.0)
    assert s["abs_rel"] == pytest.approx((0 + 0 + 24 / 8) / 3)
    assert s["sq_rel"] == pytest.approx((24**2 / 8) / 3)
    assert s["rmse"] == pytest.approx(math.sqrt(24**2 / 3))
    assert s["rmse_log"] == pytest.approx(math.sqrt(math.log(4) ** 2 / 3))
    assert s["a1"] == s["a2"] == s["a3"] == pytest.approx(2 / 3)

    # Through the stream evaluator (as replay and the live node score), averaged over two frames.
    evaluator = StreamEvaluator(max_depth=80.0)
    assert evaluator.add_prediction(10, pred) == []
    [scored] = evaluator.add_truth(10, GroundTruth("hand", dense=gt))
    assert scored.scores["metric"] == pytest.approx(m)
    second = np.array([[2.0, 4.0], [8.0, np.nan]], dtype=np.float32)  # perfect where valid
    evaluator.add_truth(20, GroundTruth("hand", dense=gt))
    evaluator.add_prediction(20, second)
    summary = evaluator.summary()
    assert summary["frames"] == 2
    assert summary["metric"]["abs_rel"] == pytest.approx(m["abs_rel"] / 2)
    assert summary["metric"]["a1"] == pytest.approx(0.5)
    assert "2 frames: abs_rel" in running_metrics_line(summary)
    assert dict(metrics_key_values(summary, evaluator))["frames scored"] == "2"


def test_stream_evaluator_pairs_by_nearest_stamp_within_tolerance() -> None:
    ev = StreamEvaluator(tolerance_s=0.02, max_age_s=1.0)
    gt = GroundTruth("flat", dense=np.full((4, 4), 10.0, np.float32))
    ms = 1_000_000
    assert ev.add_truth(100 * ms, gt) == []
    assert ev.add_prediction(130 * ms, np.full((4, 4), 10.0, np.float32), key="late") == []  # 30 ms: too far
    [s] = ev.add_prediction(110 * ms, np.full((4, 4), 10.0, np.float32), key="near")
    assert s.key == "near" and s.scores["metric"]["abs_rel"] == 0.0
    # Much later truth pushes the unmatched prediction out.
    ev.add_truth(5000 * ms, gt)
    assert [k for k, _, _ in ev.take_unmatched()] == ["late"]
    assert [k for k, _, _ in ev.take_unmatched(flush=True)] == []
    assert ev.unmatched_truth == 1


# ---------------------------------------------------------------- new


def test_score_frame_is_none_without_valid_pixels_and_honours_the_garg_crop() -> None:
    gt = np.full((4, 4), np.nan, np.float32)
    assert score_frame(gt, np.ones((4, 4), np.float32)) is None
    # A KITTI-shaped frame: only the Garg crop counts, so an error outside it does not show.
    gt = np.full((375, 1242), 10.0, np.float32)
    pred = gt.copy()
    pred[:100] = 20.0  # rows above the crop (top = int(0.40810811 * 375) = 153)
    cropped = score_frame(gt, pred, garg_crop=True)
    full = score_frame(gt, pred)
    assert cropped is not None and full is not None
    assert cropped["metric"]["abs_rel"] == 0.0 and full["metric"]["abs_rel"] > 0.0
    assert cropped["valid_pixels"] == (371 - 153) * (1197 - 44)


def test_stream_evaluator_resizes_the_prediction_and_crops_the_truth() -> None:
    """The prediction comes to the ground truth's size the Monodepth2 way; ``crop`` picks its region."""
    rng = np.random.default_rng(1)
    gt = rng.uniform(5.0, 50.0, (24, 32)).astype(np.float32)
    small = rng.uniform(5.0, 50.0, (6, 8)).astype(np.float32)
    ev = StreamEvaluator()
    ev.add_truth(1, GroundTruth("dense", dense=gt))
    [scored] = ev.add_prediction(1, small, key="k", extra="panel")
    assert (scored.key, scored.stamp_ns, scored.extra) == ("k", 1, "panel")
    assert scored.gt is gt and scored.pred.shape == gt.shape
    np.testing.assert_array_equal(scored.pred, resize_depth(small, 32, 24))
    direct = evaluate_depth(gt, resize_depth(small, 32, 24))
    assert direct is not None and scored.scores is not None
    assert scored.scores["metric"] == pytest.approx(direct.metrics)

    # Cropped (left 8, top 4, 16x12): the truth is cut to that region, the prediction sized to it.
    ev.add_truth(2, GroundTruth("dense", dense=gt))
    [cropped] = ev.add_prediction(2, small, crop=(8, 4, 16, 12))
    np.testing.assert_array_equal(cropped.gt, gt[4:16, 8:24])
    assert cropped.pred.shape == (12, 16)


def test_stream_evaluator_counts_unscorable_frames_and_expired_truth() -> None:
    ev = StreamEvaluator(tolerance_s=0.01, max_age_s=0.5)
    assert ev.summary() is None
    nothing = GroundTruth("empty", dense=np.full((2, 2), np.nan, np.float32))
    assert ev.add_truth(0, nothing) == []
    [scored] = ev.add_prediction(0, np.ones((2, 2), np.float32))
    assert scored.scores is None and ev.unscorable == 1 and ev.frames == []
    assert ev.summary() is None
    # Truth without a prediction is given up once the stream is max_age_s past it.
    ev.add_truth(100_000_000, GroundTruth("flat", dense=np.ones((2, 2), np.float32)))
    assert ev.unmatched_truth == 0
    ev.add_prediction(700_000_000, np.ones((2, 2), np.float32), key="late")
    assert ev.unmatched_truth == 1
    assert ev.take_unmatched() == []  # the late prediction is still waiting for its truth
    assert ev.take_unmatched(flush=True) == [("late", 700_000_000, None)]


def test_summary_averages_frames_and_reports_the_median_scale_spread() -> None:
    ev = StreamEvaluator()
    gt = GroundTruth("flat", dense=np.full((3, 3), 10.0, np.float32))
    for stamp, pred_depth in ((1, 5.0), (2, 20.0)):  # half and twice the truth: median scales 2 and 0.5
        ev.add_truth(stamp, gt)
        ev.add_prediction(stamp, np.full((3, 3), pred_depth, np.float32))
    s = ev.summary()
    assert s is not None and s["frames"] == 2
    assert s["median_scale_mean"] == pytest.approx(1.25) and s["median_scale_std"] == pytest.approx(0.75)
    assert s["metric"]["abs_rel"] == pytest.approx((0.5 + 1.0) / 2)
    assert s["median_scaled"]["abs_rel"] == pytest.approx(0.0)  # median scaling makes both perfect
    line = running_metrics_line(s)
    assert line.startswith("2 frames: abs_rel 0.7500") and "median scale 1.250" in line
    values = dict(metrics_key_values(s, ev, bad_messages=3))
    assert values["bad messages"] == "3" and values["ground truth unmatched"] == "0"
    assert values["median scale std"] == "0.7500"
    assert {f"metric {n}" for n in METRIC_NAMES} | {f"median-scaled {n}" for n in METRIC_NAMES} <= set(values)
    assert values["metric abs_rel"] == "0.7500" and values["median-scaled abs_rel"] == "0.0000"
