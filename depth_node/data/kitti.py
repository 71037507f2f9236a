"""KITTI raw layout: readers that work on the real dataset, and a writer for synthetic drives.

(Over 500 lines: the layout's paths, its readers and its writer share every file-name and format rule,
so they stay together: a change to the layout is one change here.)

Layout (as in the real KITTI raw download)::

    <root>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt
    <root>/<date>/<date>_drive_<NNNN>_sync/
        image_02/data/%010d.png + image_02/timestamps.txt
        image_03/data/%010d.png + image_03/timestamps.txt (the right camera; stereo drives only)
        velodyne_points/data/%010d.bin (float32 x, y, z, reflectance)
            + timestamps.txt, timestamps_start.txt, timestamps_end.txt
        oxts/data/%010d.txt (30 values) + oxts/timestamps.txt + oxts/dataformat.txt
        proj_depth/groundtruth/image_02/%010d.png (KITTI depth benchmark format: uint16, depth * 256)
            (+ image_03/ for the right camera of a stereo drive)
        proj_depth/motion/image_02/%010d.png (synthetic drives only, not KITTI: uint8 labels of
            depth_node.metrics.MOTION_LABELS, 0 static, 1 a car moving the camera's way, 2 an oncoming
            car; evaluation scores each region on its own)

Calibration is composed the way Monodepth2's ``generate_depth_map`` does it:
``P_rect_0c @ R_rect_00 @ [R|T]_velo_to_cam``. ``KittiCalib.K`` is the *rectified* intrinsics
(``P_rect[:, :3]``), the ones that go with the ``_sync`` images, and ``T_cam_velo`` ends in the
rectified frame of camera ``c`` itself (the baseline column of ``P_rect`` divided out), so
``K @ T_cam_velo[:3]`` equals KITTI's ``P_velo2im``.

The synthetic world's (left) camera is written as camera 2, its stereo right camera as camera 3:
camera 3's rectified offset is camera 2's minus (baseline, 0, 0), so ``P_rect_03[0, 3] -
P_rect_02[0, 3] = -fx * baseline`` as in real KITTI (``stereo_baseline`` reads it back; a drive
without stereo gets KITTI's 0.54 m). Cameras 0 and 1 get KITTI-like offsets so that third-party
readers that expect all four cameras parse the files.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from tqdm import tqdm

from depth_node.geometry import (
    make_transform,
    points_to_depth_map,
    rotation_matrix,
    scale_intrinsics,
    transform_points,
)

EARTH_RADIUS = 6378137.0  # the devkit's er (WGS84 equatorial radius), metres
GRAVITY = 9.81
OXTS_FIELDS = (
    "lat", "lon", "alt", "roll", "pitch", "yaw", "vn", "ve", "vf", "vl", "vu",
    "ax", "ay", "az", "af", "al", "au", "wx", "wy", "wz", "wf", "wl", "wu",
    "pos_accuracy", "vel_accuracy", "navstat", "numsats", "posmode", "velmode", "orimode",
)  # fmt: skip

# The dataformat.txt shipped with every KITTI raw drive (its typo in pos_accuracy included).
OXTS_DATAFORMAT = """lat:   latitude of the oxts-unit (deg)
lon:   longitude of the oxts-unit (deg)
alt:   altitude of the oxts-unit (m)
roll:  roll angle (rad),  0 = level, positive = left side up (-pi..pi)
pitch: pitch angle (rad), 0 = level, positive = front down (-pi/2..pi/2)
yaw:   heading (rad),     0 = east,  positive = counter clockwise (-pi..pi)
vn:    velocity towards north (m/s)
ve:    velocity towards east (m/s)
vf:    forward velocity, i.e. parallel to earth-surface (m/s)
vl:    leftward velocity, i.e. parallel to earth-surface (m/s)
vu:    upward velocity, i.e. perpendicular to earth-surface (m/s)
ax:    acceleration in x, i.e. in direction of vehicle front (m/s^2)
ay:    acceleration in y, i.e. in direction of vehicle left (m/s^2)
az:    acceleration in z, i.e. in direction of vehicle top (m/s^2)
af:    forward acceleration (m/s^2)
al:    leftward acceleration (m/s^2)
au:    upward acceleration (m/s^2)
wx:    angular rate around x (rad/s)
wy:    angular rate around y (rad/s)
wz:    angular rate around z (rad/s)
wf:    angular rate around forward axis (rad/s)
wl:    angular rate around leftward axis (rad/s)
wu:    angular rate around upward axis (rad/s)
pos_accuracy:  velocity accuracy (north/east in m)
vel_accuracy:  velocity accuracy (north/east in m/s)
navstat:       navigation status (see navstat_to_string)
numsats:       number of satellites tracked by primary GPS receiver
posmode:       position mode of primary GPS receiver (see gps_mode_to_string)
velmode:       velocity mode of primary GPS receiver (see gps_mode_to_string)
orimode:       orientation mode of primary GPS receiver (see gps_mode_to_string)
"""

# Where the synthetic drives sit on the globe (Karlsruhe, like KITTI) and when they were driven.
SIM_LATLON_ALT = (49.011212804408, 8.4228850417969, 112.83492279053)
SIM_START_HOUR = 13
# KITTI-like rig around the synthetic camera (used as camera 2): rectified-frame offsets of each
# camera relative to camera 0 (the column K^-1 P_rect[:, 3]), and the rectifying rotation R_rect_00.
# Camera 3 (the right camera) is derived from camera 2 and the drive's baseline (_camera_offsets).
SIM_CAMERA_OFFSETS = {
    0: (0.0, 0.0, 0.0),
    1: (-0.5371, 0.0, 0.0),
    2: (0.06, -0.0003, 0.0027),
}
SIM_STEREO_BASELINE = 0.54  # metres, camera 2 -> camera 3 of drives without a right camera (KITTI's)
_KITTI_R_RECT_00 = np.array(
    [
        [9.999239e-01, 9.837760e-03, -7.445048e-03],
        [-9.869795e-03, 9.999421e-01, -4.278459e-03],
        [7.402527e-03, 4.351614e-03, 9.999631e-01],
    ]
)


class SimDrive(Protocol):
    """What write_drive reads of a ``depth_node.data.sim.world.SyntheticDrive`` (no import: sim uses kitti).

    Its frames carry index, timestamp, image, depth, motion, lidar, T_world_cam, velocity_imu,
    angular_velocity_imu and, with stereo, right_image and right_depth (``world.Frame``); ``config``
    has width, height and fps.
    """

    config: Any
    K: np.ndarray
    T_cam_lidar: np.ndarray
    T_cam_imu: np.ndarray

    @property
    def stereo_baseline(self) -> float | None: ...  # metres; None: no right camera

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...


class KittiLayoutError(ValueError):
    """A path is not (or not a complete) KITTI raw drive / date folder."""


@dataclass
class KittiCalib:
    """Calibration of one camera of a KITTI raw date folder."""

    K: np.ndarray  # 3x3 rectified intrinsics (P_rect[:, :3]) at image_size
    P_rect: np.ndarray  # 3x4 P_rect_0c as in the file (projects rectified cam-0 points)
    T_cam_velo: np.ndarray  # 4x4: velodyne points -> rectified frame of this camera
    T_velo_imu: np.ndarray | None  # 4x4: IMU/OXTS points -> velodyne (None: no calib_imu_to_velo.txt)
    image_size: tuple[int, int]  # (width, height) of the rectified images, S_rect_0c
    cam: int = 2

    @property
    def T_cam_imu(self) -> np.ndarray | None:
        """4x4: IMU/OXTS points -> rectified camera frame."""
        return None if self.T_velo_imu is None else self.T_cam_velo @ self.T_velo_imu


# --------------------------------------------------------------------------------------------
# Paths


def drive_dir_name(date: str, drive_number: int) -> str:
    return f"{date}_drive_{drive_number:04d}_sync"


def image_path(drive_dir: Path | str, index: int, cam: int = 2, ext: str = ".png") -> Path:
    return Path(drive_dir) / f"image_{cam:02d}" / "data" / f"{index:010d}{ext}"


def velodyne_path(drive_dir: Path | str, index: int) -> Path:
    return Path(drive_dir) / "velodyne_points" / "data" / f"{index:010d}.bin"


def oxts_path(drive_dir: Path | str, index: int) -> Path:
    return Path(drive_dir) / "oxts" / "data" / f"{index:010d}.txt"


def depth_gt_path(drive_dir: Path | str, index: int, cam: int = 2) -> Path:
    """Dense/annotated ground truth inside a drive folder (the depth benchmark's sub-path)."""
    return Path(drive_dir) / "proj_depth" / "groundtruth" / f"image_{cam:02d}" / f"{index:010d}.png"


def motion_labels_path(drive_dir: Path | str, index: int, cam: int = 2) -> Path:
    """The synthetic world's per-pixel motion labels (this project's addition; real KITTI has none)."""
    return Path(drive_dir) / "proj_depth" / "motion" / f"image_{cam:02d}" / f"{index:010d}.png"


def frame_indices(drive_dir: Path | str, cam: int = 2) -> list[int]:
    """Sorted frame indices of a drive, from the file names in image_0c/data."""
    data_dir = Path(drive_dir) / f"image_{cam:02d}" / "data"
    if not data_dir.is_dir():
        raise KittiLayoutError(
            f"{data_dir}: not found (expected a KITTI raw drive with image_{cam:02d}/data)"
        )
    return sorted(int(p.stem) for p in data_dir.iterdir() if p.stem.isdigit() and p.suffix == ".png")


def check_drive(drive_dir: Path | str, cam: int = 2) -> list[int]:
    """Check that ``drive_dir`` is a usable KITTI raw drive; return its frame indices.

    Needs image_0c/data with PNGs, image_0c/timestamps.txt with one line per image, and the
    calibration files in the parent (date) folder. Velodyne and OXTS folders are optional, but
    when present their timestamps must match their data files.
    """
    drive_dir = Path(drive_dir)
    if not drive_dir.is_dir():
        raise KittiLayoutError(f"{drive_dir}: drive directory not found")
    indices = frame_indices(drive_dir, cam)
    if not indices:
        raise KittiLayoutError(f"{drive_dir / f'image_{cam:02d}' / 'data'}: no .png images")
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt"):
        if not (drive_dir.parent / name).is_file():
            raise KittiLayoutError(
                f"{drive_dir.parent / name}: missing (calibration lives in the date folder)"
            )
    for sensor, ext, count in (
        (f"image_{cam:02d}", ".png", len(indices)),
        ("velodyne_points", ".bin", None),
        ("oxts", ".txt", None),
    ):
        folder = drive_dir / sensor
        if count is None:
            if not folder.is_dir():
                continue
            count = sum(1 for p in (folder / "data").glob(f"*{ext}"))
        stamps = folder / "timestamps.txt"
        if not stamps.is_file():
            raise KittiLayoutError(f"{stamps}: missing")
        lines = _timestamp_lines(stamps)
        if len(lines) < count:
            raise KittiLayoutError(f"{stamps}: {len(lines)} timestamps for {count} {ext} files")
    return indices


# --------------------------------------------------------------------------------------------
# Readers


def read_calib_file(path: Path | str) -> dict[str, np.ndarray]:
    """Parse a KITTI calibration text file into arrays (non-numeric lines such as calib_time skipped)."""
    data: dict[str, np.ndarray] = {}
    for line in Path(path).read_text().splitlines():
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        try:
            data[key.strip()] = np.array([float(x) for x in value.split()], dtype=np.float64)
        except ValueError:
            continue  # calib_time: 09-Jan-2012 13:57:47
    return data


def _find_calib_dir(date_dir: Path) -> Path:
    # Accept a drive folder too: its parent holds the calibration.
    for candidate in (date_dir, date_dir.parent):
        if (candidate / "calib_cam_to_cam.txt").is_file():
            return candidate
    raise KittiLayoutError(f"{date_dir}: no calib_cam_to_cam.txt (expected a KITTI raw date folder)")


def _rigid(calib: dict[str, np.ndarray], path: Path) -> np.ndarray:
    if "R" not in calib or "T" not in calib or calib["R"].size != 9 or calib["T"].size != 3:
        raise KittiLayoutError(f"{path}: expected 'R: 9 values' and 'T: 3 values'")
    return make_transform(calib["R"].reshape(3, 3), calib["T"])


def read_calib(date_dir: Path | str, cam: int = 2) -> KittiCalib:
    """Read the calibration of camera ``cam`` from a KITTI raw date folder (or one of its drives)."""
    calib_dir = _find_calib_dir(Path(date_dir))
    cam_path = calib_dir / "calib_cam_to_cam.txt"
    cam2cam = read_calib_file(cam_path)
    keys = (f"P_rect_{cam:02d}", "R_rect_00", f"S_rect_{cam:02d}")
    if any(k not in cam2cam for k in keys):
        raise KittiLayoutError(f"{cam_path}: missing one of {', '.join(keys)}")
    P_rect = cam2cam[f"P_rect_{cam:02d}"].reshape(3, 4)
    R_rect = np.eye(4)
    R_rect[:3, :3] = cam2cam["R_rect_00"].reshape(3, 3)
    velo_path = calib_dir / "calib_velo_to_cam.txt"
    if not velo_path.is_file():
        raise KittiLayoutError(f"{velo_path}: missing")
    T_cam0_velo = _rigid(read_calib_file(velo_path), velo_path)
    K = P_rect[:, :3].copy()
    T_cam_rect0 = make_transform(np.eye(3), _rect_offset(P_rect))
    imu_path = calib_dir / "calib_imu_to_velo.txt"
    T_velo_imu = _rigid(read_calib_file(imu_path), imu_path) if imu_path.is_file() else None
    w, h = cam2cam[f"S_rect_{cam:02d}"]
    return KittiCalib(
        K=K,
        P_rect=P_rect,
        T_cam_velo=T_cam_rect0 @ R_rect @ T_cam0_velo,
        T_velo_imu=T_velo_imu,
        image_size=(round(w), round(h)),
        cam=cam,
    )


def _rect_offset(P_rect: np.ndarray) -> np.ndarray:
    """P_rect = K [I | t]: t moves rectified cam-0 points into this camera's rectified frame."""
    return np.linalg.solve(P_rect[:, :3], P_rect[:, 3])


def stereo_baseline(date_dir: Path | str) -> float:
    """Metres from camera 2 to camera 3 (the colour stereo pair) of a KITTI raw date folder or drive.

    The x offset of camera 2 minus camera 3's, both from ``K^-1 P_rect[:, 3]``: about 0.532 m on
    real KITTI, the drive's baseline on synthetic ones.
    """
    path = _find_calib_dir(Path(date_dir)) / "calib_cam_to_cam.txt"
    cam2cam = read_calib_file(path)
    offsets = []
    for key in ("P_rect_02", "P_rect_03"):
        if key not in cam2cam or cam2cam[key].size != 12:
            raise KittiLayoutError(f"{path}: expected '{key}: 12 values'")
        offsets.append(_rect_offset(cam2cam[key].reshape(3, 4)))
    return float(offsets[0][0] - offsets[1][0])


def load_velodyne(path: Path | str) -> np.ndarray:
    """(N, 4) float32 x, y, z, reflectance from a KITTI .bin scan."""
    raw = np.fromfile(path, dtype="<f4")
    if raw.size % 4:
        raise KittiLayoutError(f"{path}: size is not a multiple of 16 bytes (expected float32 x,y,z,r)")
    return raw.reshape(-1, 4).astype(np.float32, copy=False)


def _timestamp_lines(path: Path) -> list[str]:
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


def parse_timestamp_ns(text: str) -> int:
    """'2011-09-26 13:02:25.964389546' -> integer nanoseconds since the epoch (read as UTC)."""
    stamp, _, frac = text.strip().partition(".")
    seconds = calendar.timegm(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))
    return seconds * 1_000_000_000 + int((frac + "000000000")[:9])


