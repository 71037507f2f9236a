"""Seeded layout of a synthetic drive: road path, cross-section, buildings, trees, cars, traffic, light.

World frame: x, y horizontal, z up. The road follows a path given by arc length s; a point beside
the road is addressed by (s, t, h): t is the lateral offset (positive to the left of the driving
direction) and h the height above the road at s. The road cross-section is level (no camber).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from depth_node.data.sim._scene import (
    ASPHALT,
    BARK,
    CONCRETE,
    FACADE,
    FOLIAGE,
    GRASS,
    GROUND,
    KERB,
    METAL,
    OBJECTS,
    WALL,
    PolyBuilder,
    box_table,
    car_tables,
)
from depth_node.geometry import rotation_matrix

STEP = 0.5  # path sampling (m)
GROUND_EXTENT = 60.0  # lateral reach of the terrain on each side (m)
CAR_COLOURS = np.array(
    [
        (0.82, 0.82, 0.80),
        (0.62, 0.63, 0.64),
        (0.10, 0.10, 0.11),
        (0.30, 0.31, 0.33),
        (0.12, 0.18, 0.38),
        (0.55, 0.08, 0.07),
        (0.15, 0.30, 0.20),
        (0.70, 0.62, 0.45),
        (0.85, 0.55, 0.10),
        (0.35, 0.45, 0.60),
    ],
    np.float32,
)


@dataclass
class Path:
    """Road centreline sampled every STEP metres of arc length."""

    s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    psi: np.ndarray
    grade: np.ndarray
    kappa: np.ndarray

    def at(self, s: np.ndarray | float) -> tuple[np.ndarray, ...]:
        s = np.asarray(s, np.float64)
        return tuple(np.interp(s, self.s, a) for a in (self.x, self.y, self.z, self.psi, self.grade))

    def point(self, s, t, h=0.0) -> np.ndarray:
        """World point(s) at arc length s, lateral offset t, height h above the road."""
        x, y, z, psi, _ = self.at(s)
        t = np.asarray(t, np.float64)
        return np.stack(np.broadcast_arrays(x - t * np.sin(psi), y + t * np.cos(psi), z + h), axis=-1)

    def axes(self, s: float) -> tuple[np.ndarray, np.ndarray]:
        """Unit tangent (following the grade) and horizontal left normal at s."""
        _, _, _, psi, g = self.at(s)
        tan = np.array([np.cos(psi), np.sin(psi), g])
        return tan / np.linalg.norm(tan), np.array([-np.sin(psi), np.cos(psi), 0.0])


@dataclass
class RoadStyle:
    lanes: int  # per direction
    lane_width: float
    park_width: float
    half_width: float  # kerb-to-centre
    kerb_height: float
    sidewalk: float
    centre: int  # 0 dashed white, 1 double solid yellow, 2 solid white
    edge_lines: bool
    asphalt: np.ndarray
    intersections: np.ndarray  # (K, 2): s of the crossing street's axis, its width


@dataclass
class Lighting:
    sun: np.ndarray  # unit vector towards the sun (world)
    sun_colour: np.ndarray
    ambient: np.ndarray
    shadow: float  # 0 = no cast shadows (overcast) .. 1 = hard sun
    sky_horizon: np.ndarray
    sky_zenith: np.ndarray
    clouds: float
    exposure: float


@dataclass
class Traffic:
    """Moving cars: s(t) = s0 + speed * t on a fixed lane (speed < 0: oncoming), or a lead car."""

    s0: np.ndarray
    speed: np.ndarray
    lane_t: np.ndarray
    length: np.ndarray
    width: np.ndarray
    height: np.ndarray
    colour: np.ndarray
    seed: np.ndarray
    lead: np.ndarray  # bool: keeps a varying gap ahead of the ego car instead of s0 + speed t
    gap: np.ndarray  # (K, 3) mean gap, amplitude, angular frequency for lead cars


@dataclass
class EgoMotion:
    s0: float
    v_mean: float
    amps: np.ndarray
    omegas: np.ndarray
    phases: np.ndarray
    lane_t: float
    weave: tuple[float, float, float]  # amplitude, angular frequency, phase
    wobble: np.ndarray  # (3, 3): amplitude, angular frequency, phase for roll, pitch, yaw

    def s(self, t: float) -> float:
        """Arc length travelled: the closed-form integral of the speed profile."""
        c = self.amps / self.omegas * (np.cos(self.phases) - np.cos(self.omegas * t + self.phases))
        return float(self.s0 + self.v_mean * t + c.sum())

    def speed(self, t: float) -> float:
        return float(self.v_mean + np.sum(self.amps * np.sin(self.omegas * t + self.phases)))

    def lateral(self, t: float) -> float:
        a, w, p = self.weave
        return self.lane_t + a * np.sin(w * t + p)


@dataclass
class Layout:
    path: Path
    road: RoadStyle
    light: Lighting
    ego: EgoMotion
    traffic: Traffic
    polys: dict[str, np.ndarray]
    objects: dict[str, np.ndarray]
    shadows: np.ndarray  # (S, 8, 3) ground polygons of cast shadows (convex, padded)
    shadow_kind: np.ndarray  # (S,) 0 = sun shadow, 1 = contact shadow (ambient occlusion)
    shadow_s: np.ndarray
    facade_height: dict[int, np.ndarray] = field(default_factory=dict)


def _smooth(a: np.ndarray, window: int) -> np.ndarray:
    k = np.ones(max(window, 1)) / max(window, 1)
    pad = len(k) // 2
    return np.convolve(np.pad(a, pad, mode="edge"), k, mode="same")[pad : pad + len(a)]


def make_path(
    rng: np.random.Generator,
    length: float,
    curviness: float,
    max_grade: float,
    straight_at: list[tuple[float, float]],
) -> Path:
    s = np.arange(0.0, length + STEP, STEP)
    kappa = np.zeros_like(s)
    pos = 60.0
    while pos < length:
        seg = rng.uniform(40, 140)
        if rng.random() < 0.55 and curviness > 0:
            radius = rng.uniform(90, 450) / curviness
            kappa[(s >= pos) & (s < pos + seg)] = rng.choice([-1, 1]) / radius
        pos += seg + rng.uniform(20, 120)
    for a, b in straight_at:  # intersections sit on straight road
        kappa[(s >= a) & (s <= b)] = 0.0
    kappa = _smooth(kappa, int(25 / STEP))  # ramps in and out of curves (clothoid-like)
    grade = np.zeros_like(s)
    pos = 0.0
    while pos < length and max_grade > 0:
        seg = rng.uniform(80, 220)
        grade[(s >= pos) & (s < pos + seg)] = rng.uniform(-max_grade, max_grade)
        pos += seg
    grade = _smooth(grade, int(120 / STEP))
    psi0 = rng.uniform(-np.pi, np.pi)
    psi = psi0 + np.concatenate([[0.0], np.cumsum(0.5 * (kappa[1:] + kappa[:-1]) * STEP)])
    x = np.concatenate([[0.0], np.cumsum(np.cos(0.5 * (psi[1:] + psi[:-1])) * STEP)])
    y = np.concatenate([[0.0], np.cumsum(np.sin(0.5 * (psi[1:] + psi[:-1])) * STEP)])
    z = np.concatenate([[0.0], np.cumsum(0.5 * (grade[1:] + grade[:-1]) * STEP)])
    return Path(s, x, y, z, psi, grade, kappa)


def _rect_along(path: Path, s0: float, s1: float, t0: float, t1: float) -> tuple[float, ...]:
    """Footprint rectangle (cx, cy, hx, hy, heading) of a strip of the road frame."""
    sm, tm = 0.5 * (s0 + s1), 0.5 * (t0 + t1)
    c = path.point(sm, tm)
    psi = float(path.at(sm)[3])
    return (c[0], c[1], 0.5 * abs(s1 - s0), 0.5 * abs(t1 - t0), psi)


def _strip(
    b: PolyBuilder,
    path: Path,
    s0: float,
    s1: float,
    t0: float,
    t1: float,
    h: float,
    mat: int,
    col,
    prm,
    layer: int = GROUND,
) -> None:
    """Horizontal quad of the road frame between s0..s1 and t0..t1 at height h (road-frame texture)."""
    obj = b.new_object(_rect_along(path, s0, s1, t0, t1), layer, 0.5 * (s0 + s1))
    verts = np.array(
        [path.point(s0, t0, h), path.point(s1, t0, h), path.point(s1, t1, h), path.point(s0, t1, h)]
    )
    sm = 0.5 * (s0 + s1)
    tan, nrm = path.axes(sm)
    origin = path.point(sm, 0.0, h)
    b.add(obj, verts, np.array([0, 0, 1.0]), mat, col, prm, origin, tan, nrm, off1=sm)


def _kerb(b: PolyBuilder, path: Path, s0: float, s1: float, t: float, height: float, side: int, col) -> None:
    obj = b.new_object(_rect_along(path, s0, s1, t, t + side * 0.1), GROUND, 0.5 * (s0 + s1))
    verts = np.array(
        [path.point(s0, t, 0), path.point(s1, t, 0), path.point(s1, t, height), path.point(s0, t, height)]
    )
    sm = 0.5 * (s0 + s1)
    tan, nrm = path.axes(sm)
    origin = path.point(sm, t, 0.0)
    b.add(obj, verts, -side * nrm, KERB, col, [0], origin, tan, np.array([0, 0, 1.0]), off1=sm)


def _vertical_panels(
    b: PolyBuilder,
    a: np.ndarray,
    c: np.ndarray,
    z0: float,
    z1: float,
    outward: np.ndarray,
    mat: int,
    col,
    prm,
    s_ref: float,
    s_off: float = 0.0,
    ground_z: float | None = None,
    panel: float = 5.0,
) -> None:
    """A vertical wall from a to c (horizontal points), split into panels for the painter's sort."""
    length = float(np.hypot(*(c - a)[:2]))
    n = max(1, int(np.ceil(length / panel)))
    e1 = (c - a) / max(length, 1e-9)
    e1[2] = 0.0
    e1 /= np.linalg.norm(e1)
    up = np.array([0, 0, 1.0])
    gz = z0 if ground_z is None else ground_z
    for k in range(n):
        p = a + (c - a) * (k / n)
        q = a + (c - a) * ((k + 1) / n)
        mid = 0.5 * (p + q)
        obj = b.new_object((mid[0], mid[1], 0.5 * length / n, 0.05, np.arctan2(e1[1], e1[0])), OBJECTS, s_ref)
        verts = np.array([[p[0], p[1], z0], [q[0], q[1], z0], [q[0], q[1], z1], [p[0], p[1], z1]])
        origin = np.array([a[0], a[1], gz])
        b.add(obj, verts, outward, mat, col, prm, origin, e1, up, off1=s_off)


