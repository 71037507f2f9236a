"""Evaluation protocols beside KITTI's: NYU Depth V2 (Eigen crop, 10 m cap, log10, MSE) and DIW's WHDR.

depth_node.metrics computes them, training.evaluate's ``EvalOptions.preset("nyu")`` selects them
for the model and the constant/layout baselines. Expected values are literals or numpy written out
by hand on tiny synthetic maps; the KITTI defaults are checked to stay what they were.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from depth_node.metrics import (
    METRIC_NAMES,
    NYU_METRIC_NAMES,
    compute_depth_errors,
    disagreement_rate,
    evaluate_depth,
    format_metrics_table,
    mean_metrics,
    nyu_crop_mask,
    ordinal_disagreement,
    whdr,
)

# --- NYU: crop, caps, log10, MSE --------------------------------------------------------------------


def test_nyu_crop_is_eigens_rows_45_471_columns_41_601() -> None:
    mask = nyu_crop_mask(480, 640)
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (45, 471, 41, 601)
    assert mask.sum() == 426 * 560 and mask.dtype == bool
    # Another size keeps the fractions (integer arithmetic): 45*240//480 = 22, 601*320//640 = 300.
    rows, cols = np.nonzero(nyu_crop_mask(240, 320))
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (22, 235, 20, 300)


def test_log10_and_mse_by_hand() -> None:
    gt, pred = np.array([1.0, 2.0, 4.0, 10.0]), np.array([2.0, 2.0, 2.0, 12.0])
    m = compute_depth_errors(gt, pred, NYU_METRIC_NAMES)
    assert list(m) == [*METRIC_NAMES, "log10", "mse"]
    assert m["log10"] == pytest.approx((math.log10(2) + 0 + math.log10(2) + math.log10(1.2)) / 4)
    assert m["mse"] == pytest.approx((1 + 0 + 4 + 4) / 4)
    assert m["rmse"] == pytest.approx(math.sqrt(m["mse"]))
    assert list(compute_depth_errors(gt, pred)) == list(METRIC_NAMES)  # KITTI's set stays the default
    assert list(compute_depth_errors(gt, pred, ("mse", "a1"))) == ["mse", "a1"]
    with pytest.raises(ValueError, match=r"unknown depth metrics \['silog'\]"):
        compute_depth_errors(gt, pred, ("silog",))


def nyu_frame() -> tuple[np.ndarray, np.ndarray, int]:
    """A 480x640 truth/prediction pair with known errors; returns the expected valid pixel count."""
    gt = np.full((480, 640), 2.0)
    pred = np.full((480, 640), 2.0)
    gt[100:110, 100:200] = 12.0  # beyond the 10 m cap: 1000 pixels out
    gt[0:45, :], pred[0:45, :] = 5.0, 50.0  # outside the crop: wrong but not scored
    pred[:, 620:] = np.nan  # outside the crop too
    pred[200:220, 300:400] = 4.0  # 2000 pixels 2x too far
    pred[300:310, 100:110] = 25.0  # 100 pixels clipped to the 10 m cap before scoring
    return gt, pred, 426 * 560 - 1000


def test_nyu_frame_scored_in_the_crop_under_the_caps() -> None:
    gt, pred, n = nyu_frame()
    result = evaluate_depth(gt, pred, max_depth=10.0, nyu_crop=True, metric_names=NYU_METRIC_NAMES)
    assert result is not None and result.valid_pixels == n and result.scale == 1.0
    m = result.metrics
    # 2000 pixels: 4 m for 2 m; 100 pixels: 10 m (capped) for 2 m; the rest exact.
    assert m["abs_rel"] == pytest.approx((2000 * 1.0 + 100 * 4.0) / n)
    assert m["mse"] == pytest.approx((2000 * 4.0 + 100 * 64.0) / n)
    assert m["rmse"] == pytest.approx(math.sqrt((2000 * 4.0 + 100 * 64.0) / n))
    assert m["log10"] == pytest.approx((2000 * math.log10(2) + 100 * math.log10(5)) / n)
    # Ratios 2 and 5 both exceed 1.25^3 = 1.953125: every threshold misses all 2100 pixels.
    assert m["a1"] == m["a2"] == m["a3"] == pytest.approx(1 - 2100 / n)
    # Without the crop the top rows and right columns would count (and be wrong).
    uncropped = evaluate_depth(gt, pred, max_depth=10.0, metric_names=NYU_METRIC_NAMES)
    assert uncropped is not None and uncropped.metrics["abs_rel"] > m["abs_rel"] + 0.05


def test_tables_and_means_carry_log10_and_mse_only_where_scored() -> None:
    nyu = dict.fromkeys(NYU_METRIC_NAMES, 1.0)
    kitti = dict.fromkeys(METRIC_NAMES, 3.0)
    assert list(mean_metrics([nyu, dict.fromkeys(NYU_METRIC_NAMES, 3.0)])) == list(NYU_METRIC_NAMES)
    assert mean_metrics([nyu, dict.fromkeys(NYU_METRIC_NAMES, 3.0)])["mse"] == 2.0
    assert list(mean_metrics([kitti])) == list(METRIC_NAMES)
    header, row = format_metrics_table({"nyu model": nyu}).splitlines()
    assert header.split() == [*METRIC_NAMES, "log10", "mse"] and len(row) == 28 + 90
    # Mixed rows: only the columns every row has.
    assert format_metrics_table({"a": nyu, "b": kitti}).splitlines()[0].split() == list(METRIC_NAMES)


# --- NYU through training.evaluate, with the baselines -------------------------------------------


def test_nyu_preset_scores_model_and_baselines_with_log10_and_mse() -> None:
    from training.baselines import training_prior
    from training.evaluate import EvalOptions, evaluate_predictions

    options = EvalOptions.preset("nyu")
    assert (options.min_depth, options.max_depth, options.garg_crop, options.nyu_crop) == (
        1e-3,
        10.0,
        False,
        True,
    )
    assert options.metric_names == NYU_METRIC_NAMES
    gt, pred, n = nyu_frame()
    gt_train = np.full((480, 640), 3.0)
    prior = training_prior([gt_train], (640, 480), max_depth=10.0, garg_crop=False)
    result = evaluate_predictions([(gt, pred)], prior, options=options, metric=True)
    model = result.metric["model"]
    assert model["mse"] == pytest.approx((2000 * 4.0 + 100 * 64.0) / n)
    assert model["log10"] == pytest.approx((2000 * math.log10(2) + 100 * math.log10(5)) / n)
    # Metric constant baseline: the training median, 3 m, for truth 2 m everywhere in the crop.
    assert result.metric["constant"]["mse"] == pytest.approx(1.0)
    assert result.metric["constant"]["log10"] == pytest.approx(math.log10(1.5))
    # Median-scaled constant: the frame's median truth (2 m) everywhere -> exact.
    assert result.median_scaled["constant"]["mse"] == pytest.approx(0.0, abs=1e-12)
    assert set(result.median_scaled) == {"model", "constant", "layout"}
    assert all(
        set(m) == set(NYU_METRIC_NAMES) for m in [*result.median_scaled.values(), *result.metric.values()]
    )
    assert "log10" in result.table().splitlines()[0] and "mse" in result.table().splitlines()[0]


def test_nyu_constant_baseline_takes_its_median_inside_eigens_crop() -> None:
    """Outside the crop NYU's labels are padding (the white border): 9 m there must not move the median."""
    from depth_node.metrics import nyu_crop_mask
    from training.baselines import training_prior

    gt = np.full((480, 640), 9.0)
    gt[nyu_crop_mask(480, 640)] = 2.0  # 2 m inside the crop (about 77 % of the frame), 9 m around it
    gt[:, :250] = 9.0  # ... and in the crop's left columns too, so 9 m is most of the whole frame
    inside = nyu_crop_mask(480, 640) & (gt == 2.0)
    assert inside.sum() > 0.5 * nyu_crop_mask(480, 640).sum() and (gt == 9.0).mean() > 0.5
    assert training_prior([gt], (640, 480), max_depth=10.0, garg_crop=False).median_depth == 9.0
    cropped = training_prior([gt], (640, 480), max_depth=10.0, garg_crop=False, nyu_crop=True)
    assert cropped.median_depth == 2.0