def format_timestamp_ns(ns: int) -> str:
    """Integer nanoseconds since the epoch -> KITTI's '2011-09-26 13:02:25.964389546'."""
    seconds, frac = divmod(int(ns), 1_000_000_000)
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(seconds))}.{frac:09d}"


def read_timestamps_ns(path: Path | str) -> np.ndarray:
    """int64 nanoseconds since the epoch, one per line of a KITTI timestamps file."""
    try:
        return np.array([parse_timestamp_ns(line) for line in _timestamp_lines(Path(path))], dtype=np.int64)
    except ValueError as exc:
        raise KittiLayoutError(
            f"{path}: bad timestamp ({exc}); expected '2011-09-26 13:02:25.964389546'"
        ) from None


def read_timestamps(path: Path | str) -> np.ndarray:
    """float64 seconds since the epoch (microsecond resolution; use read_timestamps_ns for exact)."""
    return read_timestamps_ns(path) / 1e9


def read_oxts(path: Path | str) -> np.ndarray:
    """One OXTS record: (30,) float64 in the order of OXTS_FIELDS."""
    values = np.array(Path(path).read_text().split(), dtype=np.float64)
    if values.shape != (30,):
        raise KittiLayoutError(f"{path}: {values.size} values, expected the 30 of a KITTI OXTS record")
    return values


