"""Synthetic world: determinism, geometry, LiDAR agreement, ego-motion, moving cars, road texture."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from depth_node.data.sim.world import Frame, SyntheticDrive, WorldConfig
from depth_node.geometry import depth_to_points, points_to_depth_map, transform_points

W, H = 320, 96
FX, FY = 721.5377 * W / 1242, 721.5377 * H / 375


def small(seed: int = 0, **kw) -> WorldConfig:
    kw.setdefault("num_frames", 30)
    kw.setdefault("lidar", False)
    return WorldConfig(
        seed=seed,
        width=kw.pop("width", W),
        height=kw.pop("height", H),
        fx=kw.pop("fx", FX),
        fy=kw.pop("fy", FY),
        **kw,
    )


def flat(seed: int = 0, **kw) -> WorldConfig:
    """A level road, no ride wobble: the camera is exactly camera_height above the road plane."""
    return small(seed, max_grade=0.0, camera_wobble=0.0, **kw)


@pytest.fixture(scope="module")
def drive() -> SyntheticDrive:
    return SyntheticDrive(small(3, lidar=True))


def test_frame_fields(drive: SyntheticDrive) -> None:
    f = drive.frame(2)
    assert isinstance(f, Frame) and f.index == 2 and f.timestamp == pytest.approx(0.2)
    assert f.image.shape == (H, W, 3) and f.image.dtype == np.uint8
    assert f.depth.shape == (H, W) and f.depth.dtype == np.float32
    assert f.motion.shape == (H, W) and f.motion.dtype == np.uint8
    assert np.array_equal(f.moving_mask, f.motion != 0)
    assert (
        f.T_world_cam.shape == (4, 4)
        and f.velocity_imu.shape == (3,)
        and f.angular_velocity_imu.shape == (3,)
    )
    assert (
        f.lidar.ndim == 2 and f.lidar.shape[1] == 4 and f.lidar.dtype == np.float32 and len(f.lidar) > 10000
    )
    assert np.all((f.lidar[:, 3] >= 0) & (f.lidar[:, 3] <= 1))
    assert np.all(np.linalg.norm(f.lidar[:, :3], axis=1) <= drive.config.lidar_range + 1e-3)
    np.testing.assert_allclose(drive.K, [[FX, 0, (W - 1) / 2], [0, FY, (H - 1) / 2], [0, 0, 1]])
    # KITTI mounting: LiDAR ~0.27 m behind and ~0.08 m above the camera; IMU further back and lower.
    lidar_in_cam = drive.T_cam_lidar[:3, 3]
    assert lidar_in_cam[2] == pytest.approx(-0.27, abs=0.01) and lidar_in_cam[1] == pytest.approx(
        -0.08, abs=0.01
    )
    imu_in_cam = drive.T_cam_imu[:3, 3]
    assert imu_in_cam[2] < lidar_in_cam[2] - 0.5 and imu_in_cam[1] > lidar_in_cam[1] + 0.5
    np.testing.assert_allclose(drive.T_cam_lidar[:3, :3] @ [1, 0, 0], [0, 0, 1])  # LiDAR x = camera z
    assert len(drive) == 30 and len(list(zip(range(2), drive))) == 2
    with pytest.raises(IndexError):
        drive.frame(30)


def test_deterministic_and_order_independent(drive: SyntheticDrive) -> None:
    a = drive.frame(7)
    drive.frame(1)
    b = SyntheticDrive(small(3, lidar=True)).frame(7)
    c = drive.frame(7)
    for other in (b, c):
        assert np.array_equal(a.image, other.image)
        assert np.array_equal(a.depth, other.depth, equal_nan=True)
        assert np.array_equal(a.moving_mask, other.moving_mask)
        assert np.array_equal(a.lidar, other.lidar)
        assert np.array_equal(a.T_world_cam, other.T_world_cam)


def test_seeds_give_different_layouts() -> None:
    depths = [SyntheticDrive(small(seed, num_frames=2)).frame(0).depth for seed in (10, 11, 12)]
    for i in range(3):
        for j in range(i + 1, 3):
            a, b = np.nan_to_num(depths[i], nan=200.0), np.nan_to_num(depths[j], nan=200.0)
            changed = np.abs(a - b) > 0.1 * np.minimum(a, b)
            assert changed.mean() > 0.2


def test_depth_valid_and_sky_only_above_horizon(drive: SyntheticDrive) -> None:
    for i in (0, 15, 29):
        d = drive.frame(i).depth
        finite = np.isfinite(d)
        assert np.all(d[finite] > 0)
        # Ground closer than 40 m fills every row below its horizon line: no sky there.
        row = int(np.ceil(drive.K[1, 2] + FY * drive.config.camera_height / 40.0)) + 2
        assert finite[row:].all()
        assert (~finite).any(axis=1)[: int(drive.K[1, 2]) - 3].any()  # some sky above the horizon


def test_road_depth_matches_flat_ground_formula() -> None:
    cfg = flat(5, moving_cars=False, parked_density=0.0, num_frames=40)
    drive = SyntheticDrive(cfg)
    cy = drive.K[1, 2]
    rows = np.arange(int(cy + FY * cfg.camera_height / 12.0) + 1, H)
    expected = FY * cfg.camera_height / (rows - cy)
    errs = []
    for i in (0, 20, 39):
        d = drive.frame(i).depth
        errs.append(np.abs(d[rows, W // 2] - expected) / expected)
    errs = np.concatenate(errs)
    assert np.median(errs) < 1e-4
    assert np.percentile(errs, 90) < 1e-3


def test_lidar_agrees_with_rendered_depth() -> None:
    w, h = 640, 192
    drive = SyntheticDrive(
        small(4, lidar=True, num_frames=10, width=w, height=h, fx=721.5377 * w / 1242, fy=721.5377 * h / 375)
    )
    for i in (0, 9):
        f = drive.frame(i)
        pts_cam = transform_points(drive.T_cam_lidar, f.lidar[:, :3])
        sparse = points_to_depth_map(pts_cam, drive.K, h, w)
        both = (sparse > 0) & np.isfinite(f.depth)
        assert both.sum() > 2000
        rel = np.abs(sparse[both] - f.depth[both]) / f.depth[both]
        assert np.median(rel) < 0.01


def test_ego_speed_and_pose_consistency() -> None:
    drive = SyntheticDrive(small(6, num_frames=60, width=32, height=16, fx=18.6, fy=18.6))
    dt = 1.0 / drive.config.fps
    frames = list(drive)
    speeds = np.array([np.linalg.norm(f.velocity_imu) for f in frames])
    assert np.all((speeds >= 5.0) & (speeds <= 15.0))
    assert all(f.velocity_imu[0] > 0.95 * np.linalg.norm(f.velocity_imu) for f in frames)
    for a, b in itertools.pairwise(frames):
        step = np.linalg.norm(b.T_world_cam[:3, 3] - a.T_world_cam[:3, 3])
        assert step == pytest.approx(
            0.5 * (np.linalg.norm(a.velocity_imu) + np.linalg.norm(b.velocity_imu)) * dt, rel=0.02
        )
        R = a.T_world_cam[:3, :3]
        assert np.allclose(R.T @ R, np.eye(3), atol=1e-9)
        # Optical axis stays close to horizontal (gentle pitch) and the camera's y points down.
        assert abs(R[2, 2]) < 0.1 and R[2, 1] < -0.99
    yaw_rates = np.array([f.angular_velocity_imu[2] for f in frames])
    assert np.all(np.abs(yaw_rates) < 0.3)


def _reprojection_error(a: Frame, b: Frame, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative depth error of frame a's pixels moved into frame b as if the world were static."""
    pts = depth_to_points(a.depth, K[0, 0], K[1, 1], K[0, 2], K[1, 2]).reshape(-1, 3)
    ok = np.isfinite(pts[:, 2])
    T_ba = np.linalg.inv(b.T_world_cam) @ a.T_world_cam
    q = transform_points(T_ba, pts[ok])
    u = np.round(K[0, 0] * q[:, 0] / q[:, 2] + K[0, 2]).astype(int)
    v = np.round(K[1, 1] * q[:, 1] / q[:, 2] + K[1, 2]).astype(int)
    inside = (q[:, 2] > 0.5) & (u >= 0) & (u < a.depth.shape[1]) & (v >= 0) & (v < a.depth.shape[0])
    err = np.abs(b.depth[v[inside], u[inside]] - q[inside, 2]) / q[inside, 2]
    return err, a.moving_mask.ravel()[ok][inside]


