"""The constant and layout baselines' training prior (training/baselines.py), hand-computed."""

from __future__ import annotations

import numpy as np
import pytest

from training.baselines import training_prior


def test_training_prior_hand_computed() -> None:
    # Two 2x2 training maps; 0 = no ground truth.
    a = np.array([[2.0, 4.0], [0.0, 8.0]], dtype=np.float32)
    b = np.array([[8.0, 4.0], [0.0, 2.0]], dtype=np.float32)
    prior = training_prior([a, b], (2, 2), garg_crop=False)
    # Median of the valid depths {2, 4, 8, 8, 4, 2} = 4.
    assert prior.median_depth == pytest.approx(4.0)
    layout = prior.layout(2, 2)
    # Per-pixel geometric mean: sqrt(2*8) = 4, 4, never seen -> the median, sqrt(8*2) = 4.
    np.testing.assert_allclose(layout, [[4.0, 4.0], [4.0, 4.0]], rtol=1e-6)
    c = np.array([[1.0, 1.0], [9.0, 1.0]], dtype=np.float32)
    prior = training_prior([c, c], (2, 2), garg_crop=False)
    np.testing.assert_allclose(prior.layout(2, 2), c, rtol=1e-6)
    assert prior.frames == 2