def convex_hull_ground(points: np.ndarray, z: float) -> np.ndarray:
    """Convex hull of horizontal points as an (8, 3) polygon at height z (padded / decimated)."""
    import cv2

    hull = cv2.convexHull(points[:, :2].astype(np.float32)).reshape(-1, 2).astype(np.float64)
    if len(hull) > 8:
        hull = hull[np.linspace(0, len(hull) - 1, 8).round().astype(int)]
    out = np.empty((8, 3))
    out[: len(hull), :2] = hull
    out[len(hull) :, :2] = hull[-1]
    out[:, 2] = z
    return out


def generate(rng: np.random.Generator, length: float, s_start: float, duration: float, cfg) -> Layout:
    """Build the whole drive. ``cfg`` is the WorldConfig (layout and traffic knobs)."""
    # ---- cross-section and intersections -------------------------------------------------------
    lanes = 1 if rng.random() < 0.6 else 2
    lane_w = rng.uniform(3.0, 3.7)
    park_w = rng.uniform(2.0, 2.5) if rng.random() < 0.7 else 0.0
    half = lanes * lane_w + park_w
    kerb_h = rng.uniform(0.10, 0.18)
    sidewalk = rng.uniform(1.6, 4.5)
    grey = rng.uniform(0.22, 0.36)
    asphalt = np.array([grey, grey, grey * rng.uniform(0.98, 1.08)]) * rng.uniform(0.95, 1.05, 3)
    inters = []
    if cfg.intersections:
        pos = s_start + rng.uniform(30, 120)
        while pos < length - 40:
            if rng.random() < 0.6:
                inters.append((pos, rng.uniform(7.0, 12.0)))
            pos += rng.uniform(90, 260)
    inter = np.array(inters, np.float64).reshape(-1, 2)
    road = RoadStyle(
        lanes,
        lane_w,
        park_w,
        half,
        kerb_h,
        sidewalk,
        int(rng.integers(0, 3)),
        bool(rng.random() < 0.7),
        asphalt.astype(np.float32),
        inter,
    )
    path = make_path(
        rng, length, cfg.curviness, cfg.max_grade, [(a - w / 2 - 40, a + w / 2 + 40) for a, w in inters]
    )

    def in_inter(s: float, margin: float = 0.0) -> bool:
        return bool(np.any(np.abs(s - inter[:, 0]) < inter[:, 1] / 2 + margin)) if len(inter) else False

    b = PolyBuilder()
    shadows: list[np.ndarray] = []
    shadow_kind: list[int] = []
    shadow_s: list[float] = []

    # ---- lighting (per drive) -------------------------------------------------------------------
    overcast = rng.random() < 0.25
    elev = np.deg2rad(rng.uniform(18, 60))
    az = rng.uniform(-np.pi, np.pi)
    sun = np.array([np.cos(elev) * np.cos(az), np.cos(elev) * np.sin(az), np.sin(elev)])
    warm = rng.uniform(0.0, 0.12)
    light = Lighting(
        sun=sun,
        sun_colour=np.array([1.0, 0.96 - warm / 3, 0.90 - warm])
        * (0.25 if overcast else rng.uniform(0.75, 0.95)),
        ambient=np.array([0.80, 0.84, 0.92]) * (0.95 if overcast else rng.uniform(0.42, 0.55)),
        shadow=0.15 if overcast else 1.0,
        sky_horizon=np.array([0.80, 0.82, 0.84]) if overcast else np.array([0.78, 0.85, 0.93]),
        sky_zenith=np.array([0.62, 0.65, 0.70])
        if overcast
        else np.array([0.32, 0.50, 0.82]) * rng.uniform(0.9, 1.1),
        clouds=rng.uniform(0.3, 0.6) if overcast else rng.uniform(0.0, 0.6),
        exposure=rng.uniform(0.95, 1.15),
    )
    shadow_dir = -sun[:2] / max(sun[2], 0.2)  # ground offset per metre of height

    def add_shadow(points: np.ndarray, z: float, s_ref: float, kind: int = 0) -> None:
        pts = points.copy()
        if kind == 0:
            pts[:, :2] += (points[:, 2:3] - z) * shadow_dir[None, :]
        shadows.append(convex_hull_ground(pts, z + 0.002))
        shadow_kind.append(kind)
        shadow_s.append(s_ref)

    # ---- ground: road, kerbs, sidewalks, verges, side streets ------------------------------------
    breaks = set(np.arange(0.0, length, 3.0).round(3).tolist())
    for a, w in inters:
        breaks.update([a - w / 2, a + w / 2])
    breaks = np.array(sorted(breaks))
    pavement = np.array([0.60, 0.60, 0.58]) * rng.uniform(0.85, 1.1, 3)
    kerb_col = np.array([0.66, 0.66, 0.64]) * rng.uniform(0.9, 1.05)
    grass = np.array([0.26, 0.36, 0.14]) * rng.uniform(0.8, 1.2, 3)
    plaza = np.array([0.55, 0.52, 0.48]) * rng.uniform(0.85, 1.1, 3)

    # Zones per side decide what lines the street: 0 city blocks, 1 suburban houses, 2 open land.
    style = rng.choice(3, p=[0.45, 0.35, 0.20])
    zone_p = [(0.8, 0.15, 0.05), (0.2, 0.6, 0.2), (0.1, 0.3, 0.6)][style]
    zones: dict[int, list[tuple[float, float, int]]] = {}
    for side in (1, -1):
        zl, pos = [], 0.0
        while pos < length:
            seg = rng.uniform(60, 220)
            zl.append((pos, pos + seg, int(rng.choice(3, p=zone_p))))
            pos += seg
        zones[side] = zl

    def zone_at(side: int, s: float) -> int:
        for a, c, k in zones[side]:
            if a <= s < c:
                return k
        return 2

    for s0, s1 in itertools.pairwise(breaks):
        sm = 0.5 * (s0 + s1)
        _strip(b, path, s0, s1, -half, half, 0.0, ASPHALT, road.asphalt, [0])
        if in_inter(sm):
            continue
        for side in (1, -1):
            t_k = side * half
            _kerb(b, path, s0, s1, t_k, kerb_h, side, kerb_col)
            t_w = side * (half + sidewalk)
            lo, hi = sorted((t_k, t_w))
            _strip(b, path, s0, s1, lo, hi, kerb_h, CONCRETE, pavement, [0])
            zone = zone_at(side, sm)
            near_mat, near_col = (CONCRETE, plaza) if zone == 0 else (GRASS, grass)
            t_n = side * (half + sidewalk + 9.0)
            lo, hi = sorted((t_w, t_n))
            _strip(b, path, s0, s1, lo, hi, kerb_h, near_mat, near_col, [1])
            lo, hi = sorted((t_n, side * GROUND_EXTENT))
            _strip(b, path, s0, s1, lo, hi, kerb_h, GRASS, grass * 0.9, [0])
    for a, w in inters:
        tan, nrm = path.axes(a)
        for side in (1, -1):
            # The crossing street: straight, perpendicular, its own texture frame (s' outwards).
            for k0 in np.arange(half, GROUND_EXTENT, 6.0):
                k1 = min(k0 + 6.0, GROUND_EXTENT)
                verts = np.array(
                    [
                        path.point(a - w / 2, side * k0),
                        path.point(a + w / 2, side * k0),
                        path.point(a + w / 2, side * k1),
                        path.point(a - w / 2, side * k1),
                    ]
                )
                obj = b.new_object(_rect_along(path, a - w / 2, a + w / 2, side * k0, side * k1), GROUND, a)
                b.add(
                    obj,
                    verts,
                    np.array([0, 0, 1.0]),
                    ASPHALT,
                    road.asphalt,
                    [1, half, w],
                    path.point(a, 0.0),
                    side * nrm,
                    tan,
                )
                for edge in (-1, 1):  # kerbs of the blocks facing the crossing street
                    sk = a + edge * w / 2
                    verts = np.array(
                        [
                            path.point(sk, side * k0),
                            path.point(sk, side * k1),
                            path.point(sk, side * k1, kerb_h),
                            path.point(sk, side * k0, kerb_h),
                        ]
                    )
                    obj = b.new_object(
                        _rect_along(path, sk, sk + edge * 0.1, side * k0, side * k1), GROUND, a
                    )
                    b.add(
                        obj,
                        verts,
                        -edge * tan,
                        KERB,
                        kerb_col,
                        [0],
                        path.point(a, 0.0),
                        side * nrm,
                        np.array([0, 0, 1.0]),
                    )

    # ---- buildings, walls, hedges --------------------------------------------------------------
    h_lo, h_hi = [(5.0, 12.0), (8.0, 20.0), (12.0, 30.0)][int(rng.integers(0, 3))]
    setback_city = rng.uniform(0.0, 2.0)
    facade_palette = rng.uniform(0.35, 0.85, (6, 3)) * np.array([1.0, 0.95, 0.88])
    facade_h: dict[int, list[tuple[float, float, float, float]]] = {1: [], -1: []}
    for side in (1, -1):
        s = rng.uniform(-10, 5)
        while s < length:
            zone = zone_at(side, s)
            if zone == 0:
                width = rng.uniform(8, 30)
                gap = rng.uniform(0, 4) if rng.random() < 0.3 else 0.0
                setback = setback_city + rng.uniform(0, 0.6)
                height = rng.uniform(h_lo, h_hi)
                depth = rng.uniform(10, 16)
            elif zone == 1:
                width = rng.uniform(8, 15)
                gap = rng.uniform(4, 14)
                setback = rng.uniform(4.0, 9.0)
                height = rng.uniform(4.0, 8.0)
                depth = rng.uniform(8, 12)
            else:
                width, gap = rng.uniform(15, 40), rng.uniform(20, 80)
                setback = rng.uniform(12, 35)
                height = rng.uniform(5, 12)
                depth = rng.uniform(12, 25)
                if rng.random() < 0.5:  # open land: mostly nothing
                    s += width + gap
                    continue
            s_a, s_b = s, s + width
            # Shorten buildings on curves so a straight facade stays off the sidewalk.
            k = float(np.max(np.abs(np.interp([s_a, s_b, 0.5 * (s_a + s_b)], path.s, path.kappa))))
            if k > 1e-4:
                s_b = min(s_b, s_a + max(6.0, np.sqrt(8 * 0.4 / k)))
            s = s_b + gap
            if in_inter(0.5 * (s_a + s_b), margin=(s_b - s_a) / 2 + 1.0) or s_a < 0 or s_b > length:
                continue
            t_f = half + sidewalk + setback
            pa = path.point(s_a, side * t_f)
            pb = path.point(s_b, side * t_f)
            sm = 0.5 * (s_a + s_b)
            _, nrm = path.axes(sm)
            mid_lat = side * float((0.5 * (pa + pb) - path.point(sm, 0.0)) @ nrm)
            if mid_lat < t_f:  # push the chord outwards on the outside of a curve
                pa = pa + side * nrm * (t_f - mid_lat)
                pb = pb + side * nrm * (t_f - mid_lat)
            z_ground = min(pa[2], pb[2]) + kerb_h
            z0 = z_ground - 0.4  # sink into the ground: slopes leave no gap under the wall
            out = side * -nrm  # facade faces the road
            e_run = (pb - pa) / np.linalg.norm(pb - pa)
            back = side * nrm * depth
            col = facade_palette[int(rng.integers(0, 6))] * rng.uniform(0.85, 1.1, 3)
            kind = int(rng.choice(4, p=[0.4, 0.3, 0.15, 0.15]))  # plaster, brick, concrete panels, glass
            if zone == 1:
                kind = int(rng.choice(2))
            floor_h = rng.uniform(2.9, 3.6)
            spacing = rng.uniform(2.2, 4.0)
            prm = [
                kind,
                spacing,
                rng.uniform(0.35, 0.6) * spacing,
                floor_h,
                rng.uniform(0.4, 0.6) * floor_h,
                height,
                rng.uniform(0.2, 0.8),
                float(rng.integers(0, 1 << 20)),
                float(zone == 0 and rng.random() < 0.5),
                rng.uniform(0, 1),
            ]
            # Front, then the two gable ends (seen through gaps and at intersections).
            a_f, c_f = (pa, pb) if side < 0 else (pb, pa)
            _vertical_panels(b, a_f, c_f, z0, z_ground + height, out, FACADE, col, prm, sm, ground_z=z_ground)
            for end, sgn in ((pa, -1), (pb, 1)):
                a_e, c_e = (end + back, end) if sgn * side < 0 else (end, end + back)
                _vertical_panels(
                    b,
                    a_e,
                    c_e,
                    z0,
                    z_ground + height,
                    sgn * e_run,
                    FACADE,
                    col * 0.92,
                    prm,
                    sm,
                    ground_z=z_ground,
                )
            corners = np.array([pa, pb, pb + back, pa + back])
            top = corners.copy()
            top[:, 2] = z_ground + height
            base = corners.copy()
            base[:, 2] = z_ground
            add_shadow(np.vstack([base, top]), z_ground - kerb_h, sm)
            facade_h[side].append((s_a, s_b, t_f, height))
            # Suburban front yards get a hedge or a low wall along the property line.
            if zone == 1 and rng.random() < 0.6:
                t_h = half + sidewalk + 0.4
                hh = rng.uniform(0.7, 1.5)
                is_hedge = rng.random() < 0.6
                ha, hb = path.point(s_a + 0.5, side * t_h), path.point(s_b - 0.5, side * t_h)
                R = rotation_matrix(0.0, 0.0, np.arctan2(*(hb - ha)[1::-1]))
                run = float(np.hypot(*(hb - ha)[:2]))
                tb = box_table(
                    ((ha + hb) / 2)[None],
                    R[None],
                    np.array([-run / 2]),
                    np.array([run / 2]),
                    np.array([-0.3]),
                    np.array([0.3]),
                    np.array([kerb_h - 0.2]),
                    np.array([kerb_h + hh]),
                    ("front", "rear", "left", "right", "top"),
                    np.array([FOLIAGE if is_hedge else WALL]),
                    (np.array([[0.13, 0.26, 0.09]]) if is_hedge else np.array([[0.62, 0.6, 0.56]]))
                    * rng.uniform(0.8, 1.2),
                    np.zeros((1, 12), np.float32),
                )
                obj = b.new_object(
                    (*((ha + hb) / 2)[:2], run / 2, 0.3, np.arctan2(*(hb - ha)[1::-1])), OBJECTS, sm
                )
                b.add_table(np.full(len(tb["V"]), obj), tb)

    # ---- trees and poles -----------------------------------------------------------------------
    tree_gap = rng.uniform(7, 16)
    tree_p = rng.uniform(0.2, 0.9)
    leaf = np.array([0.20, 0.32, 0.10]) * rng.uniform(0.7, 1.2, 3)
    for side in (1, -1):
        s = rng.uniform(0, tree_gap)
        while s < length:
            zone = zone_at(side, s)
            if zone == 0:
                t_tree = half + sidewalk - 0.8 if sidewalk > 2.4 else None
            elif zone == 1:
                t_tree = half + sidewalk + rng.uniform(1.5, 3.0)
            else:
                t_tree = half + sidewalk + rng.uniform(2.0, 25.0)
            if t_tree is not None and rng.random() < tree_p and not in_inter(s, 4.0):
                _tree(b, rng, path, s, side * t_tree, kerb_h, leaf, add_shadow)
            s += tree_gap * rng.uniform(0.6, 1.4) * (0.7 if zone == 2 else 1.0)
    pole_gap = rng.uniform(25, 45)
    pole_sides = (1, -1) if rng.random() < 0.5 else (int(rng.choice([1, -1])),)
    for side in pole_sides:
        s = rng.uniform(0, pole_gap)
        while s < length:
            if not in_inter(s, 3.0):
                _pole(b, rng, path, s, side, half + 0.45, kerb_h, add_shadow)
            s += pole_gap

    # ---- parked cars ------------------------------------------------------------------------------
    density = cfg.parked_density if cfg.parked_density is not None else rng.uniform(0.15, 0.9)
    parked = []
    if park_w > 0:
        for side in (1, -1):
            s = rng.uniform(0, 5)
            while s < length:
                slot = rng.uniform(5.6, 7.0)
                if rng.random() < density and not in_inter(s, 7.0):
                    parked.append((s, side * (half - park_w / 2 + rng.uniform(-0.15, 0.1)), side))
                s += slot
    if parked:
        P = np.array(parked)
        n = len(P)
        length_c = rng.uniform(3.9, 4.9, n)
        width_c = rng.uniform(1.7, 1.9, n)
        height_c = rng.uniform(1.4, 1.6, n)
        colours = CAR_COLOURS[rng.integers(0, len(CAR_COLOURS), n)] * rng.uniform(0.85, 1.1, (n, 1))
        origins = path.point(P[:, 0], P[:, 1])
        _, _, _, psi, g = path.at(P[:, 0])
        # Left-side cars face the oncoming direction, like the traffic on that side.
        yaw = psi + np.where(P[:, 2] > 0, np.pi, 0.0) + rng.normal(0, 0.03, n)
        pitch = -np.arctan(g) * np.where(P[:, 2] > 0, -1.0, 1.0)
        R = np.array([rotation_matrix(0.0, p, y) for p, y in zip(pitch, yaw)])
        tb = car_tables(
            origins, R, length_c, width_c, height_c, colours, rng.integers(0, 1 << 20, n).astype(np.float32)
        )
        objs = [
            b.new_object((o[0], o[1], lc / 2, wc / 2, y), OBJECTS, s)
            for o, lc, wc, y, s in zip(origins, length_c, width_c, yaw, P[:, 0])
        ]
        b.add_table(np.repeat(objs, 10), tb)
        for o, lc, wc, hc, y, s in zip(origins, length_c, width_c, height_c, yaw, P[:, 0]):
            add_shadow(box_corners(o, y, lc, wc, hc), o[2], s)
            add_shadow(box_corners(o, y, lc + 0.5, wc + 0.4, 0.0), o[2], s, kind=1)

    polys, objects = b.tables()
    # ---- traffic ----------------------------------------------------------------------------------
    ego = _ego_motion(rng, road, s_start, cfg)
    traffic = _traffic(rng, road, ego, length, duration, cfg)
    fh = {side: np.array(v, np.float64).reshape(-1, 4) for side, v in facade_h.items()}
    return Layout(
        path,
        road,
        light,
        ego,
        traffic,
        polys,
        objects,
        np.array(shadows, np.float64).reshape(-1, 8, 3),
        np.array(shadow_kind, np.int8),
        np.array(shadow_s, np.float64),
        fh,
    )