def oxts_poses(
    records: Iterable[np.ndarray] | np.ndarray, relative_to_first: bool = False
) -> list[np.ndarray]:
    """4x4 T_world_imu per OXTS record (the KITTI devkit's convertOxtsToPose recipe).

    Mercator projection with the scale of the first record's latitude, R = Rz(yaw) Ry(pitch)
    Rx(roll). By default the world keeps east-north-up axes with its origin at the first position
    (pykitti's convention, z stays up); ``relative_to_first=True`` gives the devkit's fully
    normalised poses inv(T_0) @ T_i.
    """
    records = np.atleast_2d(np.asarray(list(records) if not isinstance(records, np.ndarray) else records))
    if records.size == 0:
        return []
    scale = np.cos(np.radians(records[0, 0]))
    poses = []
    for lat, lon, alt, roll, pitch, yaw in records[:, :6]:
        t = (
            scale * np.radians(lon) * EARTH_RADIUS,
            scale * EARTH_RADIUS * np.log(np.tan(np.radians(90.0 + lat) / 2.0)),
            alt,
        )
        poses.append(make_transform(rotation_matrix(roll, pitch, yaw), t))
    if relative_to_first:
        first_inv = np.linalg.inv(poses[0])
        return [first_inv @ T for T in poses]
    origin = poses[0][:3, 3].copy()
    for T in poses:
        T[:3, 3] -= origin
    return poses


