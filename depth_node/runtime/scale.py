"""Metric scale for up-to-scale depth: recovered online from the camera's height above the road.

A monocular self-supervised model predicts depth up to an unknown factor s. The road is a plane the
camera sees below it; in the model's units that plane lies at height h_fit below the optical centre,
while the camera is mounted ``camera_height`` metres above it, so s = camera_height / h_fit.

Per frame: back-project a subsampled lower part of the depth image (camera optical frame, y down),
fit the ground plane with RANSAC restricted to near-horizontal planes (normal within ``max_tilt_deg``
of the camera's up direction, -y), refine it by least squares on the inliers, and accept the fit only
when enough points support it. Cars, kerbs and walls are outliers of that fit: their faces are
vertical (rejected by the tilt test) or hold far fewer points than the road. Frames without a good
fit keep the previous scale. The scale is smoothed as the median of the last ``window`` frames' log
scales, so a single bad frame does not move it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from depth_node.geometry import depth_to_points


@dataclass(frozen=True)
class PlaneFit:
    """Plane n . p + d = 0, unit normal pointing up (n_y < 0), so ``height`` = d > 0 for a ground below."""

    normal: np.ndarray
    height: float
    inlier_fraction: float
    num_points: int


def _orient_up(normals: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip planes so that their normals point up in the y-down optical frame."""
    sign = np.where(normals[..., 1] > 0, -1.0, 1.0)
    return normals * sign[..., None], offsets * sign


def fit_ground_plane(
    points: np.ndarray,
    rng: np.random.Generator,
    iterations: int = 64,
    max_tilt_deg: float = 15.0,
    inlier_threshold: float = 0.04,
    refine_steps: int = 2,
) -> PlaneFit | None:
    """Fit a near-horizontal plane below the camera to (N, 3) points; None if no hypothesis survives.

    ``inlier_threshold`` is relative to the plane's height, so the test does not depend on the
    (unknown) scale of the depth. All RANSAC hypotheses are scored at once (one matrix product).
    """
    points = np.asarray(points, dtype=np.float64)
    count = len(points)
    if count < 3:
        return None
    samples = points[rng.integers(0, count, size=(iterations, 3))]  # (M, 3 points, xyz)
    normals = np.cross(samples[:, 1] - samples[:, 0], samples[:, 2] - samples[:, 0])
    norms = np.linalg.norm(normals, axis=1)
    good = norms > 1e-12
    normals = normals[good] / norms[good, None]
    offsets = -np.einsum("mk,mk->m", normals, samples[good, 0])
    normals, offsets = _orient_up(normals, offsets)
    cos_tilt = np.cos(np.radians(max_tilt_deg))
    keep = (-normals[:, 1] >= cos_tilt) & (offsets > 0)  # near-horizontal, camera above the plane
    if not keep.any():
        return None
    normals, offsets = normals[keep], offsets[keep]
    distances = np.abs(points @ normals.T + offsets)  # (N, M)
    scores = (distances < inlier_threshold * offsets).sum(axis=0)
    best = int(np.argmax(scores))
    normal, offset = normals[best], offsets[best]

    # Least-squares refinement on the inliers (total least squares via SVD), re-selecting inliers.
    for _ in range(refine_steps):
        inliers = points[np.abs(points @ normal + offset) < inlier_threshold * offset]
        if len(inliers) < 3:
            break
        centroid = inliers.mean(axis=0)
        _, _, vt = np.linalg.svd(inliers - centroid, full_matrices=False)
        candidate = vt[-1]
        candidate_offset = -float(candidate @ centroid)
        candidate, candidate_offset = _orient_up(candidate, np.float64(candidate_offset))
        if -candidate[1] < cos_tilt or candidate_offset <= 0:
            break
        normal, offset = candidate, float(candidate_offset)
    fraction = float(np.mean(np.abs(points @ normal + offset) < inlier_threshold * offset))
    return PlaneFit(normal=normal, height=float(offset), inlier_fraction=fraction, num_points=count)