def box_corners(origin: np.ndarray, yaw: float, length: float, width: float, height: float) -> np.ndarray:
    """The 8 corners of a yawed box standing on ``origin`` (cars: their shadows and footprints)."""
    c, s = np.cos(yaw), np.sin(yaw)
    pts = []
    for dx in (-length / 2, length / 2):
        for dy in (-width / 2, width / 2):
            for h in (0.0, height):
                pts.append([origin[0] + c * dx - s * dy, origin[1] + s * dx + c * dy, origin[2] + h])
    return np.array(pts)


def _tree(
    b: PolyBuilder, rng: np.random.Generator, path: Path, s: float, t: float, kerb_h: float, leaf, add_shadow
) -> None:
    base = path.point(s, t, kerb_h)
    trunk_h = rng.uniform(1.8, 3.5)
    r = rng.uniform(1.2, 3.2)
    z1 = trunk_h + 0.3 * r
    z2 = z1 + rng.uniform(0.8, 2.5) * r
    obj = b.new_object((base[0], base[1], r, r, 0.0), OBJECTS, s)
    tw = rng.uniform(0.12, 0.22)
    R = rotation_matrix(0, 0, rng.uniform(0, np.pi))
    bark = np.array([0.30, 0.22, 0.15]) * rng.uniform(0.7, 1.2)
    tb = box_table(
        base[None],
        R[None],
        np.array([-tw]),
        np.array([tw]),
        np.array([-tw]),
        np.array([tw]),
        np.array([-0.2]),
        np.array([z1 + 0.5]),
        ("front", "rear", "left", "right"),
        np.array([BARK]),
        bark[None],
        np.zeros((1, 12), np.float32),
    )
    b.add_table(np.full(len(tb["V"]), obj), tb)
    # Canopy: an 8-sided prism with pyramid caps (convex, so back-face culling orders its faces).
    k = 8
    a0 = rng.uniform(0, np.pi)
    ang = a0 + np.arange(k) * 2 * np.pi / k
    ring = np.stack([np.cos(ang), np.sin(ang), np.zeros(k)], axis=1)
    lo = base + ring * r + np.array([0, 0, z1 + 0.25 * (z2 - z1)])
    hi = base + ring * r * 0.92 + np.array([0, 0, z1 + 0.75 * (z2 - z1)])
    top = base + np.array([0, 0, z2])
    bot = base + np.array([0, 0, z1])
    centre = base + np.array([0, 0, 0.5 * (z1 + z2)])
    colour = np.asarray(leaf) * rng.uniform(0.8, 1.25, 3)
    seed = float(rng.integers(0, 1 << 20))
    up = np.array([0, 0, 1.0])
    for i in range(k):
        j = (i + 1) % k
        tang = hi[j] - hi[i]
        tang[2] = 0
        tang /= np.linalg.norm(tang)
        for verts in ((lo[i], lo[j], hi[j], hi[i]), (hi[i], hi[j], top), (lo[j], lo[i], bot)):
            verts = np.array(verts)
            out = verts.mean(axis=0) - centre
            e2 = np.cross(out / np.linalg.norm(out), tang)
            e2 = e2 if e2[2] >= 0 else -e2
            b.add(
                obj, verts, out, FOLIAGE, colour, [0, seed, r], centre, tang, up if abs(e2[2]) < 1e-6 else e2
            )
    pts = np.vstack([lo, hi, top[None], bot[None]])
    add_shadow(pts, base[2], s)