def velodyne_depth_map(calib: KittiCalib, velo: np.ndarray, height: int, width: int) -> np.ndarray:
    """Sparse depth (float32 m, 0 = no point) of a scan in camera ``calib.cam``: KITTI's GT recipe.

    Keeps points in front of the LiDAR (x >= 0), as KITTI does, then projects with the rectified
    calibration (nearest point wins per pixel, no devkit "-1" shift: see
    geometry.points_to_depth_map). A size other than calib.image_size scales K accordingly.
    """
    velo = np.asarray(velo)
    velo = velo[velo[:, 0] >= 0]
    points = transform_points(calib.T_cam_velo, velo[:, :3])
    K = calib.K
    if (width, height) != tuple(calib.image_size):
        K = scale_intrinsics(K, calib.image_size, (width, height))
    return points_to_depth_map(points, K, height, width)


def read_depth_png(path: Path | str) -> np.ndarray:
    """KITTI depth PNG (uint16, depth * 256) -> float32 metres, 0 = invalid."""
    png = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if png is None:
        raise KittiLayoutError(f"{path}: cannot read depth PNG")
    if png.dtype != np.uint16 or png.ndim != 2:
        raise KittiLayoutError(f"{path}: {png.dtype} {png.shape}, expected a single-channel uint16 depth PNG")
    return png.astype(np.float32) / 256.0