class GroundPlaneScale:
    """Smoothed metric scale from the camera's mounting height: ``update(depth, K) -> scale``.

    ``camera_height``: optical centre above the road, metres. ``window``: frames in the running
    median. ``initial_scale``: returned until the first good fit. ``roi_top``: fraction of the image
    height where the ground search starts (the road fills the lower part). ``sample_points``: about
    how many pixels are back-projected per frame. ``min_inlier_fraction``/``min_points``: fit quality
    needed to accept a frame.
    """

    def __init__(
        self,
        camera_height: float,
        window: int = 15,
        initial_scale: float = 1.0,
        roi_top: float = 0.55,
        sample_points: int = 3000,
        iterations: int = 64,
        max_tilt_deg: float = 15.0,
        inlier_threshold: float = 0.04,
        min_inlier_fraction: float = 0.25,
        min_points: int = 100,
        seed: int = 0,
    ) -> None:
        if not camera_height > 0:
            raise ValueError(f"camera_height must be positive (metres), got {camera_height}")
        self.camera_height = float(camera_height)
        self.initial_scale = float(initial_scale)
        self.roi_top = float(roi_top)
        self.sample_points = int(sample_points)
        self.iterations = int(iterations)
        self.max_tilt_deg = float(max_tilt_deg)
        self.inlier_threshold = float(inlier_threshold)
        self.min_inlier_fraction = float(min_inlier_fraction)
        self.min_points = int(min_points)
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._log_scales: deque[float] = deque(maxlen=int(window))
        self.scale = self.initial_scale
        self.last_fit: PlaneFit | None = None
        self.last_fit_ok = False

    def reset(self) -> None:
        """Forget the history (a new drive, a new camera mounting)."""
        self._log_scales.clear()
        self._rng = np.random.default_rng(self._seed)
        self.scale = self.initial_scale
        self.last_fit, self.last_fit_ok = None, False

    def ground_points(self, depth: np.ndarray, K: np.ndarray) -> np.ndarray:
        """Valid back-projected points (N, 3) of the subsampled lower image region, below the camera."""
        depth = np.asarray(depth, dtype=np.float32)
        height, width = depth.shape
        top = min(int(self.roi_top * height), height - 1)
        stride = max(1, int(np.sqrt((height - top) * width / max(self.sample_points, 1))))
        region = depth[top::stride, ::stride]
        # Pixel (u', v') of the subsampled region is pixel (s u', top + s v') of the image.
        fx, fy, cx, cy = K[0, 0] / stride, K[1, 1] / stride, K[0, 2] / stride, (K[1, 2] - top) / stride
        points = depth_to_points(region, fx, fy, cx, cy).reshape(-1, 3)
        valid = np.isfinite(points[:, 2]) & (points[:, 2] > 0) & (points[:, 1] > 0)
        return points[valid]

    def fit(self, depth: np.ndarray, K: np.ndarray) -> PlaneFit | None:
        """This frame's ground plane in the depth's units, or None when the fit is not trustworthy."""
        points = self.ground_points(depth, np.asarray(K, dtype=np.float64))
        if len(points) < self.min_points:
            return None
        plane = fit_ground_plane(points, self._rng, self.iterations, self.max_tilt_deg, self.inlier_threshold)
        self.last_fit = plane
        if plane is None or plane.inlier_fraction < self.min_inlier_fraction:
            return None
        if plane.inlier_fraction * plane.num_points < self.min_points:
            return None
        return plane

    def update(self, depth: np.ndarray, K: np.ndarray) -> float:
        """Add one frame (depth in model units, NaN = invalid; K 3x3 at the depth's size); return the
        smoothed scale (metres per model unit). A frame without a good fit returns the previous scale."""
        plane = self.fit(depth, K)
        self.last_fit_ok = plane is not None
        if plane is not None:
            self._log_scales.append(float(np.log(self.camera_height / plane.height)))
            self.scale = float(np.exp(np.median(self._log_scales)))
        return self.scale