def _pole(
    b: PolyBuilder,
    rng: np.random.Generator,
    path: Path,
    s: float,
    side: int,
    t: float,
    kerb_h: float,
    add_shadow,
) -> None:
    base = path.point(s, side * t, kerb_h)
    psi = float(path.at(s)[3])
    h = rng.uniform(6.5, 8.5)
    R = rotation_matrix(0, 0, psi)
    grey = np.array([0.45, 0.46, 0.47]) * rng.uniform(0.8, 1.2)
    obj = b.new_object((base[0], base[1], 0.1, 0.1, psi), OBJECTS, s)
    tb = box_table(
        base[None],
        R[None],
        np.array([-0.08]),
        np.array([0.08]),
        np.array([-0.08]),
        np.array([0.08]),
        np.array([-0.2]),
        np.array([h]),
        ("front", "rear", "left", "right"),
        np.array([METAL]),
        grey[None],
        np.zeros((1, 12), np.float32),
    )
    b.add_table(np.full(len(tb["V"]), obj), tb)
    # The lamp arm reaches over the road.
    arm = 1.8
    y0, y1 = (-arm, 0.0) if side > 0 else (0.0, arm)
    tb = box_table(
        base[None],
        R[None],
        np.array([-0.06]),
        np.array([0.06]),
        np.array([y0]),
        np.array([y1]),
        np.array([h - 0.15]),
        np.array([h]),
        ("front", "rear", "left", "right", "bottom", "top"),
        np.array([METAL]),
        grey[None],
        np.zeros((1, 12), np.float32),
    )
    mid = base + R @ np.array([0, (y0 + y1) / 2, 0])
    obj = b.new_object((mid[0], mid[1], 0.06, arm / 2, psi), OBJECTS, s)
    b.add_table(np.full(len(tb["V"]), obj), tb)
    add_shadow(np.array([base, base + [0, 0, h], base + [0.05, 0.05, 0], base + [0.05, 0.05, h]]), base[2], s)


