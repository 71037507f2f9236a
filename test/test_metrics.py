"""depth_node.metrics: the KITTI Eigen depth metrics, median scaling, the Garg crop, resizing.

Hand-computed values on tiny arrays, and properties (``hypothesis``) that any correct
implementation of the published protocol has.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from depth_node.metrics import (
    MAX_DEPTH,
    METRIC_NAMES,
    MIN_DEPTH,
    compute_depth_errors,
    evaluate_depth,
    format_metrics_table,
    garg_crop_mask,
    mean_metrics,
    relative_error_map,
    resize_depth,
)

PERFECT = {"abs_rel": 0.0, "sq_rel": 0.0, "rmse": 0.0, "rmse_log": 0.0, "a1": 1.0, "a2": 1.0, "a3": 1.0}
depths = st.floats(0.5, 79.0, allow_nan=False, width=32)
depth_maps = arrays(np.float32, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=depths)


# ---------------------------------------------------------------- compute_depth_errors


def test_compute_depth_errors_by_hand() -> None:
    gt, pred = np.array([1.0, 2.0, 4.0, 10.0]), np.array([2.0, 2.0, 2.0, 12.0])
    m = compute_depth_errors(gt, pred)
    assert list(m) == list(METRIC_NAMES)
    assert m["abs_rel"] == pytest.approx((1 / 1 + 0 + 2 / 4 + 2 / 10) / 4)
    assert m["sq_rel"] == pytest.approx((1 / 1 + 0 + 4 / 4 + 4 / 10) / 4)
    assert m["rmse"] == pytest.approx(math.sqrt((1 + 0 + 4 + 4) / 4))
    assert m["rmse_log"] == pytest.approx(math.sqrt((2 * math.log(2) ** 2 + math.log(1.2) ** 2) / 4))
    # max(gt/pred, pred/gt) = 2, 1, 2, 1.2: below 1.25 twice; 1.25^2 = 1.5625, 1.25^3 = 1.953125 < 2.
    assert (m["a1"], m["a2"], m["a3"]) == (0.5, 0.5, 0.5)


@pytest.mark.parametrize(
    ("gt", "pred"), [([1.0, 2.0], [1.0]), ([[1.0]], [[1.0]]), ([], []), (np.ones(3), np.ones((3, 1)))]
)
def test_compute_depth_errors_wants_equal_flat_arrays(gt, pred) -> None:
    with pytest.raises(ValueError, match="expected two equal, non-empty 1-D arrays"):
        compute_depth_errors(np.asarray(gt), np.asarray(pred))


@settings(deadline=None)
@given(arrays(np.float64, st.integers(1, 50), elements=st.floats(1e-3, 1e3)))
def test_a_perfect_prediction_scores_zero_error_and_full_accuracy(gt: np.ndarray) -> None:
    assert compute_depth_errors(gt, gt.copy()) == pytest.approx(PERFECT)


@settings(deadline=None)
@given(
    arrays(np.float64, 20, elements=st.floats(0.1, 100.0)),
    arrays(np.float64, 20, elements=st.floats(0.1, 100.0)),
)
def test_log_error_and_thresholds_do_not_care_which_side_is_truth(a: np.ndarray, b: np.ndarray) -> None:
    ab, ba = compute_depth_errors(a, b), compute_depth_errors(b, a)
    for name in ("rmse", "rmse_log", "a1", "a2", "a3"):
        assert ab[name] == pytest.approx(ba[name])
    assert 0.0 <= ab["a1"] <= ab["a2"] <= ab["a3"] <= 1.0


@settings(deadline=None)
@given(arrays(np.float64, 10, elements=st.floats(1.0, 50.0)), st.floats(1.01, 5.0))
def test_a_uniform_scale_error_gives_known_metrics(gt: np.ndarray, factor: float) -> None:
    m = compute_depth_errors(gt, gt * factor)
    assert m["abs_rel"] == pytest.approx(factor - 1.0)
    assert m["rmse_log"] == pytest.approx(math.log(factor))
    if abs(factor - 1.25) > 1e-9:  # at 1.25 itself the ratio is 1.25 only to rounding
        assert m["a1"] == float(factor < 1.25)


# ---------------------------------------------------------------- evaluate_depth


def test_evaluate_depth_excludes_invalid_pixels_and_caps_the_prediction() -> None:
    gt = np.array([[MIN_DEPTH, 10.0, 40.0], [np.nan, MAX_DEPTH, 20.0]])
    pred = np.array([[5.0, np.nan, 1000.0], [5.0, 5.0, -1.0]])
    result = evaluate_depth(gt, pred)
    # Only (0, 2) counts: gt at the limits, NaN truth, NaN and negative predictions are all out.
    assert result is not None and result.valid_pixels == 1 and result.scale == 1.0
    # 1000 m is clipped to the 80 m cap before scoring: |80 - 40| / 40.
    assert result.metrics["abs_rel"] == pytest.approx(1.0)
    assert evaluate_depth(gt, np.full_like(gt, np.nan)) is None
    with pytest.raises(ValueError, match=r"ground truth \(2, 3\) and prediction \(3, 2\) differ"):
        evaluate_depth(gt, pred.T)


@settings(deadline=None)
@given(depth_maps, st.floats(0.05, 20.0))
def test_median_scaling_makes_a_scaled_prediction_perfect(gt: np.ndarray, factor: float) -> None:
    pred = gt / factor  # a monocular net right up to scale
    result = evaluate_depth(gt, pred, median_scaling=True)
    assert result is not None and result.valid_pixels == gt.size
    assert result.scale == pytest.approx(factor, rel=1e-5)
    assert result.metrics == pytest.approx(PERFECT, abs=1e-5)
    unscaled = evaluate_depth(gt, gt)
    assert unscaled is not None and unscaled.scale == 1.0 and unscaled.metrics == pytest.approx(PERFECT)


def test_garg_crop_fractions_on_kitti_size() -> None:
    mask = garg_crop_mask(375, 1242)
    rows, cols = np.nonzero(mask)
    # int(0.40810811 * 375), int(0.99189189 * 375), int(0.03594771 * 1242), int(0.96405229 * 1242)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (153, 371, 44, 1197)
    assert mask.sum() == (371 - 153) * (1197 - 44)
    assert mask.dtype == bool and mask.shape == (375, 1242)


@settings(deadline=None)
@given(st.integers(3, 400), st.integers(3, 1300))
def test_garg_crop_is_one_rectangle_at_the_published_fractions(height: int, width: int) -> None:
    mask = garg_crop_mask(height, width)
    expected = np.zeros((height, width), bool)
    expected[
        int(0.40810811 * height) : int(0.99189189 * height), int(0.03594771 * width) : int(0.96405229 * width)
    ] = True
    np.testing.assert_array_equal(mask, expected)


def test_evaluate_depth_with_garg_crop_scores_only_inside() -> None:
    gt = np.full((375, 1242), 10.0)
    pred = np.full_like(gt, 10.0)
    pred[~garg_crop_mask(375, 1242)] = 30.0  # wrong only outside the crop
    cropped = evaluate_depth(gt, pred, garg_crop=True)
    assert cropped is not None and cropped.metrics == pytest.approx(PERFECT)
    assert cropped.valid_pixels == (371 - 153) * (1197 - 44)


# ---------------------------------------------------------------- averaging and the table


def test_mean_metrics_averages_frames_not_pixels() -> None:
    a = dict.fromkeys(METRIC_NAMES, 1.0)
    b = dict.fromkeys(METRIC_NAMES, 3.0)
    assert mean_metrics([a, b]) == dict.fromkeys(METRIC_NAMES, 2.0)
    assert list(mean_metrics([a])) == list(METRIC_NAMES)
    with pytest.raises(ValueError, match="no frames"):
        mean_metrics([])


def test_format_metrics_table() -> None:
    table = format_metrics_table({"ours": PERFECT, "a much longer label for a baseline row": PERFECT})
    header, ours, longer = table.splitlines()
    assert header.split() == list(METRIC_NAMES)
    assert ours.split() == ["ours", "0.0000", "0.0000", "0.0000", "0.0000", "1.0000", "1.0000", "1.0000"]
    assert len(header) == len(ours) == len(longer) == len("a much longer label for a baseline row") + 1 + 70
    assert len(format_metrics_table({"x": PERFECT}).splitlines()[1]) == 28 + 70


# ---------------------------------------------------------------- resize_depth, relative_error_map


def test_prediction_is_resized_to_the_ground_truth_like_monodepth2() -> None:
    depth = np.array([[2.0, 4.0], [np.nan, 4.0]], dtype=np.float32)
    big = resize_depth(depth, 4, 4)
    assert big.shape == (4, 4)
    assert np.isnan(big[3, 0]) and np.isnan(big[2, 1])  # invalid stays invalid, not smeared
    assert big[0, 0] == pytest.approx(2.0) and big[0, 3] == pytest.approx(4.0)
    # Between 2 m and 4 m the interpolation is on disparity: 1 / mean(1/2, 1/4) at the midpoint.
    assert 2.0 < big[0, 1] < big[0, 2] < 4.0
    assert resize_depth(depth, 2, 2) is depth


@settings(deadline=None)
@given(depth_maps, st.integers(1, 20), st.integers(1, 20))
def test_resize_depth_is_bilinear_on_disparity(depth: np.ndarray, width: int, height: int) -> None:
    out = resize_depth(depth, width, height)
    assert out.shape == (height, width) and out.dtype == np.float32
    expected = 1.0 / cv2.resize(1.0 / depth, (width, height), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    # Disparity interpolation never leaves the range of the input depths.
    assert depth.min() * (1 - 1e-5) <= out.min() and out.max() <= depth.max() * (1 + 1e-5)


def test_resize_depth_keeps_holes_and_is_exact_away_from_them() -> None:
    rng = np.random.default_rng(0)
    depth = rng.uniform(2.0, 60.0, (8, 10)).astype(np.float32)
    depth[3, 4] = np.nan
    depth[6, 7] = 0.0  # <= 0 is invalid too
    out = resize_depth(depth, 20, 16)
    # Exactly the target pixels whose nearest source pixel is invalid are NaN (2x2 each at x2).
    expected_nan = np.zeros((16, 20), bool)
    expected_nan[6:8, 8:10] = expected_nan[12:14, 14:16] = True
    np.testing.assert_array_equal(np.isnan(out), expected_nan)
    # Pixels whose bilinear footprint misses the holes: whatever fills the holes does not change them.
    ref_a, ref_b = (
        1.0 / cv2.resize(1.0 / np.where(np.isfinite(depth) & (depth > 0), depth, fill), (20, 16))
        for fill in (np.float32(3.0), np.float32(50.0))
    )
    untouched = ref_a == ref_b
    assert untouched.sum() > 0.6 * untouched.size
    np.testing.assert_allclose(out[untouched], ref_a[untouched], rtol=1e-5)


def test_relative_error_map() -> None:
    gt = np.array([[4.0, 4.0, 4.0, np.nan, 0.0]])
    pred = np.array([[2.0, 6.0, np.nan, 3.0, 3.0]])
    error = relative_error_map(pred, gt)
    assert error.dtype == np.float32
    assert error[0, 0] == pytest.approx(-0.5) and error[0, 1] == pytest.approx(0.5)  # too near / too far
    assert np.isnan(error[0, 2:]).all()  # no prediction, no truth, zero truth