def read_motion_labels(path: Path | str) -> np.ndarray:
    """A motion-label PNG -> (H, W) uint8 labels (``depth_node.metrics.MOTION_LABELS``)."""
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None or labels.ndim != 2 or labels.dtype != np.uint8:
        raise KittiLayoutError(f"{path}: expected an 8-bit single-channel PNG of motion labels")
    return labels


def write_depth_png(path: Path | str, depth: np.ndarray) -> None:
    """Write metres (NaN/<=0 = invalid) as a KITTI depth PNG; depths beyond 255.99 m become invalid."""
    depth = np.asarray(depth, dtype=np.float64)
    scaled = np.round(np.nan_to_num(depth, nan=0.0, posinf=0.0, neginf=0.0) * 256.0)
    scaled[(scaled < 0) | (scaled > np.iinfo(np.uint16).max)] = 0
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), scaled.astype(np.uint16)):
        raise OSError(f"{path}: could not write depth PNG")


def read_drive_oxts(drive_dir: Path | str, indices: Iterable[int] | None = None) -> np.ndarray:
    """(N, 30) OXTS records of a drive (all frames, or the given indices)."""
    drive_dir = Path(drive_dir)
    if indices is None:
        indices = sorted(int(p.stem) for p in (drive_dir / "oxts" / "data").glob("*.txt"))
    return np.array([read_oxts(oxts_path(drive_dir, i)) for i in indices]).reshape(-1, 30)


