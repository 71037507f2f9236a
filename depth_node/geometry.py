"""Camera geometry shared by the runtime, replay and training (the one copy; see DESIGN.md).

Conventions: camera optical frame (REP 103: x right, y down, z forward); pixel (u, v) is the
column/row index of the pixel, and a pixel's centre sits at its integer index, as in
depth_image_proc: x = (u - cx) * z / fx, y = (v - cy) * z / fy.
"""

from __future__ import annotations

import cv2
import numpy as np


def scale_intrinsics(K: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """Return K for an image resized from ``from_size`` to ``to_size`` (both ``(width, height)``).

    Scales fx, cx by the width ratio and fy, cy by the height ratio (Monodepth2's convention, which
    is what the networks are trained with). Works for a 3x3 K or a 3x4 projection matrix P.
    """
    sx = to_size[0] / from_size[0]
    sy = to_size[1] / from_size[1]
    scaled = np.array(K, dtype=np.float64, copy=True)
    scaled[0, :] *= sx
    scaled[1, :] *= sy
    return scaled


def crop_intrinsics(K: np.ndarray, left: int, top: int) -> np.ndarray:
    """Return K after cropping ``left`` columns and ``top`` rows off the image."""
    cropped = np.array(K, dtype=np.float64, copy=True)
    cropped[0, 2] -= left
    cropped[1, 2] -= top
    return cropped


def crop_image(image: np.ndarray, crop: tuple[int, int, int, int] | None) -> np.ndarray:
    """The ``crop`` = (left, top, width, height) part of an image (a view); the image itself for None."""
    if crop is None:
        return image
    left, top, width, height = crop
    return image[top : top + height, left : left + width]


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Column (u) and row (v) index images, float32, shape (height, width)."""
    # Straight to float32: np.mgrid builds int64 grids first (16 bytes a pixel before the cast).
    u, v = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return u, v


def depth_to_points(
    depth: np.ndarray, fx: float, fy: float, cx: float, cy: float, out: np.ndarray | None = None
) -> np.ndarray:
    """Back-project a depth image (metres, NaN = invalid) into an (H, W, 3) float32 array of x, y, z.

    Invalid pixels stay NaN in all three coordinates, which is what an organized PointCloud2 wants.
    ``out``: an (H, W, C >= 3) float32 array (e.g. a cloud with an rgb channel) whose first three
    channels receive x, y, z; it is returned.
    """
    depth = np.asarray(depth, dtype=np.float32)
    height, width = depth.shape
    if out is None:
        out = np.empty((height, width, 3), dtype=np.float32)
    # A row of u and a column of v broadcast against the depth: no pixel grid the size of the image.
    u = np.arange(width, dtype=np.float32) - np.float32(cx)
    v = np.arange(height, dtype=np.float32)[:, None] - np.float32(cy)
    x, y = out[..., 0], out[..., 1]
    np.multiply(u, depth, out=x)
    np.divide(x, np.float32(fx), out=x)
    np.multiply(v, depth, out=y)
    np.divide(y, np.float32(fy), out=y)
    out[..., 2] = depth
    return out


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 rigid transform to (N, 3) points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ T[:3, :3].T + T[:3, 3]


def project_points(points_cam: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project (N, 3) camera-frame points with a 3x3 K or 3x4 P. Returns float u, v and depth z."""
    points_cam = np.asarray(points_cam, dtype=np.float64)
    P = np.asarray(P, dtype=np.float64)
    if P.shape == (3, 3):
        P = np.hstack([P, np.zeros((3, 1))])
    homogeneous = np.hstack([points_cam, np.ones((len(points_cam), 1))]) @ P.T
    z = homogeneous[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = homogeneous[:, 0] / z
        v = homogeneous[:, 1] / z
    return u, v, z


def points_to_depth_map(points_cam: np.ndarray, P: np.ndarray, height: int, width: int) -> np.ndarray:
    """Sparse depth image from camera-frame points, the way KITTI's ground truth is built.

    Points behind the camera are dropped, image coordinates are rounded to the nearest pixel,
    points outside the image are dropped, and where several points land on one pixel the nearest
    wins. Returns float32 metres with 0 where no point landed (KITTI's convention for sparse GT).

    Unlike Monodepth2's ``generate_depth_map`` there is no ``- 1`` after rounding: that offset comes
    from MATLAB's 1-based indexing in the devkit and shifts every point by one pixel.
    """
    u, v, z = project_points(points_cam, P)
    in_front = z > 0
    u, v, z = np.round(u[in_front]).astype(np.int64), np.round(v[in_front]).astype(np.int64), z[in_front]
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    u, v, z = u[inside], v[inside], z[inside]
    depth = np.zeros((height, width), dtype=np.float32)
    # Write far points first so that nearer ones overwrite them: the nearest point wins per pixel.
    order = np.argsort(-z)
    depth[v[order], u[order]] = z[order]
    return depth


def rotation_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """R = Rz(yaw) @ Ry(pitch) @ Rx(roll): the attitude convention of KITTI's OXTS records."""
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def make_transform(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """4x4 homogeneous transform from a 3x3 rotation and a translation."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = np.asarray(t, dtype=np.float64).reshape(3)
    return T


def quaternion_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """3x3 rotation of a quaternion (normalised here), geometry_msgs order x, y, z, w."""
    q = np.array([x, y, z, w], dtype=np.float64)
    norm = np.linalg.norm(q)
    if norm == 0:
        raise ValueError("zero quaternion")
    x, y, z, w = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(R: np.ndarray) -> tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w) of a rotation matrix, via OpenCV's axis-angle."""
    rvec, _ = cv2.Rodrigues(np.asarray(R, dtype=np.float64))
    rvec = rvec.ravel()
    angle = float(np.linalg.norm(rvec))
    if angle < 1e-12:
        return 0.0, 0.0, 0.0, 1.0
    axis = rvec / angle * np.sin(angle / 2.0)
    return float(axis[0]), float(axis[1]), float(axis[2]), float(np.cos(angle / 2.0))


def resize_area(image: np.ndarray, size: tuple[int, int], dst: np.ndarray | None = None) -> np.ndarray:
    """``image`` resized to ``size`` = (width, height) with INTER_AREA: the training and run-time rule.

    A large shrink (a 1080p camera into a 320x96 network) goes in steps: :func:`box_shrink`'s exact
    box averages, then INTER_AREA for what is left. Same pixel footprint, half a grey level from one
    step on average (at most a few), at a third of the cost or less.
    """
    height, width = image.shape[:2]
    if (width, height) == tuple(size):
        if dst is None:
            return image
        dst[...] = image
        return dst
    return cv2.resize(box_shrink(image, size), tuple(size), dst=dst, interpolation=cv2.INTER_AREA)


def box_shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The exact box-average steps of :func:`resize_area` towards ``size`` (w, h); ``image`` itself
    when none applies. Each is a fast path: halvings while both sides are even and the image stays at
    least ``size`` (OpenCV's vectorised 2x2 INTER_AREA: 1920x1080 -> 480x270 costs a third of one 6x
    box), then the largest whole factor that divides both sides (1242x375 -> 414x125 for 320x96;
    an odd factor as a box filter read at the block centres).

    Every output pixel is the mean of a whole block of input pixels, so the result is the camera
    image binned, aligned with it block for block.
    """
    height, width = image.shape[:2]
    for _ in range(box_halvings(width, height, size)):
        width, height = width // 2, height // 2
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    step = _whole_shrink(width, height, size)
    if step % 2 == 1 and step > 1:
        # The same block means at twice the speed: a box filter read at each block's centre pixel.
        # Bit-identical for odd steps, where a block's mean is never a tie between two grey levels;
        # even steps keep INTER_AREA (its ties round otherwise).
        box = cv2.blur(image, (step, step))
        image = cv2.resize(box, (width // step, height // step), interpolation=cv2.INTER_NEAREST_EXACT)
    elif step > 1:
        image = cv2.resize(image, (width // step, height // step), interpolation=cv2.INTER_AREA)
    return image


def box_halvings(width: int, height: int, size: tuple[int, int]) -> int:
    """How many 2x2 halvings :func:`box_shrink` starts with: while both sides are even and the image
    stays at least ``size`` (w, h)."""
    count = 0
    while width % 2 == 0 and height % 2 == 0 and width // 2 >= size[0] and height // 2 >= size[1]:
        width, height, count = width // 2, height // 2, count + 1
    return count


def _whole_shrink(width: int, height: int, size: tuple[int, int]) -> int:
    """The largest k >= 2 dividing width and height with the image still at least ``size`` after, or 1."""
    most = min(width // size[0], height // size[1])
    return next((k for k in range(most, 1, -1) if width % k == 0 and height % k == 0), 1)