def test_moving_cars_move_relative_to_the_world() -> None:
    drive = SyntheticDrive(small(7, traffic_density=2.0, num_frames=40))
    checked = 0
    for i in range(0, 39, 3):
        a, b = drive.frame(i), drive.frame(i + 1)
        err, moving = _reprojection_error(a, b, drive.K)
        static = np.median(np.nan_to_num(err[~moving], nan=1.0))
        assert static < 0.005  # the static world reprojects exactly (up to pixel rounding)
        if moving.sum() >= 40:
            # Cars do not: even a lead car keeping pace with us moves ~1 m per frame in the world,
            # which at <= 45 m shows up as >= 2 % depth error after a static-world warp.
            assert np.median(np.nan_to_num(err[moving], nan=1.0)) > max(0.01, 5 * static)
            checked += 1
    assert checked >= 2


def test_road_has_texture_at_near_and_middle_range() -> None:
    for seed in (8, 9):
        cfg = flat(
            seed,
            moving_cars=False,
            parked_density=0.0,
            noise_std=0.0,
            width=640,
            height=192,
            fx=721.5377 * 640 / 1242,
            fy=721.5377 * 192 / 375,
            num_frames=2,
        )
        drive = SyntheticDrive(cfg)
        f = drive.frame(0)
        grey = cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        mean = cv2.blur(grey, (7, 7))
        std = np.sqrt(np.maximum(cv2.blur(grey * grey, (7, 7)) - mean * mean, 0))
        cy = drive.K[1, 2]
        for near, far in ((5.0, 12.0), (12.0, 30.0)):
            r0 = int(cy + cfg.fy * cfg.camera_height / far)
            r1 = int(cy + cfg.fy * cfg.camera_height / near)
            patch = std[r0:r1, 240:400]  # straight ahead: the driving lanes
            assert np.median(patch) > 2.0, (seed, near, far, np.median(patch))


