"""False-colour pictures of depth, disparity and error maps (the one colouriser; OpenCV only).

Used by the replay's report frames, ``depth-eval``'s pictures, TensorBoard images and the synthetic
world's contact sheet. Invalid pixels (NaN, inf, and depth <= 0 where ``log``) get ``invalid_rgb``.
"""

from __future__ import annotations

import cv2
import numpy as np

INVALID_RGB = (32, 32, 32)  # dark grey: sky and pixels without ground truth
# Blue - white - red anchors of a diverging map (ColorBrewer RdBu's ends), as a 256-entry BGR LUT.
_ANCHORS_RGB = np.array([[33, 102, 172], [247, 247, 247], [178, 24, 43]], dtype=np.float32)
_DIVERGING_LUT = np.stack(
    [np.interp(np.linspace(0, 2, 256), [0, 1, 2], _ANCHORS_RGB[:, c]) for c in (2, 1, 0)], axis=-1
).astype(np.uint8)[:, None, :]


def colorize(
    values: np.ndarray,
    lo: float | None = None,
    hi: float | None = None,
    *,
    log: bool = False,
    reverse: bool = False,
    diverging: bool = False,
    invalid_rgb: tuple[int, int, int] = INVALID_RGB,
) -> np.ndarray:
    """(H, W) float -> (H, W, 3) uint8 RGB: magma (or blue-white-red with ``diverging``) over [lo, hi].

    ``lo``/``hi`` default to the 1st/99th percentile of the valid values; ``log`` spaces colours by
    log value (depth: near and far both keep contrast); ``reverse`` puts ``lo`` at the bright end.
    """
    values = np.asarray(values, dtype=np.float32)
    valid = np.isfinite(values) & ((values > 0) if log else True)
    if lo is None or hi is None:
        low, high = np.percentile(values[valid], [1, 99]) if valid.any() else (0.0, 1.0)
        lo, hi = (float(low) if lo is None else lo), (float(high) if hi is None else hi)
    if log:
        lo, hi = max(lo, 1e-6), max(hi, 1e-6)
    transform = np.log if log else (lambda x: x)
    span = max(float(transform(hi) - transform(lo)), 1e-6)
    norm = np.zeros(values.shape, np.float32)
    norm[valid] = np.clip((transform(values[valid]) - transform(lo)) / span, 0.0, 1.0)
    if reverse:
        norm = 1.0 - norm
    codes = (norm * 255).astype(np.uint8)
    bgr = (
        cv2.LUT(cv2.merge([codes] * 3), _DIVERGING_LUT)
        if diverging
        else cv2.applyColorMap(codes, cv2.COLORMAP_MAGMA)
    )
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    rgb[~valid] = invalid_rgb
    return rgb


def colorize_depth(
    depth: np.ndarray, lo: float = 2.0, hi: float = 80.0, invalid_rgb: tuple[int, int, int] = INVALID_RGB
) -> np.ndarray:
    """Depth in metres -> RGB, near bright and far dark on a log scale (Monodepth2's look)."""
    return colorize(depth, lo, hi, log=True, reverse=True, invalid_rgb=invalid_rgb)


def colorize_error(relative_error: np.ndarray, span: float = 0.5) -> np.ndarray:
    """(pred - gt) / gt -> RGB: blue too near, white right, red too far, saturating at ±``span``."""
    return colorize(relative_error, -span, span, diverging=True)


def spread_sparse_depth(depth: np.ndarray, radius: int = 2) -> np.ndarray:
    """Grow isolated LiDAR pixels into small blobs (nearest point wins) so a picture can show them.

    A map with more than half of its pixels valid counts as dense and comes back unchanged; in a
    sparse one every point grows by ``radius`` pixels. Only for pictures: metrics always use the
    untouched ground truth.
    """
    depth = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    if valid.mean() > 0.5:
        return depth
    # Dilating inverse depth keeps the nearest point where several blobs overlap.
    inverse = np.zeros_like(depth)
    inverse[valid] = 1.0 / depth[valid]
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    grown = cv2.dilate(inverse, kernel)
    out = np.full_like(depth, np.nan)
    out[grown > 0] = 1.0 / grown[grown > 0]
    return out


def spread_sparse_depth_error(error: np.ndarray, gt: np.ndarray, radius: int = 2) -> np.ndarray:
    """Grow a sparse error map like :func:`spread_sparse_depth` grows sparse ground truth."""
    valid = np.isfinite(error)
    if (np.isfinite(gt) & (gt > 0)).mean() > 0.5 or not valid.any():
        return error
    # Nearest valid pixel's value: dilate the index of every valid pixel.
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    grown = cv2.dilate(valid.astype(np.uint8), kernel).astype(bool)
    flat = np.where(valid.ravel(), np.arange(error.size, dtype=np.float32) + 1, 0).reshape(error.shape)
    index = cv2.dilate(flat, kernel).astype(np.int64) - 1
    out = np.full_like(error, np.nan)
    out[grown] = error.ravel()[index[grown]]
    return out