# --------------------------------------------------------------------------------------------
# Writer


def _num(value: float) -> str:
    # KITTI's %e look (7.215377e+02), with as many digits as a float64 round trip needs; values a
    # few ulps off a 12-digit number (matrix round-off) are written as that number.
    value = float(value)
    short = float(f"{value:.12g}")
    if abs(short - value) <= 4 * np.spacing(abs(value)):
        value = short
    return np.format_float_scientific(value, unique=True, min_digits=6, exp_digits=2)


def _line(key: str, values: Iterable[float] | np.ndarray) -> str:
    return f"{key}: " + " ".join(_num(v) for v in np.asarray(values, dtype=np.float64).ravel())


def _orthonormal(R: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(R)
    return u @ vt


def _camera_offsets(baseline: float) -> dict[int, np.ndarray]:
    """Rectified offsets of cameras 0-3: SIM_CAMERA_OFFSETS, and camera 3 ``baseline`` m right of 2."""
    offsets = {c: np.array(t, dtype=np.float64) for c, t in SIM_CAMERA_OFFSETS.items()}
    # t moves points, so the camera centre is at -t: camera 3 sits +baseline along camera 2's x.
    offsets[3] = offsets[2] - np.array([baseline, 0.0, 0.0])
    return offsets


def _calib_texts(
    K: np.ndarray, size: tuple[int, int], T_cam_velo: np.ndarray, T_cam_imu: np.ndarray, baseline: float
) -> dict:
    """The three calibration files for a rig whose camera 2 has intrinsics K and these extrinsics."""
    R_rect = _orthonormal(_KITTI_R_RECT_00)
    offsets = _camera_offsets(baseline)
    # Invert read_calib's composition T_cam2 = [I|t2] R_rect [R|T]: velo_to_cam holds the cam-0 extrinsics.
    T_velo_cam0 = np.linalg.inv(make_transform(np.eye(3), offsets[2]) @ make_transform(R_rect, np.zeros(3)))
    T_cam0_velo = T_velo_cam0 @ T_cam_velo
    T_velo_imu = np.linalg.inv(T_cam_velo) @ T_cam_imu
    lines = ["calib_time: 09-Jan-2012 13:57:47", "corner_dist: 9.950000e-02"]
    for cam, t in offsets.items():
        c = f"{cam:02d}"
        lines += [
            _line(f"S_{c}", size),
            _line(f"K_{c}", K),
            _line(f"D_{c}", np.zeros(5)),
            # All cameras share cam 0's orientation; R_rect_0c rectifies each one the same way.
            _line(f"R_{c}", np.eye(3)),
            _line(f"T_{c}", R_rect.T @ t),
            _line(f"S_rect_{c}", size),
            _line(f"R_rect_{c}", R_rect),
            _line(f"P_rect_{c}", K @ np.hstack([np.eye(3), t[:, None]])),
        ]
    cam_to_cam = "\n".join(lines) + "\n"
    velo_to_cam = (
        "calib_time: 15-Mar-2012 11:37:16\n"
        f"{_line('R', T_cam0_velo[:3, :3])}\n{_line('T', T_cam0_velo[:3, 3])}\n"
        f"{_line('delta_f', np.zeros(2))}\n{_line('delta_c', np.zeros(2))}\n"
    )
    imu_to_velo = (
        "calib_time: 25-May-2012 16:47:16\n"
        f"{_line('R', T_velo_imu[:3, :3])}\n{_line('T', T_velo_imu[:3, 3])}\n"
    )
    return {
        "calib_cam_to_cam.txt": cam_to_cam,
        "calib_velo_to_cam.txt": velo_to_cam,
        "calib_imu_to_velo.txt": imu_to_velo,
    }


def _euler_from_matrix(R: np.ndarray) -> tuple[float, float, float]:
    """roll, pitch, yaw with R = Rz(yaw) Ry(pitch) Rx(roll) (inverse of geometry.rotation_matrix)."""
    roll = np.arctan2(R[2, 1], R[2, 2])
    pitch = np.arctan2(-R[2, 0], np.hypot(R[2, 1], R[2, 2]))
    yaw = np.arctan2(R[1, 0], R[0, 0])
    return float(roll), float(pitch), float(yaw)


def _oxts_records(
    T_world_imu: list[np.ndarray], v_imu: np.ndarray, w_imu: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """OXTS records whose devkit poses reproduce T_world_imu (world: east, north, up)."""
    lat0, lon0, alt0 = SIM_LATLON_ALT
    scale = np.cos(np.radians(lat0))  # the devkit takes the scale from the first record's latitude
    mx0 = scale * np.radians(lon0) * EARTH_RADIUS
    my0 = scale * EARTH_RADIUS * np.log(np.tan(np.radians(90.0 + lat0) / 2.0))
    p0 = T_world_imu[0][:3, 3]
    R = np.array([T[:3, :3] for T in T_world_imu])
    v_world = np.einsum("nij,nj->ni", R, v_imu)
    # Specific force (what an IMU measures): acceleration plus the reaction to gravity.
    accel = np.gradient(v_world, t, axis=0) if len(t) > 1 else np.zeros_like(v_world)
    force_world = accel + np.array([0.0, 0.0, GRAVITY])
    records = np.zeros((len(T_world_imu), 30))
    for i, T in enumerate(T_world_imu):
        dx, dy, dz = T[:3, 3] - p0
        lon = np.degrees((mx0 + dx) / (scale * EARTH_RADIUS))
        lat = 2.0 * np.degrees(np.arctan(np.exp((my0 + dy) / (scale * EARTH_RADIUS)))) - 90.0
        roll, pitch, yaw = _euler_from_matrix(T[:3, :3])
        R_heading = rotation_matrix(0.0, 0.0, yaw)  # "parallel to earth-surface" axes
        vflu = R_heading.T @ v_world[i]
        records[i, :6] = lat, lon, alt0 + dz, roll, pitch, yaw
        records[i, 6:8] = v_world[i, 1], v_world[i, 0]  # vn, ve
        records[i, 8:11] = vflu
        records[i, 11:14] = R[i].T @ force_world[i]
        records[i, 14:17] = R_heading.T @ force_world[i]
        records[i, 17:20] = w_imu[i]
        records[i, 20:23] = R_heading.T @ (R[i] @ w_imu[i])
        records[i, 23:] = 0.02, 0.02, 4, 10, 4, 4, 0  # RTK-level accuracy, navstat 4 (ready)
    return records


def _oxts_line(record: np.ndarray) -> str:
    # Floats as shortest round-trip text; the last five fields are integers in real files.
    return " ".join([repr(float(v)) for v in record[:25]] + [str(int(v)) for v in record[25:]])


def write_drive(
    drive: SimDrive,
    root: Path | str,
    date: str = "2011_09_26",
    drive_number: int = 1,
    dense_gt: bool = True,
    progress: bool = False,
) -> Path:
    """Write a synthetic drive as a KITTI raw drive; return the drive folder.

    A stereo drive's right camera goes to image_03 (and proj_depth/groundtruth/image_03). The date
    folder's calibration files are written once; a second drive of the same date must share the
    rig (same K, image size, extrinsics and, for a stereo drive, baseline) or a KittiLayoutError
    is raised.
    """
    if not re.fullmatch(r"\d{4}_\d{2}_\d{2}", date):
        raise ValueError(f"date {date!r}: expected YYYY_MM_DD")
    date_dir = Path(root) / date
    drive_dir = date_dir / drive_dir_name(date, drive_number)
    if drive_dir.exists():
        raise KittiLayoutError(f"{drive_dir}: exists already, not overwriting")
    _write_calibration(drive, date_dir)
    cameras = ("image_02", "image_03") if drive.stereo_baseline is not None else ("image_02",)
    for sensor in (*cameras, "velodyne_points", "oxts"):
        (drive_dir / sensor / "data").mkdir(parents=True)
    (drive_dir / "oxts" / "dataformat.txt").write_text(OXTS_DATAFORMAT)

    year, month, day = (int(x) for x in date.split("_"))
    start_ns = calendar.timegm((year, month, day, SIM_START_HOUR, drive_number % 60, 0)) * 1_000_000_000
    indices, stamps, T_world_imu, v_imu, w_imu = [], [], [], [], []
    for frame in tqdm(
        drive, total=len(drive), desc=f"drive {drive_number:04d}", unit="frame", disable=not progress
    ):
        _write_frame(drive_dir, frame, dense_gt)
        indices.append(frame.index)
        stamps.append(start_ns + round(frame.timestamp * 1e9))
        T_world_imu.append(frame.T_world_cam @ drive.T_cam_imu)
        v_imu.append(frame.velocity_imu)
        w_imu.append(frame.angular_velocity_imu)
    stamps_ns = np.array(stamps, dtype=np.int64)
    _write_timestamps(drive_dir, stamps_ns, round(0.5e9 / drive.config.fps))
    seconds = (stamps_ns - stamps_ns[0]) / 1e9
    records = _oxts_records(T_world_imu, np.array(v_imu, float), np.array(w_imu, float), seconds)
    for i, record in zip(indices, records):
        oxts_path(drive_dir, i).write_text(_oxts_line(record) + "\n")
    return drive_dir


def _write_calibration(drive: SimDrive, date_dir: Path) -> None:
    """The date folder's calibration files for the drive's rig, or a check that they describe it."""
    size = (int(drive.config.width), int(drive.config.height))
    date_dir.mkdir(parents=True, exist_ok=True)
    if (date_dir / "calib_cam_to_cam.txt").is_file():
        _check_rig(drive, date_dir, size)
        return
    baseline = SIM_STEREO_BASELINE if drive.stereo_baseline is None else drive.stereo_baseline
    texts = _calib_texts(np.asarray(drive.K, float), size, drive.T_cam_lidar, drive.T_cam_imu, baseline)
    for name, text in texts.items():
        (date_dir / name).write_text(text)


def _check_rig(drive: SimDrive, date_dir: Path, size: tuple[int, int]) -> None:
    """Refuse a drive whose rig differs from the one the date folder's calibration describes."""
    existing = read_calib(date_dir)
    if existing.image_size != size or not (
        np.allclose(existing.K, drive.K) and np.allclose(existing.T_cam_velo, drive.T_cam_lidar, atol=1e-9)
    ):
        raise KittiLayoutError(f"{date_dir}: holds a different rig's calibration; use another date")
    # A drive without a right camera writes no camera-3 data, so any baseline describes it.
    if drive.stereo_baseline is not None:
        baseline = stereo_baseline(date_dir)
        if not np.isclose(baseline, drive.stereo_baseline, rtol=0, atol=1e-9):
            raise KittiLayoutError(
                f"{date_dir}: holds a different rig's calibration (stereo baseline {baseline:.6g} m, "
                f"the drive's is {drive.stereo_baseline:.6g} m); use another date"
            )


def _write_frame(drive_dir: Path, frame: Any, dense_gt: bool) -> None:
    """Images of camera 2 (and 3 when stereo), LiDAR scan, (``dense_gt``) depth and motion-label PNGs."""
    i = frame.index
    _write_rgb(image_path(drive_dir, i), frame.image)
    right = frame.right_image
    if right is not None:
        _write_rgb(image_path(drive_dir, i, cam=3), right)
    np.asarray(frame.lidar, dtype="<f4").reshape(-1, 4).tofile(velodyne_path(drive_dir, i))
    if dense_gt:
        write_depth_png(depth_gt_path(drive_dir, i), frame.depth)
        if right is not None:
            write_depth_png(depth_gt_path(drive_dir, i, cam=3), frame.right_depth)
        labels_path = motion_labels_path(drive_dir, i)
        labels_path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(labels_path), frame.motion):
            raise OSError(f"{labels_path}: could not write the motion labels")


def _write_rgb(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: could not write image")


def _write_timestamps(drive_dir: Path, stamps_ns: np.ndarray, half_sweep_ns: int) -> None:
    def write(path: Path, values: np.ndarray) -> None:
        path.write_text("".join(format_timestamp_ns(v) + "\n" for v in values))

    write(drive_dir / "image_02" / "timestamps.txt", stamps_ns)
    if (drive_dir / "image_03").is_dir():  # the stereo pair is triggered together
        write(drive_dir / "image_03" / "timestamps.txt", stamps_ns)
    # The synthetic rig is synchronous: the scan crosses the camera's view at the image time.
    velo = drive_dir / "velodyne_points"
    write(velo / "timestamps.txt", stamps_ns)
    write(velo / "timestamps_start.txt", stamps_ns - half_sweep_ns)
    write(velo / "timestamps_end.txt", stamps_ns + half_sweep_ns)
    write(drive_dir / "oxts" / "timestamps.txt", stamps_ns)