def _ego_motion(rng: np.random.Generator, road: RoadStyle, s_start: float, cfg) -> EgoMotion:
    lo, hi = cfg.speed_range
    v_mean = rng.uniform(lo + 0.3 * (hi - lo), hi - 0.3 * (hi - lo))
    room = min(v_mean - lo, hi - v_mean) * 0.95
    amps = rng.dirichlet([2, 2]) * room * rng.uniform(0.5, 1.0)
    omegas = 2 * np.pi / rng.uniform([12, 4], [30, 10])
    phases = rng.uniform(0, 2 * np.pi, 2)
    lane = int(rng.integers(0, road.lanes))
    lane_t = -(lane + 0.5) * road.lane_width
    w = cfg.camera_wobble
    weave = (0.2 * w, 2 * np.pi / rng.uniform(6, 14), rng.uniform(0, 2 * np.pi))
    wobble = np.array(
        [
            [np.deg2rad(0.3) * w, 2 * np.pi / rng.uniform(1.5, 4.0), rng.uniform(0, 2 * np.pi)],
            [np.deg2rad(0.5) * w, 2 * np.pi / rng.uniform(1.0, 3.0), rng.uniform(0, 2 * np.pi)],
            [np.deg2rad(0.4) * w, 2 * np.pi / rng.uniform(3.0, 8.0), rng.uniform(0, 2 * np.pi)],
        ]
    )
    return EgoMotion(s_start, v_mean, amps, omegas, phases, lane_t, weave, wobble)


