"""depth_node.geometry: intrinsics, back-projection and projection, rigid transforms, rotations.

Hand-computed values on tiny inputs, round trips, and properties (``hypothesis``) over random
cameras and rotations.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depth_node.geometry import (
    box_shrink,
    crop_image,
    crop_intrinsics,
    depth_to_points,
    make_transform,
    matrix_to_quaternion,
    pixel_grid,
    points_to_depth_map,
    project_points,
    quaternion_to_matrix,
    resize_area,
    rotation_matrix,
    scale_intrinsics,
    transform_points,
)

K = np.array([[721.5, 0.0, 609.6], [0.0, 721.5, 172.9], [0.0, 0.0, 1.0]])  # KITTI 2011_09_26 P_rect_02
angles = st.floats(-np.pi, np.pi, allow_nan=False)
unit_quaternions = (
    st.tuples(*[st.floats(-1.0, 1.0)] * 4)
    .filter(lambda q: np.linalg.norm(q) > 0.1)
    .map(lambda q: tuple(np.asarray(q) / np.linalg.norm(q)))
)
sizes = st.tuples(st.integers(8, 2000), st.integers(8, 2000))


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    return quaternion_to_matrix(*(axis * np.sin(angle / 2)), np.cos(angle / 2))


# ---------------------------------------------------------------- intrinsics and crops


def test_scale_intrinsics_by_hand() -> None:
    scaled = scale_intrinsics(K, (1242, 375), (621, 125))
    np.testing.assert_allclose(scaled, [[360.75, 0, 304.8], [0, 240.5, 172.9 / 3], [0, 0, 1]])
    # A 3x4 P: the baseline term fx * tx scales with the width too.
    P = np.hstack([K, [[-387.57], [0.0], [0.0]]])
    assert scale_intrinsics(P, (1242, 375), (621, 125))[0, 3] == pytest.approx(-387.57 / 2)
    assert scale_intrinsics(K, (10, 10), (20, 20)) is not K and K[0, 0] == 721.5  # a copy


@settings(deadline=None)
@given(sizes, sizes)
def test_scale_intrinsics_there_and_back_gives_k(from_size: tuple, to_size: tuple) -> None:
    there = scale_intrinsics(K, from_size, to_size)
    np.testing.assert_allclose(scale_intrinsics(there, to_size, from_size), K, rtol=1e-12)
    assert there[2].tolist() == [0.0, 0.0, 1.0]


@settings(deadline=None)
@given(st.integers(0, 600), st.integers(0, 170), st.floats(-20, 20), st.floats(-5, 5), st.floats(1, 80))
def test_a_crop_moves_every_projection_by_its_offset(
    left: int, top: int, x: float, y: float, z: float
) -> None:
    u, v, _ = project_points(np.array([[x, y, z]]), K)
    uc, vc, _ = project_points(np.array([[x, y, z]]), crop_intrinsics(K, left, top))
    assert uc[0] == pytest.approx(u[0] - left) and vc[0] == pytest.approx(v[0] - top)


def test_crop_image_is_a_view_of_the_region() -> None:
    image = np.arange(6 * 8).reshape(6, 8)
    part = crop_image(image, (2, 1, 3, 4))  # left, top, width, height
    assert part.shape == (4, 3) and part[0, 0] == image[1, 2] and part[-1, -1] == image[4, 4]
    assert np.shares_memory(part, image)
    assert crop_image(image, None) is image


# ---------------------------------------------------------------- back-projection and projection


def test_pixel_grid() -> None:
    u, v = pixel_grid(2, 3)
    assert u.dtype == v.dtype == np.float32
    assert u.tolist() == [[0, 1, 2], [0, 1, 2]] and v.tolist() == [[0, 0, 0], [1, 1, 1]]


def test_depth_to_points_by_hand() -> None:
    depth = np.array([[2.0, np.nan, 4.0], [1.0, 3.0, 0.5]], np.float32)
    points = depth_to_points(depth, fx=2.0, fy=4.0, cx=1.0, cy=1.0)
    assert points.shape == (2, 3, 3) and points.dtype == np.float32
    np.testing.assert_allclose(points[0, 0], [(0 - 1) * 2 / 2, (0 - 1) * 2 / 4, 2])
    np.testing.assert_allclose(points[0, 2], [(2 - 1) * 4 / 2, (0 - 1) * 4 / 4, 4])
    np.testing.assert_allclose(points[1, 1], [0, 0, 3])  # the principal point looks straight ahead
    assert np.isnan(points[0, 1]).all()  # invalid stays NaN in x, y and z


@settings(deadline=None)
@given(
    st.floats(20.0, 800.0),
    st.floats(20.0, 800.0),
    st.floats(-0.4, 0.4),
    st.floats(-0.4, 0.4),
    st.floats(2.0, 30.0),
)
def test_depth_to_points_then_points_to_depth_map_reproduces_a_plane(
    fx: float, fy: float, tilt_x: float, tilt_y: float, distance: float
) -> None:
    """A tilted plane n . X = d seen by a random camera: back-project, re-project, same depth."""
    height, width = 24, 32
    cx, cy = width / 2 - 0.3, height / 2 + 0.7
    u, v = pixel_grid(height, width)
    normal = np.array([tilt_x, tilt_y, 1.0])
    rays = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], axis=-1)
    depth = (distance / (rays @ normal)).astype(np.float32)  # z where each pixel's ray meets the plane
    assert (depth > 0).all()
    points = depth_to_points(depth, fx, fy, cx, cy)
    np.testing.assert_allclose(points.reshape(-1, 3) @ normal, distance, rtol=1e-4)  # on the plane
    Kc = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    np.testing.assert_array_equal(points_to_depth_map(points.reshape(-1, 3), Kc, height, width), depth)


def test_points_to_depth_map_by_hand() -> None:
    Kc = np.array([[10.0, 0.0, 2.0], [0.0, 10.0, 1.0], [0.0, 0.0, 1.0]])
    points = np.array(
        [
            [0.0, 0.0, 4.0],  # principal point (2, 1)
            [0.0, 0.0, 3.0],  # same pixel, nearer: wins whatever the order
            [0.0, 0.0, 5.0],
            [0.0, 0.0, -3.0],  # behind the camera
            [0.26, 0.0, 2.0],  # u = 2 + 1.3 -> rounds to 3
            [0.0, 0.34, 2.0],  # v = 1 + 1.7 -> rounds to 3: outside a 3-row image
        ]
    )
    depth = points_to_depth_map(points, Kc, height=3, width=5)
    expected = np.zeros((3, 5), np.float32)
    expected[1, 2], expected[1, 3] = 3.0, 2.0
    np.testing.assert_array_equal(depth, expected)  # 0 where no point landed (KITTI's sparse GT)
    # A 3x4 P with a baseline term shifts u by P[0, 3] / z.
    P = np.hstack([Kc, [[-20.0], [0.0], [0.0]]])
    u, v, z = project_points(np.array([[0.0, 0.0, 4.0]]), P)
    assert (u[0], v[0], z[0]) == (2.0 - 20.0 / 4.0, 1.0, 4.0)


# ---------------------------------------------------------------- rigid transforms and rotations


def test_rotation_matrix_axes_by_hand() -> None:
    quarter = np.pi / 2
    np.testing.assert_allclose(rotation_matrix(0, 0, quarter) @ [1, 0, 0], [0, 1, 0], atol=1e-12)  # yaw
    np.testing.assert_allclose(rotation_matrix(0, quarter, 0) @ [0, 0, 1], [1, 0, 0], atol=1e-12)  # pitch
    np.testing.assert_allclose(rotation_matrix(quarter, 0, 0) @ [0, 1, 0], [0, 0, 1], atol=1e-12)  # roll


@settings(deadline=None)
@given(angles, angles, angles)
def test_rotation_matrix_is_a_rotation_in_zyx_order(roll: float, pitch: float, yaw: float) -> None:
    R = rotation_matrix(roll, pitch, yaw)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    composed = rotation_matrix(0, 0, yaw) @ rotation_matrix(0, pitch, 0) @ rotation_matrix(roll, 0, 0)
    np.testing.assert_allclose(R, composed, atol=1e-12)


@settings(deadline=None)
@given(angles, angles, angles, st.tuples(*[st.floats(-100, 100)] * 3))
def test_make_transform_and_transform_points(roll: float, pitch: float, yaw: float, t: tuple) -> None:
    R = rotation_matrix(roll, pitch, yaw)
    T = make_transform(R, t)
    assert T.shape == (4, 4) and T[3].tolist() == [0, 0, 0, 1]
    points = np.random.default_rng(0).uniform(-50, 50, (10, 3))
    moved = transform_points(T, points)
    np.testing.assert_allclose(moved, points @ R.T + np.asarray(t), atol=1e-9)
    np.testing.assert_allclose(transform_points(np.linalg.inv(T), moved), points, atol=1e-9)


def test_quaternion_to_matrix_by_hand() -> None:
    np.testing.assert_allclose(quaternion_to_matrix(0, 0, 0, 1), np.eye(3))
    half = np.sqrt(0.5)
    np.testing.assert_allclose(  # 90 degrees about z
        quaternion_to_matrix(0, 0, half, half), [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12
    )
    np.testing.assert_allclose(quaternion_to_matrix(2, 0, 0, 0), np.diag([1.0, -1.0, -1.0]))  # normalised
    with pytest.raises(ValueError, match="zero quaternion"):
        quaternion_to_matrix(0, 0, 0, 0)


@settings(deadline=None)
@given(unit_quaternions)
def test_quaternion_matrix_quaternion_round_trip(q: tuple) -> None:
    R = quaternion_to_matrix(*q)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(quaternion_to_matrix(*(-np.asarray(q))), R, atol=1e-12)  # q and -q
    back = np.asarray(matrix_to_quaternion(R))
    assert back[3] >= -1e-12 and np.linalg.norm(back) == pytest.approx(1.0)  # w >= 0: angle in [0, pi]
    # Loose at the edges: OpenCV's Rodrigues loses ~1e-5 within 1e-5 rad of 0 and of pi.
    np.testing.assert_allclose(quaternion_to_matrix(*back), R, atol=5e-5)


@settings(deadline=None)
@given(
    st.tuples(*[st.floats(-1, 1)] * 3).filter(lambda a: np.linalg.norm(a) > 0.1),
    st.floats(1e-4, np.pi - 1e-4),
)
def test_matrix_to_quaternion_is_exact_away_from_0_and_pi(axis: tuple, angle: float) -> None:
    R = _axis_angle(np.asarray(axis), angle)
    np.testing.assert_allclose(quaternion_to_matrix(*matrix_to_quaternion(R)), R, atol=1e-9)
    unit_axis = np.asarray(axis) / np.linalg.norm(axis)
    expected = (*(unit_axis * np.sin(angle / 2)), np.cos(angle / 2))  # w >= 0: the angle is in [0, pi]
    np.testing.assert_allclose(matrix_to_quaternion(R), expected, atol=1e-9)


def test_matrix_to_quaternion_at_the_edges() -> None:
    assert matrix_to_quaternion(np.eye(3)) == (0.0, 0.0, 0.0, 1.0)
    half_turn = np.abs(matrix_to_quaternion(np.diag([1.0, -1.0, -1.0])))  # about x: (+-1, 0, 0, 0)
    np.testing.assert_allclose(half_turn, [1.0, 0.0, 0.0, 0.0], atol=1e-12)
    for axis in ([1, 1, 0], [0.3, -0.5, 0.8]):
        R = _axis_angle(np.asarray(axis), np.pi)
        np.testing.assert_allclose(quaternion_to_matrix(*matrix_to_quaternion(R)), R, atol=1e-9)


def test_resize_area_is_opencvs_area_rule_in_one_or_two_steps() -> None:
    rng = np.random.default_rng(3)
    camera = cv2.GaussianBlur(rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8), (0, 0), 2)
    # A whole factor (KITTI's 640x192 drives into a 320x96 network): one step, exactly INTER_AREA.
    kitti = camera[:192, :640]
    np.testing.assert_array_equal(
        resize_area(kitti, (320, 96)), cv2.resize(kitti, (320, 96), interpolation=cv2.INTER_AREA)
    )
    # 1080p into 320x96: two 2x halvings (480x270), then INTER_AREA; half a grey level from one step.
    steps = resize_area(camera, (320, 96)).astype(int)
    one_step = cv2.resize(camera, (320, 96), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(steps - one_step).mean() < 1.0 and np.abs(steps - one_step).max() <= 8
    halved = cv2.resize(camera, (960, 540), interpolation=cv2.INTER_AREA)
    halved = cv2.resize(halved, (480, 270), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(steps, cv2.resize(halved, (320, 96), interpolation=cv2.INTER_AREA))
    out = np.empty((96, 320, 3), np.uint8)
    assert resize_area(camera, (320, 96), dst=out) is out and np.array_equal(out, steps)
    # KITTI's full 1242x375 into 320x96: no halving (odd rows), a 3x box, then INTER_AREA.
    full = camera[:375, :1242]
    boxed = cv2.resize(full, (414, 125), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(
        resize_area(full, (320, 96)), cv2.resize(boxed, (320, 96), interpolation=cv2.INTER_AREA)
    )
    # No whole factor divides 375 rows down to 192: one step.
    odd = camera[:375, :1242]
    np.testing.assert_array_equal(
        resize_area(odd, (640, 192)), cv2.resize(odd, (640, 192), interpolation=cv2.INTER_AREA)
    )
    assert resize_area(kitti, (640, 192)) is kitti


@settings(max_examples=40, deadline=None)
@given(
    step=st.sampled_from([3, 5, 7]),
    blocks=st.tuples(st.integers(0, 8), st.integers(0, 8)),
    channels=st.sampled_from([1, 3]),
    seed=st.integers(0, 2**16),
)
def test_an_odd_whole_shrink_is_the_rounded_block_mean(
    step: int, blocks: tuple[int, int], channels: int, seed: int
) -> None:
    # Odd block counts: no 2x halving applies first, so one step of the box filter path.
    cols, rows = 2 * blocks[0] + 1, 2 * blocks[1] + 1
    shape = (rows * step, cols * step) + ((3,) if channels == 3 else ())
    image = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    sums = image.reshape(rows, step, cols, step, -1).sum(axis=(1, 3), dtype=np.int64)
    mean = (2 * sums + step * step) // (2 * step * step)  # round half up; an odd step has no ties
    np.testing.assert_array_equal(box_shrink(image, (cols, rows)), mean.reshape(image[::step, ::step].shape))