def test_kitti_stays_the_default_protocol() -> None:
    from training.evaluate import EvalOptions, evaluate_predictions

    assert EvalOptions.preset("kitti") == EvalOptions()
    assert EvalOptions().metric_names == METRIC_NAMES and not EvalOptions().nyu_crop
    gt = np.array([[1.0, 2.0], [4.0, 8.0]])
    result = evaluate_predictions([(gt, gt * 2)], None, options=EvalOptions(garg_crop=False))
    assert list(result.median_scaled["model"]) == list(METRIC_NAMES)
    with pytest.raises(ValueError, match=r"protocol='diw': expected one of \['kitti', 'nyu'\]"):
        EvalOptions.preset("diw")
    with pytest.raises(ValueError, match=r"protocol='nyu2': expected one of"):
        EvalOptions(protocol="nyu2")


# --- DIW: the weighted human disagreement rate --------------------------------------------------


DEPTH = np.array([[1.0, 2.0, 4.0, 4.0], [3.0, 3.2, np.nan, 8.0]])


def test_whdr_on_a_handful_of_pairs_with_ties() -> None:
    pairs = np.array(
        [
            [2, 0, 0, 0],  # 4 m vs 1 m, human: a farther -> agrees
            [0, 0, 1, 0],  # 1 m vs 2 m, human: a farther -> disagrees
            [2, 0, 3, 0],  # 4 m vs 4 m (predicted tie), human: a nearer -> disagrees (DIW's rule)
            [3, 0, 2, 0],  # predicted tie, human: equal -> agrees
            [0, 1, 1, 1],  # 3 m vs 3.2 m, human: equal -> disagrees at delta 0, agrees at 0.1
            [0.6, 0.4, 2, 1],  # nearest pixel (1, 0) = 2 m vs a NaN prediction -> disagrees
        ],
        dtype=float,
    )
    relation = np.array([1, 1, -1, 0, 0, 1])
    np.testing.assert_array_equal(
        ordinal_disagreement(DEPTH, pairs, relation), [False, True, True, False, True, True]
    )
    result = whdr(DEPTH, pairs, relation)
    assert result == {"whdr": 4 / 6, "pair_accuracy": pytest.approx(2 / 6), "pairs": 6.0}
    # Bell et al.'s WHDR_delta: a ratio within 1 + delta is "equal" (3.2 / 3 < 1.1; 4 / 2 is not).
    np.testing.assert_array_equal(
        ordinal_disagreement(DEPTH, pairs, relation, delta=0.1), [False, True, True, False, False, True]
    )
    # The weighted form: sum of the disagreeing weights over the sum of all weights.
    weights = np.array([1.0, 2.0, 0.5, 1.0, 0.0, 0.5])
    assert whdr(DEPTH, pairs, relation, weights)["whdr"] == pytest.approx((2.0 + 0.5 + 0.5) / 5.0)


