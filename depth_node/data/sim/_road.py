"""The road of a synthetic drive: centreline path, cross-section, zones, and the ground polygons.

World frame: x, y horizontal, z up. The road follows a path given by arc length s; a point beside
the road is addressed by (s, t, h): t is the lateral offset (positive to the left of the driving
direction) and h the height above the road at s. The road cross-section is level (no camber).
What stands beside the road (buildings, trees, poles, parked cars) is placed in ``_roadside.py``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from depth_node.data.sim._scene import ASPHALT, CONCRETE, GRASS, GROUND, KERB, PolyBuilder

STEP = 0.5  # path sampling (m)
GROUND_EXTENT = 60.0  # lateral reach of the terrain on each side (m)
UP = np.array([0, 0, 1.0])


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

    def at_intersection(self, s: float, margin: float = 0.0) -> bool:
        """Whether s lies on a crossing street (widened by ``margin`` on each side)."""
        inter = self.intersections
        return bool(np.any(np.abs(s - inter[:, 0]) < inter[:, 1] / 2 + margin)) if len(inter) else False


@dataclass
class Zones:
    """What lines each side of the street: runs (s0, s1, kind) per side.

    kind 0: city blocks, 1: suburban houses, 2: open land (also beyond the last run).
    """

    runs: dict[int, list[tuple[float, float, int]]]

    def at(self, side: int, s: float) -> int:
        for a, c, k in self.runs[side]:
            if a <= s < c:
                return k
        return 2


@dataclass
class GroundColours:
    pavement: np.ndarray
    kerb: np.ndarray
    grass: np.ndarray
    plaza: np.ndarray


def make_road_style(
    rng: np.random.Generator, length: float, s_start: float, intersections: bool
) -> RoadStyle:
    """Cross-section (lanes, parking, kerb, sidewalk, markings, asphalt) and the crossing streets."""
    lanes = 1 if rng.random() < 0.6 else 2
    lane_w = rng.uniform(3.0, 3.7)
    park_w = rng.uniform(2.0, 2.5) if rng.random() < 0.7 else 0.0
    half = lanes * lane_w + park_w
    kerb_h = rng.uniform(0.10, 0.18)
    sidewalk = rng.uniform(1.6, 4.5)
    grey = rng.uniform(0.22, 0.36)
    asphalt = np.array([grey, grey, grey * rng.uniform(0.98, 1.08)]) * rng.uniform(0.95, 1.05, 3)
    inters = []
    if intersections:
        pos = s_start + rng.uniform(30, 120)
        while pos < length - 40:
            if rng.random() < 0.6:
                inters.append((pos, rng.uniform(7.0, 12.0)))
            pos += rng.uniform(90, 260)
    return RoadStyle(
        lanes,
        lane_w,
        park_w,
        half,
        kerb_h,
        sidewalk,
        int(rng.integers(0, 3)),
        bool(rng.random() < 0.7),
        asphalt.astype(np.float32),
        np.array(inters, np.float64).reshape(-1, 2),
    )


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


def make_road_path(rng: np.random.Generator, length: float, road: RoadStyle, cfg) -> Path:
    """The centreline for ``cfg``'s curviness and grade, straight through the crossing streets."""
    straight_at = [(a - w / 2 - 40, a + w / 2 + 40) for a, w in road.intersections.tolist()]
    return make_path(rng, length, cfg.curviness, cfg.max_grade, straight_at)


def make_ground_colours(rng: np.random.Generator) -> GroundColours:
    return GroundColours(
        pavement=np.array([0.60, 0.60, 0.58]) * rng.uniform(0.85, 1.1, 3),
        kerb=np.array([0.66, 0.66, 0.64]) * rng.uniform(0.9, 1.05),
        grass=np.array([0.26, 0.36, 0.14]) * rng.uniform(0.8, 1.2, 3),
        plaza=np.array([0.55, 0.52, 0.48]) * rng.uniform(0.85, 1.1, 3),
    )


