"""depth_node.colormap: false-colour depth, error and generic maps; spreading sparse LiDAR for pictures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depth_node.colormap import (
    INVALID_RGB,
    colorize,
    colorize_depth,
    colorize_error,
    spread_sparse_depth,
    spread_sparse_depth_error,
)

BLUE, RED = (33, 102, 172), (178, 24, 43)  # the diverging map's ends (ColorBrewer RdBu)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ [0.299, 0.587, 0.114]


# ---------------------------------------------------------------- colorize


def test_invalid_pixels_get_invalid_rgb() -> None:
    values = np.array([[1.0, np.nan, np.inf], [-np.inf, 0.0, -2.0]], np.float32)
    rgb = colorize(values, 0.0, 2.0)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert (rgb[0, 1:] == INVALID_RGB).all() and (rgb[1, 0] == INVALID_RGB).all()
    assert (rgb[1, 1:] != INVALID_RGB).any(axis=-1).all()  # 0 and negatives are values on a linear map
    logged = colorize(values, 0.5, 2.0, log=True, invalid_rgb=(1, 2, 3))
    assert (logged[1, 1] == (1, 2, 3)).all() and (logged[1, 2] == (1, 2, 3)).all()  # <= 0 has no log
    assert (logged[0, 0] != (1, 2, 3)).any()
    everything_invalid = colorize(np.full((2, 2), np.nan))
    assert (everything_invalid == INVALID_RGB).all()


def test_colorize_runs_dark_to_bright_and_saturates_outside_the_range() -> None:
    values = np.linspace(-5.0, 15.0, 21, dtype=np.float32)[None, :]  # lo = 0 at index 5, hi = 10 at 15
    rgb = colorize(values, 0.0, 10.0)
    luma = _luma(rgb[0])
    assert (np.diff(luma[5:16]) > 0).all()  # magma brightens from lo to hi
    assert (rgb[0, :6] == rgb[0, 5]).all() and (rgb[0, 15:] == rgb[0, 15]).all()  # clipped beyond
    reversed_rgb = colorize(values, 0.0, 10.0, reverse=True)
    np.testing.assert_array_equal(reversed_rgb[0, 5], rgb[0, 15])
    np.testing.assert_array_equal(reversed_rgb[0, 15], rgb[0, 5])


def test_default_range_is_the_1st_to_99th_percentile() -> None:
    values = np.arange(1, 1001, dtype=np.float32).reshape(10, 100)
    lo, hi = np.percentile(values, [1, 99])
    np.testing.assert_array_equal(colorize(values), colorize(values, float(lo), float(hi)))
    np.testing.assert_array_equal(colorize(values, lo=0.0), colorize(values, 0.0, float(hi)))


# ---------------------------------------------------------------- depth and error maps


@settings(deadline=None)
@given(st.floats(2.0, 70.0), st.floats(1.1, 5.0))
def test_near_is_brighter_than_far(near: float, ratio: float) -> None:
    far = min(near * ratio, 80.0)
    rgb = colorize_depth(np.array([[near, far]], np.float32))
    assert _luma(rgb[0, 0]) >= _luma(rgb[0, 1])


def test_colorize_depth_is_logarithmic_between_2_and_80_m() -> None:
    depth = np.array([[2.0, np.sqrt(2.0 * 80.0), 80.0, np.nan, 0.0]], np.float32)
    rgb = colorize_depth(depth)
    magma = colorize(np.array([[0.0, 0.5, 1.0]], np.float32), 0.0, 1.0)
    np.testing.assert_array_equal(rgb[0, 0], magma[0, 2])  # 2 m: the bright end
    np.testing.assert_array_equal(rgb[0, 2], magma[0, 0])  # 80 m: the dark end
    np.testing.assert_array_equal(rgb[0, 1], colorize(np.array([[0.5]], np.float32), 0.0, 1.0)[0, 0])
    assert (rgb[0, 3:] == INVALID_RGB).all()


def test_colorize_error_blue_white_red() -> None:
    error = np.array([[-0.5, 0.0, 0.5, -3.0, 3.0, np.nan]], np.float32)
    rgb = colorize_error(error)
    assert tuple(rgb[0, 0]) == BLUE and tuple(rgb[0, 3]) == BLUE  # too near, saturated beyond -span
    assert tuple(rgb[0, 2]) == RED and tuple(rgb[0, 4]) == RED  # too far
    assert (rgb[0, 1] >= 240).all()  # right: near white
    assert tuple(rgb[0, 5]) == INVALID_RGB
    assert tuple(colorize_error(np.array([[0.2]], np.float32), span=0.2)[0, 0]) == RED


# ---------------------------------------------------------------- spreading sparse LiDAR


def test_dense_maps_come_back_unchanged() -> None:
    dense = np.full((6, 6), 12.0, np.float32)
    dense[0, 0] = np.nan
    assert spread_sparse_depth(dense) is dense
    error = np.zeros((6, 6), np.float32)
    assert spread_sparse_depth_error(error, dense) is error


def test_sparse_points_grow_into_blobs_and_the_nearest_wins() -> None:
    sparse = np.full((9, 9), np.nan, np.float32)
    sparse[2, 2], sparse[2, 4], sparse[7, 7] = 20.0, 5.0, 8.0
    grown = spread_sparse_depth(sparse, radius=1)
    np.testing.assert_array_equal(grown[6:9, 6:9], 8.0)  # a 3x3 blob around a lone point
    assert grown[1, 1] == 20.0 and grown[1, 3] == 5.0  # overlap of 20 m and 5 m: 5 m wins
    assert np.isfinite(grown).sum() == 9 + 3 * 5  # a 3x3 blob + the 3x5 joined blob of the close pair
    assert set(np.unique(grown[np.isfinite(grown)])) == {20.0, 5.0, 8.0}  # no value is invented
    assert np.isfinite(spread_sparse_depth(sparse, radius=2)).sum() > np.isfinite(grown).sum()


def test_sparse_error_maps_grow_like_their_ground_truth() -> None:
    gt = np.full((9, 9), np.nan, np.float32)
    error = np.full((9, 9), np.nan, np.float32)
    gt[2, 2], error[2, 2] = 10.0, -0.25
    gt[6, 6], error[6, 6] = 30.0, 0.5
    grown = spread_sparse_depth_error(error, gt, radius=1)
    np.testing.assert_array_equal(grown[1:4, 1:4], -0.25)
    np.testing.assert_array_equal(grown[5:8, 5:8], 0.5)
    assert np.isfinite(grown).sum() == 18
    assert np.isfinite(spread_sparse_depth(gt, radius=1)).sum() == 18  # the same pixels as the depth
    nothing = np.full((9, 9), np.nan, np.float32)
    assert spread_sparse_depth_error(nothing, gt) is nothing


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_spread_keeps_every_original_point(radius: int) -> None:
    rng = np.random.default_rng(radius)
    sparse = np.full((40, 60), np.nan, np.float32)
    rows, cols = rng.integers(0, 40, 30), rng.integers(0, 60, 30)
    sparse[rows, cols] = rng.uniform(2.0, 80.0, 30)
    grown = spread_sparse_depth(sparse, radius=radius)
    # Every original point is still covered, by itself or a nearer neighbour within the radius
    # (to float32 rounding: the spread goes through 1 / depth and back).
    assert (grown[rows, cols] <= sparse[rows, cols] * (1 + 1e-6)).all()
    assert np.isfinite(grown).sum() > 30