def test_road_intersections_and_zones() -> None:
    from depth_node.data.sim._road import RoadStyle, Zones

    asphalt = np.zeros(3, np.float32)
    road = RoadStyle(1, 3.5, 0.0, 3.5, 0.15, 2.0, 0, True, asphalt, np.array([[100.0, 10.0]]))
    assert road.at_intersection(104.9) and not road.at_intersection(105.1)
    assert road.at_intersection(106.0, margin=2.0)
    no_crossings = RoadStyle(1, 3.5, 0.0, 3.5, 0.15, 2.0, 0, True, asphalt, np.zeros((0, 2)))
    assert not no_crossings.at_intersection(100.0, margin=50.0)
    zones = Zones({1: [(0.0, 50.0, 0), (50.0, 120.0, 1)], -1: []})
    assert [zones.at(1, s) for s in (0.0, 49.9, 50.0, 130.0)] == [0, 0, 1, 2] and zones.at(-1, 10.0) == 2


# ---- stereo: a right camera of a rectified pair --------------------------------------------------
SW, SH = 160, 48


@pytest.fixture(scope="module")
def stereo_frames() -> tuple[SyntheticDrive, Frame, Frame]:
    """Frame 2 of one drive rendered with stereo on and with stereo off."""
    cfg = dict(num_frames=3, width=SW, height=SH, fx=721.5377 * SW / 1242, fy=721.5377 * SH / 375)
    drive = SyntheticDrive(small(11, stereo=True, **cfg))
    return drive, drive.frame(2), SyntheticDrive(small(11, **cfg)).frame(2)


