"""Metric scale from the camera height: analytic scenes and the synthetic world's drives."""

from __future__ import annotations

import numpy as np
import pytest

from depth_node.data.sim.world import SyntheticDrive, WorldConfig
from depth_node.geometry import rotation_matrix
from depth_node.runtime.scale import GroundPlaneScale, fit_ground_plane

W, H = 320, 96
K = np.array([[180.0, 0.0, 159.5], [0.0, 180.0, 47.5], [0.0, 0.0, 1.0]])


def _road_depth(
    camera_height: float, pitch_deg: float = 0.0, roll_deg: float = 0.0, car_z: float | None = 9.0
):
    """Depth of a flat road seen from ``camera_height`` (+ a car's vertical back face at ``car_z``)."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    # Up in the camera's optical frame (y down), tilted by pitch (about the camera's x axis) and
    # roll (about its optical axis z).
    up = rotation_matrix(np.radians(pitch_deg), 0.0, np.radians(roll_deg)) @ np.array([0.0, -1.0, 0.0])
    along_up = rays @ up
    with np.errstate(divide="ignore"):
        depth = np.where(along_up < -1e-6, camera_height / -along_up, np.nan)  # ray meets the road
    depth[depth > 80] = np.nan
    if car_z is not None:  # a car ahead, slightly to the left: its back is a vertical plane
        car_x = rays[..., 0] * car_z
        car_y = rays[..., 1] * car_z
        hit = (car_x > -2.5) & (car_x < -0.7) & (car_y > camera_height - 1.5) & (car_y < camera_height)
        depth = np.where(hit & ~(depth < car_z), car_z, depth)
    return depth.astype(np.float32)


@pytest.mark.parametrize(("pitch", "roll"), [(0.0, 0.0), (3.0, 0.0), (-2.0, 2.0)])
def test_single_frame_exact_scale(pitch: float, roll: float) -> None:
    truth = _road_depth(1.65, pitch, roll)
    estimator = GroundPlaneScale(camera_height=1.65)
    assert estimator.update(truth / 4.0, K) == pytest.approx(4.0, rel=0.01)
    assert estimator.last_fit_ok and estimator.last_fit.inlier_fraction > 0.5


def test_failed_fit_keeps_the_previous_scale() -> None:
    estimator = GroundPlaneScale(camera_height=1.5, initial_scale=7.0)
    empty = np.full((H, W), np.nan, np.float32)
    assert estimator.update(empty, K) == 7.0 and not estimator.last_fit_ok
    road = _road_depth(1.5) / 2.0
    assert estimator.update(road, K) == pytest.approx(2.0, rel=0.01)
    wall = np.full((H, W), 5.0, np.float32)  # a fronto-parallel wall: no horizontal plane
    assert estimator.update(wall, K) == pytest.approx(2.0, rel=0.01)
    assert not estimator.last_fit_ok
    estimator.reset()
    assert estimator.scale == 7.0


def test_median_smoothing_ignores_outlier_frames() -> None:
    rng = np.random.default_rng(0)
    estimator = GroundPlaneScale(camera_height=1.65, window=9)
    road = _road_depth(1.65) / 3.0
    scales = []
    for i in range(12):
        depth = road * np.float32(rng.normal(1.0, 0.01, size=road.shape))
        if i % 4 == 3:
            depth = depth * np.float32(1.6)  # a grossly wrong frame
        scales.append(estimator.update(depth, K))
    assert scales[-1] == pytest.approx(3.0, rel=0.03)


def test_fit_rejects_steep_planes() -> None:
    rng = np.random.default_rng(1)
    # points on a wall (normal along z) only: no near-horizontal plane below the camera
    wall = np.column_stack([rng.uniform(-3, 3, 500), rng.uniform(0.1, 2, 500), np.full(500, 6.0)])
    plane = fit_ground_plane(wall, rng)
    assert plane is None or plane.inlier_fraction < 0.25


@pytest.mark.parametrize(
    ("seed", "camera_height", "traffic", "factor"),
    [(0, 1.65, 1.0, 3.7), (7, 2.0, 2.5, 0.4)],
)
def test_synthetic_drive_recovers_the_scale(
    seed: int, camera_height: float, traffic: float, factor: float
) -> None:
    """Depth divided by a known factor (plus 3% per-pixel noise, as a network's errors) -> the factor."""
    config = WorldConfig(
        seed=seed, num_frames=12, width=416, height=128, fx=241.0, fy=241.0,
        camera_height=camera_height, traffic_density=traffic, lidar=False,
    )  # fmt: skip
    drive = SyntheticDrive(config)
    rng = np.random.default_rng(seed)
    estimator = GroundPlaneScale(camera_height=camera_height)
    errors, frames_with_cars = [], 0
    for frame in drive:
        noise = rng.lognormal(0.0, 0.03, size=frame.depth.shape).astype(np.float32)
        relative = frame.depth / np.float32(factor) * noise
        scale = estimator.update(relative, drive.K)
        errors.append(abs(scale / factor - 1.0))
        frames_with_cars += bool(frame.moving_mask[int(0.55 * config.height) :].any())
    assert frames_with_cars > 0, "the drive should show moving cars in the ground region"
    assert np.median(errors) < 0.05, f"median relative scale error {np.median(errors):.3f}"