def make_zones(rng: np.random.Generator, length: float) -> Zones:
    """Zones per side, drawn from one of three street styles (city, suburb, countryside)."""
    style = rng.choice(3, p=[0.45, 0.35, 0.20])
    zone_p = [(0.8, 0.15, 0.05), (0.2, 0.6, 0.2), (0.1, 0.3, 0.6)][style]
    runs: dict[int, list[tuple[float, float, int]]] = {}
    for side in (1, -1):
        zl, pos = [], 0.0
        while pos < length:
            seg = rng.uniform(60, 220)
            zl.append((pos, pos + seg, int(rng.choice(3, p=zone_p))))
            pos += seg
        runs[side] = zl
    return Zones(runs)


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
    b.add(obj, verts, UP, mat, col, prm, origin, tan, nrm, off1=sm)


def _kerb(b: PolyBuilder, path: Path, s0: float, s1: float, t: float, height: float, side: int, col) -> None:
    obj = b.new_object(_rect_along(path, s0, s1, t, t + side * 0.1), GROUND, 0.5 * (s0 + s1))
    verts = np.array(
        [path.point(s0, t, 0), path.point(s1, t, 0), path.point(s1, t, height), path.point(s0, t, height)]
    )
    sm = 0.5 * (s0 + s1)
    tan, nrm = path.axes(sm)
    origin = path.point(sm, t, 0.0)
    b.add(obj, verts, -side * nrm, KERB, col, [0], origin, tan, UP, off1=sm)


def road_surface(
    b: PolyBuilder, path: Path, road: RoadStyle, zones: Zones, colours: GroundColours, length: float
) -> None:
    """Road, kerbs, sidewalks and verges in 3 m slices, split at the crossing streets' edges."""
    breaks = set(np.arange(0.0, length, 3.0).round(3).tolist())
    for a, w in road.intersections.tolist():
        breaks.update([a - w / 2, a + w / 2])
    half, kerb_h, sidewalk = road.half_width, road.kerb_height, road.sidewalk
    for s0, s1 in itertools.pairwise(np.array(sorted(breaks))):
        sm = 0.5 * (s0 + s1)
        _strip(b, path, s0, s1, -half, half, 0.0, ASPHALT, road.asphalt, [0])
        if road.at_intersection(sm):
            continue
        for side in (1, -1):
            t_k = side * half
            _kerb(b, path, s0, s1, t_k, kerb_h, side, colours.kerb)
            t_w = side * (half + sidewalk)
            lo, hi = sorted((t_k, t_w))
            _strip(b, path, s0, s1, lo, hi, kerb_h, CONCRETE, colours.pavement, [0])
            city = zones.at(side, sm) == 0
            near_mat, near_col = (CONCRETE, colours.plaza) if city else (GRASS, colours.grass)
            t_n = side * (half + sidewalk + 9.0)
            lo, hi = sorted((t_w, t_n))
            _strip(b, path, s0, s1, lo, hi, kerb_h, near_mat, near_col, [1])
            lo, hi = sorted((t_n, side * GROUND_EXTENT))
            _strip(b, path, s0, s1, lo, hi, kerb_h, GRASS, colours.grass * 0.9, [0])


def crossing_streets(b: PolyBuilder, path: Path, road: RoadStyle, kerb_col: np.ndarray) -> None:
    """Each crossing street: straight, perpendicular, its own texture frame (s' outwards), kerbed."""
    half = road.half_width
    for a, w in road.intersections.tolist():
        tan, nrm = path.axes(a)
        centre = path.point(a, 0.0)
        for side in (1, -1):
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
                b.add(obj, verts, UP, ASPHALT, road.asphalt, [1, half, w], centre, side * nrm, tan)
                for edge in (-1, 1):  # kerbs of the blocks facing the crossing street
                    sk = a + edge * w / 2
                    verts = np.array(
                        [
                            path.point(sk, side * k0),
                            path.point(sk, side * k1),
                            path.point(sk, side * k1, road.kerb_height),
                            path.point(sk, side * k0, road.kerb_height),
                        ]
                    )
                    obj = b.new_object(
                        _rect_along(path, sk, sk + edge * 0.1, side * k0, side * k1), GROUND, a
                    )
                    b.add(obj, verts, -edge * tan, KERB, kerb_col, [0], centre, side * nrm, UP)