def _right_to_left(left_depth: np.ndarray, fx: float, baseline: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each left pixel lies in the right image of a rectified pair (u_r = u_l - fx*B/z)."""
    h, w = left_depth.shape
    u, v = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_u = (u - fx * baseline / left_depth).astype(np.float32)
    # Bilinear sampling needs both neighbours inside the right image.
    valid = np.isfinite(left_depth) & (map_u >= 0) & (map_u <= w - 1)
    return np.nan_to_num(map_u, nan=-1.0), v, valid


def test_stereo_right_image_agrees_with_left_through_the_baseline(stereo_frames) -> None:
    drive, f, _ = stereo_frames
    assert f.right_image.shape == (SH, SW, 3) and f.right_image.dtype == np.uint8
    assert f.right_depth.shape == (SH, SW) and f.right_depth.dtype == np.float32
    map_u, map_v, valid = _right_to_left(f.depth, drive.K[0, 0], drive.stereo_baseline)
    warped = cv2.remap(f.right_image, map_u, map_v, cv2.INTER_LINEAR).astype(np.float32)
    left, right = f.image.astype(np.float32), f.right_image.astype(np.float32)
    assert valid.mean() > 0.3
    warped_err = np.abs(warped - left).mean(axis=2)[valid].mean()
    unwarped_err = np.abs(right - left).mean(axis=2)[valid].mean()
    assert warped_err < 0.5 * unwarped_err, (warped_err, unwarped_err)


def test_stereo_right_depth_agrees_with_left_depth(stereo_frames) -> None:
    drive, f, _ = stereo_frames
    map_u, map_v, valid = _right_to_left(f.depth, drive.K[0, 0], drive.stereo_baseline)
    # Nearest right pixel: depth does not blend across edges.
    right = f.right_depth[map_v.astype(int)[valid], np.round(map_u[valid]).astype(int)]
    rel = np.nan_to_num(np.abs(right - f.depth[valid]) / f.depth[valid], nan=1.0)
    # Same z in both cameras of a rectified pair; the misses are occlusions and depth edges.
    assert np.median(rel) < 0.01 and np.mean(rel < 0.03) > 0.85


def test_stereo_keeps_the_left_camera_and_off_gives_none(stereo_frames) -> None:
    drive, on, off = stereo_frames
    assert np.array_equal(on.image, off.image)
    assert np.array_equal(on.depth, off.depth, equal_nan=True)
    assert drive.stereo_baseline == pytest.approx(0.54)
    assert off.right_image is None and off.right_depth is None
    assert SyntheticDrive(small(11, num_frames=1, width=32, height=16)).stereo_baseline is None


@pytest.mark.parametrize("baseline", [0.0, -0.5, float("nan")])
def test_bad_stereo_baseline_raises(baseline: float) -> None:
    with pytest.raises(ValueError, match="stereo_baseline"):
        SyntheticDrive(small(stereo=True, stereo_baseline=baseline))


def test_motion_labels_follow_each_cars_motion_relative_to_the_camera_heading() -> None:
    """Label 1 (same way) for cars that move along the car's heading, lead car included; label 2
    (oncoming) for cars that move against it; 0 for everything that does not move."""
    drive = SyntheticDrive(small(5, traffic_density=2.0))
    renderer, ego = drive._renderer, drive._layout.ego
    time = drive._time(10)
    heading = drive.frame(10).T_world_cam[:3, 2]  # the optical axis, in the world
    before, _, keep = renderer.moving_cars(time)
    after, _, keep_after = renderer.moving_cars(time + 0.05)
    table = renderer.frame_table(time, ego.s(time))
    static = len(table.motion) - 10 * len(keep)  # each car is 10 polygons, after the static ones
    assert not table.motion[:static].any()
    labels = table.motion[static::10]
    lead = drive._layout.traffic.lead[keep]
    assert lead.any() and set(labels.tolist()) == {1, 2}
    assert (labels[lead] == 1).all()
    both = np.isin(keep, keep_after)
    along = (after[np.isin(keep_after, keep)] - before[both]) @ heading
    np.testing.assert_array_equal(labels[both], np.where(along > 0, 1, 2))
    frame = drive.frame(10)
    assert set(np.unique(frame.motion).tolist()) <= {0, 1, 2} and frame.moving_mask.any()