def test_whdr_pools_pairs_over_images_and_refuses_bad_input() -> None:
    one = ordinal_disagreement(DEPTH, np.array([[2, 0, 0, 0]]), np.array([1]))  # agrees
    three = ordinal_disagreement(DEPTH, np.array([[0, 0, 1, 0]] * 3), np.array([1, 1, -1]))
    pooled = disagreement_rate(np.concatenate([one, three]))
    assert pooled["whdr"] == pytest.approx(2 / 4)  # pairs pooled, not (0 + 2/3) / 2 per image
    with pytest.raises(ValueError, match="pairs: a point lies outside the 4x2 depth map"):
        whdr(DEPTH, np.array([[0, 0, 4, 0]]), np.array([1]))
    with pytest.raises(ValueError, match=r"relation: expected values in \{-1, 0, 1\}, got \[2\]"):
        whdr(DEPTH, np.array([[0, 0, 1, 0]]), np.array([2]))
    with pytest.raises(ValueError, match=r"pairs/relation: expected \[P,4\] and \[P\]"):
        whdr(DEPTH, np.array([[0, 0, 1]]), np.array([1]))
    with pytest.raises(ValueError, match="weights: expected 1 non-negative values with a positive sum"):
        whdr(DEPTH, np.array([[0, 0, 1, 0]]), np.array([1]), weights=np.array([0.0]))
    with pytest.raises(ValueError, match="pairs: expected finite pixel coordinates"):
        whdr(DEPTH, np.array([[np.nan, 0, 1, 0]]), np.array([1]))
