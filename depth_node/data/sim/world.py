"""Synthetic driving world: seeded street scenes with exact depth, poses, odometry and LiDAR.

Each drive (one ``seed``) is a street with its own layout: road width and lanes, curves, gentle
slopes, intersections, city blocks / suburban houses / open land, trees, poles, parked cars and
moving traffic (same direction and oncoming), under its own light. The camera rides on a car that
follows the road at 5-15 m/s. Frames are rendered from planar polygons with world-anchored,
band-limited procedural textures (see ``_render.py``), so image, depth and LiDAR are consistent.

Conventions: world frame z up; camera optical frame x right, y down, z forward; pixel (u, v) has
its centre at integer indices, and the default principal point is the image centre
((width - 1) / 2, (height - 1) / 2). The default focal lengths keep KITTI's field of view at any
image size (721.5377 px at 1242x375, scaled with width and height), like a resized KITTI image.
LiDAR and IMU axes and mounting follow KITTI (velodyne 0.27 m
behind and 0.08 m above the camera; IMU/OXTS a further 0.81 m behind, 0.32 m left, 0.80 m lower).
The LiDAR is a 64-beam scanner (elevation +2 deg .. -24.8 deg, 100 m range) that returns the front
half of its sweep (azimuth -90 deg .. +90 deg, i.e. generously around the camera's field of view).

Stereo (``WorldConfig.stereo``): a second, right camera with the same K and orientation sits
``stereo_baseline`` metres along the left camera's +x axis (a rectified pair, like KITTI's cameras
2 and 3), rendered at the same instant; ``Frame.right_image`` and ``Frame.right_depth`` carry it.
The left camera stays the drive's camera: its image is the same with stereo on or off.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from depth_node.data.sim._layout import generate
from depth_node.data.sim._render import AHEAD, BEHIND, Renderer, View
from depth_node.data.sim._scene import ASPHALT
from depth_node.data.sim._shading import Materials
from depth_node.geometry import make_transform, rotation_matrix
from depth_node.metrics import MOTION_LABELS

# KITTI-like extrinsics (2011_09_26 calibration, rotations squared up to exact axis permutations).
_R_CAM_VELO = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
_T_CAM_VELO = make_transform(_R_CAM_VELO, [-0.004, -0.076, -0.272])
_T_VELO_IMU = make_transform(np.eye(3), [-0.809, 0.320, -0.800])
# KITTI's rectified camera 2: focal length at its full image size.
KITTI_FOCAL, KITTI_WIDTH, KITTI_HEIGHT = 721.5377, 1242, 375


@dataclass
class WorldConfig:
    seed: int = 0
    num_frames: int = 100
    width: int = 1242
    height: int = 375
    fx: float | None = None  # None: KITTI's field of view at this width (721.5377 * width / 1242)
    fy: float | None = None  # None: 721.5377 * height / 375
    cx: float | None = None  # None: image centre
    cy: float | None = None
    fps: float = 10.0
    camera_height: float = 1.65  # optical centre above the road, metres
    # Layout and traffic knobs.
    moving_cars: bool = True
    traffic_density: float = 1.0  # scales how many moving cars there are
    parked_density: float | None = None  # fraction of parking slots taken; None: drawn per seed
    intersections: bool = True
    curviness: float = 1.0  # 0: straight road
    max_grade: float = 0.03  # steepest road grade (0: flat)
    speed_range: tuple[float, float] = (5.0, 15.0)  # ego speed, m/s
    camera_wobble: float = 1.0  # scale of the ride's pitch/roll/yaw and lane weave (0: none)
    # Sensors.
    lidar: bool = True  # False: Frame.lidar is empty (faster when only images are needed)
    lidar_beams: int = 64
    lidar_azimuth_step: float = 0.2  # degrees between returns of one beam
    lidar_fov: float = 180.0  # degrees of azimuth returned, centred on the forward direction
    lidar_range: float = 100.0
    noise_std: float = 1.0  # sensor noise, 8-bit grey levels
    stereo: bool = False  # True: also render a right camera (Frame.right_image, Frame.right_depth)
    stereo_baseline: float = 0.54  # metres from the left to the right camera along +x (KITTI's)


@dataclass
class Frame:
    index: int
    timestamp: float  # seconds since drive start
    image: np.ndarray  # (H, W, 3) uint8 RGB
    depth: np.ndarray  # (H, W) float32 metres along the optical axis (z), NaN = sky
    motion: np.ndarray  # (H, W) uint8 MOTION_LABELS: static, same way (lead car too), oncoming
    T_world_cam: np.ndarray  # 4x4, camera optical frame -> world (world: z up)
    velocity_imu: np.ndarray  # (3,) m/s in the vehicle/IMU frame (x fwd, y left, z up)
    angular_velocity_imu: np.ndarray  # (3,) rad/s, vehicle/IMU frame
    lidar: np.ndarray  # (N, 4) float32 x, y, z, reflectance in the LiDAR frame
    # Stereo only (None otherwise): the right camera, T_world_cam @ translation(+baseline, 0, 0).
    right_image: np.ndarray | None = None  # (H, W, 3) uint8 RGB
    right_depth: np.ndarray | None = None  # (H, W) float32 metres along z, NaN = sky

    @property
    def moving_mask(self) -> np.ndarray:
        """(H, W) bool: pixels of cars that move in the world, either way."""
        return self.motion != MOTION_LABELS["static"]


class SyntheticDrive:
    """One seeded drive. ``frame(i)`` depends only on the config and i (not on call order)."""

    def __init__(self, config: WorldConfig):
        _validate(config)
        self.config = config
        cx = (config.width - 1) / 2.0 if config.cx is None else config.cx
        cy = (config.height - 1) / 2.0 if config.cy is None else config.cy
        fx, fy = focal_lengths(config)
        self.K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        self.T_cam_lidar = _T_CAM_VELO.copy()
        self.T_cam_imu = _T_CAM_VELO @ _T_VELO_IMU
        self._T_imu_cam = np.linalg.inv(self.T_cam_imu)
        # The IMU sits this high above the road so that the camera is camera_height above it.
        self._imu_height = config.camera_height - self._T_imu_cam[2, 3]
        rng = np.random.default_rng([int(config.seed), 20240])
        duration = (config.num_frames - 1) / config.fps
        s_start = BEHIND + 10.0
        length = s_start + config.speed_range[1] * duration + AHEAD + 60.0
        self._layout = generate(rng, length, s_start, duration, config)
        self._renderer = Renderer(self._layout, Materials(rng, self._layout.road, int(config.seed)))

    def __len__(self) -> int:
        return self.config.num_frames

    @property
    def stereo_baseline(self) -> float | None:
        """Metres from the left to the right camera along the left's +x axis; None without stereo."""
        return float(self.config.stereo_baseline) if self.config.stereo else None

    def __iter__(self) -> Iterator[Frame]:
        for i in range(len(self)):
            yield self.frame(i)

    # ---- ego motion -----------------------------------------------------------------------------------
    def _T_world_imu(self, time: float) -> np.ndarray:
        ego, path = self._layout.ego, self._layout.path
        s = ego.s(time)
        lat = ego.lateral(time)
        _, _, _, psi, grade = path.at(s)
        a, w, ph = ego.weave
        drift = np.arctan2(a * w * np.cos(w * time + ph), max(ego.speed(time), 0.1))
        wob = ego.wobble[:, 0] * np.sin(ego.wobble[:, 1] * time + ego.wobble[:, 2])
        R = rotation_matrix(wob[0], -np.arctan(grade) + wob[1], psi + drift + wob[2])
        return make_transform(R, path.point(s, lat) + R @ np.array([0.0, 0.0, self._imu_height]))

    def pose(self, index: int) -> np.ndarray:
        """T_world_cam of frame ``index`` without rendering anything."""
        return self._T_world_imu(self._time(index)) @ self._T_imu_cam

    def _time(self, index: int) -> float:
        if not 0 <= index < len(self):
            raise IndexError(f"frame index {index} out of range: drive has {len(self)} frames")
        return index / self.config.fps

    # ---- frames --------------------------------------------------------------------------------------
    def frame(self, index: int) -> Frame:
        index = int(index)
        time = self._time(index)
        cfg = self.config
        T_wi = self._T_world_imu(time)
        T_wc = T_wi @ self._T_imu_cam
        # Odometry: central differences of the pose (exact to ~1e-6 for these smooth motions).
        h = 1e-3
        Ta, Tb = self._T_world_imu(time - h), self._T_world_imu(time + h)
        velocity = T_wi[:3, :3].T @ (Tb[:3, 3] - Ta[:3, 3]) / (2 * h)
        rotvec, _ = cv2.Rodrigues(Ta[:3, :3].T @ Tb[:3, :3])
        angular = rotvec.ravel() / (2 * h)
        renderer = self._renderer
        tab = renderer.frame_table(time, self._layout.ego.s(time))
        view = View(T_wc[:3, :3], T_wc[:3, 3], self.K, cfg.width, cfg.height)
        noise_rng = np.random.default_rng([int(cfg.seed), index, 7])
        image, depth, motion = renderer.render(tab, view, noise_rng, cfg.noise_std)
        lidar = self._lidar(tab, T_wc @ self.T_cam_lidar) if cfg.lidar else np.zeros((0, 4), np.float32)
        frame = Frame(index, time, image, depth, motion, T_wc, velocity, angular, lidar)
        if cfg.stereo:
            frame.right_image, frame.right_depth = self._right_view(tab, T_wc, index)
        return frame

    def _right_view(self, tab, T_world_cam: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image and depth of the right camera of a rectified pair, at the left camera's instant."""
        cfg = self.config
        T_wr = T_world_cam @ make_transform(np.eye(3), [cfg.stereo_baseline, 0.0, 0.0])
        view = View(T_wr[:3, :3], T_wr[:3, 3], self.K, cfg.width, cfg.height)
        # Its own noise stream (stream 7 is the left's): the left image stays as without stereo.
        noise_rng = np.random.default_rng([int(cfg.seed), index, 8])
        image, depth, _ = self._renderer.render(tab, view, noise_rng, cfg.noise_std)
        return image, depth

    def _lidar(self, tab, T_world_lidar: np.ndarray) -> np.ndarray:
        """Sample the scene along the beams: labels from a few virtual pinhole views, exact hits."""
        cfg = self.config
        el = np.deg2rad(np.linspace(2.0, -24.8, cfg.lidar_beams))
        az = np.deg2rad(np.arange(cfg.lidar_fov / 2, -cfg.lidar_fov / 2 - 1e-9, -cfg.lidar_azimuth_step))
        E, A = np.meshgrid(el, az, indexing="ij")
        d = np.stack([np.cos(E) * np.cos(A), np.cos(E) * np.sin(A), np.sin(E)], axis=-1).reshape(-1, 3)
        hit_poly = self._beam_polygons(tab, T_world_lidar, d, A.ravel())
        Rwl, o = T_world_lidar[:3, :3], T_world_lidar[:3, 3]
        good = np.flatnonzero(hit_poly >= 0)
        p = hit_poly[good]
        dw = d[good] @ Rwl.T
        with np.errstate(divide="ignore", invalid="ignore"):
            r = (tab.D[p] - tab.N[p] @ o) / np.einsum("ij,ij->i", tab.N[p], dw)
        ok = (r > 0.5) & (r < cfg.lidar_range)
        good, p, dw, r = good[ok], p[ok], dw[ok], r[ok]
        X = o + r[:, None] * dw
        # A beam that grazes an edge may take the label of a polygon it just misses; keep only hits
        # inside their polygon (within 2 cm), as a real scanner drops most mixed returns.
        inside = _inside(tab.V[p], tab.N[p], X, 0.02)
        good, p, dw, r, X = good[inside], p[inside], dw[inside], r[inside], X[inside]
        s = np.einsum("ij,ij->i", X, tab.E1[p]) - tab.O1[p]
        t = np.einsum("ij,ij->i", X, tab.E2[p]) - tab.O2[p]
        # Reflectance follows the surface albedo; only the road is shaded per return (its paint
        # markings are what a LiDAR's intensity channel shows best), elsewhere the polygon colour.
        albedo = tab.col[p].astype(np.float32)
        road = np.flatnonzero(tab.mat[p] == ASPHALT)
        albedo[road] = self._renderer.shade(
            tab,
            p[road],
            s[road].astype(np.float32),
            t[road].astype(np.float32),
            X[road, 0].astype(np.float32),
            X[road, 1].astype(np.float32),
            (0.003 * r[road]).astype(np.float32),
        )
        reflectance = np.clip(0.08 + 0.9 * albedo.mean(axis=1), 0.0, 1.0)
        pts = d[good] * r[:, None]
        return np.column_stack([pts, reflectance]).astype(np.float32)

    def _beam_polygons(self, tab, T_world_lidar: np.ndarray, d: np.ndarray, azf: np.ndarray) -> np.ndarray:
        """Index of the polygon each beam (directions d, azimuths azf) sees first; -1: none."""
        cfg = self.config
        n_views = max(1, int(np.ceil(np.deg2rad(cfg.lidar_fov) / np.deg2rad(60.0))))
        centres = (np.arange(n_views) - (n_views - 1) / 2) * np.deg2rad(cfg.lidar_fov) / n_views
        half = np.deg2rad(cfg.lidar_fov) / n_views / 2 + np.deg2rad(1.0)
        f = 1.0 / np.tan(np.deg2rad(cfg.lidar_azimuth_step))  # one virtual pixel per azimuth step
        width = int(2 * np.ceil(f * np.tan(half))) + 2
        top, bottom = np.tan(np.deg2rad(3.0)) / np.cos(half), np.tan(np.deg2rad(25.5)) / np.cos(half)
        fv = 0.6 * f  # beams are ~0.43 deg apart in elevation: coarser rows suffice
        height = int(np.ceil(fv * (top + bottom))) + 2
        K = np.array([[f, 0, (width - 1) / 2], [0, fv, fv * top + 1], [0, 0, 1.0]])
        Rwl, o = T_world_lidar[:3, :3], T_world_lidar[:3, 3]
        which = np.argmin(np.abs(azf[:, None] - centres[None, :]), axis=1)
        hit_poly = np.full(len(d), -1, np.int64)
        for k, a in enumerate(centres):
            ax = np.array([np.sin(a), -np.cos(a), 0.0])
            az_ = np.array([np.cos(a), np.sin(a), 0.0])
            ay = np.array([0.0, 0.0, -1.0])
            R_view = Rwl @ np.stack([ax, ay, az_], axis=1)
            view = View(R_view, o, K, width, height)
            lab, _, _ = self._renderer.resolve(tab, view)
            sel = np.flatnonzero(which == k)
            q = d[sel]
            zc = q @ az_
            u = np.round(f * (q @ ax) / zc + K[0, 2]).astype(np.int64)
            v = np.round(fv * (q @ ay) / zc + K[1, 2]).astype(np.int64)
            ok = (u >= 0) & (u < width) & (v >= 0) & (v < height)
            hit_poly[sel[ok]] = lab[v[ok] * width + u[ok]]
        return hit_poly


def _inside(V: np.ndarray, N: np.ndarray, X: np.ndarray, tol: float) -> np.ndarray:
    """Whether points X (n, 3) lie inside their convex polygons V (n, 4, 3) with normals N."""

    def triple(e: np.ndarray, d: np.ndarray, n: np.ndarray) -> np.ndarray:  # (e x d) . n, row-wise
        return (
            (e[:, 1] * d[:, 2] - e[:, 2] * d[:, 1]) * n[:, 0]
            + (e[:, 2] * d[:, 0] - e[:, 0] * d[:, 2]) * n[:, 1]
            + (e[:, 0] * d[:, 1] - e[:, 1] * d[:, 0]) * n[:, 2]
        )

    # Orient by the winding's own normal: the stored normal may point the other way.
    wind = triple(V[:, 1] - V[:, 0], V[:, 2] - V[:, 0], N) + triple(V[:, 2] - V[:, 0], V[:, 3] - V[:, 0], N)
    N = N * np.sign(wind)[:, None]
    ok = np.ones(len(X), bool)
    for k in range(4):
        a = V[:, k]
        edge = V[:, (k + 1) % 4] - a
        length = np.sqrt(np.einsum("ij,ij->i", edge, edge))
        # Repeated vertices (triangles) give zero-length edges that constrain nothing.
        ok &= (length < 1e-9) | (triple(edge, X - a, N) >= -tol * length)
    return ok


def focal_lengths(cfg: WorldConfig) -> tuple[float, float]:
    """(fx, fy) in pixels: the config's, or KITTI's field of view at the config's image size."""
    fx = KITTI_FOCAL * cfg.width / KITTI_WIDTH if cfg.fx is None else float(cfg.fx)
    fy = KITTI_FOCAL * cfg.height / KITTI_HEIGHT if cfg.fy is None else float(cfg.fy)
    return fx, fy


def _validate(cfg: WorldConfig) -> None:
    if cfg.width < 8 or cfg.height < 8:
        raise ValueError(f"WorldConfig width/height must be at least 8 pixels, got {cfg.width}x{cfg.height}")
    if cfg.num_frames < 1:
        raise ValueError(f"WorldConfig.num_frames must be >= 1, got {cfg.num_frames}")
    if cfg.fps <= 0 or min(focal_lengths(cfg)) <= 0:
        raise ValueError("WorldConfig fps, fx and fy must be positive")
    lo, hi = cfg.speed_range
    if not 0 < lo <= hi:
        raise ValueError(f"WorldConfig.speed_range must be 0 < low <= high, got {cfg.speed_range}")
    if cfg.camera_height <= 0.5:
        raise ValueError(f"WorldConfig.camera_height must be above 0.5 m, got {cfg.camera_height}")
    if not cfg.stereo_baseline > 0:  # `not >` also refuses NaN
        raise ValueError(f"WorldConfig.stereo_baseline must be positive metres, got {cfg.stereo_baseline}")