def _traffic(
    rng: np.random.Generator, road: RoadStyle, ego: EgoMotion, length: float, duration: float, cfg
) -> Traffic:
    rows = []  # s0, speed, lane_t, lead, gap mean, gap amp, gap omega
    if cfg.moving_cars:
        dens = cfg.traffic_density
        for lane in range(road.lanes):  # oncoming lanes: one speed per lane so cars never overlap
            v = -rng.uniform(7, 14)
            s = ego.s0 + rng.uniform(10, 50)
            end = length - v * duration + 50
            while s < end:
                rows.append((s, v, (lane + 0.5) * road.lane_width, 0, 0, 0, 0))
                s += rng.uniform(25, 110) / max(dens, 1e-3)
        for lane in range(road.lanes):  # same direction
            t_lane = -(lane + 0.5) * road.lane_width
            if abs(t_lane - ego.lane_t) < 0.1:
                if rng.random() < 0.6 * min(dens, 1.0) + 0.2:
                    gap = rng.uniform(13, 30)
                    rows.append(
                        (0, 0, t_lane, 1, gap, rng.uniform(0.2, 0.4) * gap, 2 * np.pi / rng.uniform(8, 20))
                    )
                continue
            v = rng.uniform(9, 15)
            s = ego.s0 - v * duration - 50 + rng.uniform(0, 40)
            while s < length:
                rows.append((s, v, t_lane, 0, 0, 0, 0))
                s += rng.uniform(30, 120) / max(dens, 1e-3)
    A = np.array(rows, np.float64).reshape(-1, 7)
    n = len(A)
    return Traffic(
        s0=A[:, 0],
        speed=A[:, 1],
        lane_t=A[:, 2],
        lead=A[:, 3] > 0,
        gap=A[:, 4:7],
        length=rng.uniform(3.9, 4.9, n),
        width=rng.uniform(1.7, 1.9, n),
        height=rng.uniform(1.4, 1.6, n),
        colour=(CAR_COLOURS[rng.integers(0, len(CAR_COLOURS), n)] * rng.uniform(0.85, 1.1, (n, 1))).astype(
            np.float32
        ),
        seed=rng.integers(0, 1 << 20, n).astype(np.float32),
    )
