"""What stands beside the road of a synthetic drive: buildings, hedges and walls, trees, poles, parked cars.

Each section draws its sizes, colours and spacing from the drive's random generator as it places
objects along the road (``_road.py``); ``_layout.generate`` calls the sections in a fixed order.
Every object also adds its shadow on the ground to a :class:`Shadows` collection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depth_node.data.sim._road import Path, RoadStyle, Zones
from depth_node.data.sim._scene import (
    BARK,
    CAR_COLOURS,
    FACADE,
    FOLIAGE,
    METAL,
    OBJECTS,
    WALL,
    PolyBuilder,
    box_corners,
    box_table,
    car_tables,
)
from depth_node.geometry import rotation_matrix


class Shadows:
    """Shadow polygons on the ground, collected while the scene is built."""

    def __init__(self, sun: np.ndarray) -> None:
        self.direction = -sun[:2] / max(sun[2], 0.2)  # ground offset per metre of height
        self.polygons: list[np.ndarray] = []
        self.kind: list[int] = []
        self.s: list[float] = []

    def add(self, points: np.ndarray, z: float, s_ref: float, kind: int = 0) -> None:
        """Shadow of ``points`` on the ground at height z: cast by the sun (kind 0) or contact (1)."""
        pts = points.copy()
        if kind == 0:
            pts[:, :2] += (points[:, 2:3] - z) * self.direction[None, :]
        self.polygons.append(convex_hull_ground(pts, z + 0.002))
        self.kind.append(kind)
        self.s.append(s_ref)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.array(self.polygons, np.float64).reshape(-1, 8, 3),
            np.array(self.kind, np.int8),
            np.array(self.s, np.float64),
        )


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


# ---- buildings, walls, hedges ------------------------------------------------------------------


@dataclass
class _Plot:
    """One lot along the street: its frontage, the gap after it, and the building on it."""

    width: float
    gap: float
    setback: float
    height: float
    depth: float
    empty: bool = False  # open land: nothing built


def buildings(
    b: PolyBuilder,
    rng: np.random.Generator,
    path: Path,
    road: RoadStyle,
    zones: Zones,
    shadows: Shadows,
    length: float,
) -> None:
    """Rows of buildings along both sides, each zone with its own sizes, setbacks and gaps."""
    heights = [(5.0, 12.0), (8.0, 20.0), (12.0, 30.0)][int(rng.integers(0, 3))]
    setback_city = rng.uniform(0.0, 2.0)
    palette = rng.uniform(0.35, 0.85, (6, 3)) * np.array([1.0, 0.95, 0.88])
    for side in (1, -1):
        s = rng.uniform(-10, 5)
        while s < length:
            zone = zones.at(side, s)
            plot = _plot(rng, zone, heights, setback_city)
            if plot.empty:
                s += plot.width + plot.gap
                continue
            s_a, s_b = s, s + plot.width
            # Shorten buildings on curves so a straight facade stays off the sidewalk.
            k = float(np.max(np.abs(np.interp([s_a, s_b, 0.5 * (s_a + s_b)], path.s, path.kappa))))
            if k > 1e-4:
                s_b = min(s_b, s_a + max(6.0, np.sqrt(8 * 0.4 / k)))
            s = s_b + plot.gap
            if (
                road.at_intersection(0.5 * (s_a + s_b), margin=(s_b - s_a) / 2 + 1.0)
                or s_a < 0
                or s_b > length
            ):
                continue
            _building(b, rng, path, road, side, s_a, s_b, plot, zone, palette, shadows)
            # Suburban front yards get a hedge or a low wall along the property line.
            if zone == 1 and rng.random() < 0.6:
                _front_yard(b, rng, path, road, side, s_a, s_b)


def _plot(rng: np.random.Generator, zone: int, heights: tuple[float, float], setback_city: float) -> _Plot:
    if zone == 0:
        width = rng.uniform(8, 30)
        gap = rng.uniform(0, 4) if rng.random() < 0.3 else 0.0
        setback = setback_city + rng.uniform(0, 0.6)
        return _Plot(width, gap, setback, rng.uniform(*heights), rng.uniform(10, 16))
    if zone == 1:
        width = rng.uniform(8, 15)
        gap = rng.uniform(4, 14)
        setback = rng.uniform(4.0, 9.0)
        return _Plot(width, gap, setback, rng.uniform(4.0, 8.0), rng.uniform(8, 12))
    width, gap = rng.uniform(15, 40), rng.uniform(20, 80)
    setback = rng.uniform(12, 35)
    height = rng.uniform(5, 12)
    depth = rng.uniform(12, 25)
    return _Plot(width, gap, setback, height, depth, empty=rng.random() < 0.5)  # open land: mostly nothing


def _building(
    b: PolyBuilder,
    rng: np.random.Generator,
    path: Path,
    road: RoadStyle,
    side: int,
    s_a: float,
    s_b: float,
    plot: _Plot,
    zone: int,
    palette: np.ndarray,
    shadows: Shadows,
) -> None:
    """A box on the plot between s_a and s_b: textured front and gable ends, and its sun shadow."""
    t_f = road.half_width + road.sidewalk + plot.setback
    pa = path.point(s_a, side * t_f)
    pb = path.point(s_b, side * t_f)
    sm = 0.5 * (s_a + s_b)
    _, nrm = path.axes(sm)
    mid_lat = side * float((0.5 * (pa + pb) - path.point(sm, 0.0)) @ nrm)
    if mid_lat < t_f:  # push the chord outwards on the outside of a curve
        pa = pa + side * nrm * (t_f - mid_lat)
        pb = pb + side * nrm * (t_f - mid_lat)
    z_ground = min(pa[2], pb[2]) + road.kerb_height
    z0 = z_ground - 0.4  # sink into the ground: slopes leave no gap under the wall
    top = z_ground + plot.height
    out = side * -nrm  # facade faces the road
    e_run = (pb - pa) / np.linalg.norm(pb - pa)
    back = side * nrm * plot.depth
    col = palette[int(rng.integers(0, 6))] * rng.uniform(0.85, 1.1, 3)
    prm = _facade_params(rng, zone, plot.height)
    # Front, then the two gable ends (seen through gaps and at intersections).
    a_f, c_f = (pa, pb) if side < 0 else (pb, pa)
    _vertical_panels(b, a_f, c_f, z0, top, out, FACADE, col, prm, sm, ground_z=z_ground)
    for end, sgn in ((pa, -1), (pb, 1)):
        a_e, c_e = (end + back, end) if sgn * side < 0 else (end, end + back)
        _vertical_panels(b, a_e, c_e, z0, top, sgn * e_run, FACADE, col * 0.92, prm, sm, ground_z=z_ground)
    corners = np.array([pa, pb, pb + back, pa + back])
    roof = corners.copy()
    roof[:, 2] = top
    base = corners.copy()
    base[:, 2] = z_ground
    shadows.add(np.vstack([base, roof]), z_ground - road.kerb_height, sm)


def _facade_params(rng: np.random.Generator, zone: int, height: float) -> list[float]:
    """FACADE material parameters: style, window grid, floors, seed (see _shading.py)."""
    kind = int(rng.choice(4, p=[0.4, 0.3, 0.15, 0.15]))  # plaster, brick, concrete panels, glass
    if zone == 1:
        kind = int(rng.choice(2))
    floor_h = rng.uniform(2.9, 3.6)
    spacing = rng.uniform(2.2, 4.0)
    return [
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
        b.add(obj, verts, outward, mat, col, prm, origin, e1, up)


def _front_yard(
    b: PolyBuilder, rng: np.random.Generator, path: Path, road: RoadStyle, side: int, s_a: float, s_b: float
) -> None:
    """A hedge or a low wall along the property line in front of a house."""
    kerb_h = road.kerb_height
    t_h = road.half_width + road.sidewalk + 0.4
    hh = rng.uniform(0.7, 1.5)
    is_hedge = rng.random() < 0.6
    ha, hb = path.point(s_a + 0.5, side * t_h), path.point(s_b - 0.5, side * t_h)
    heading = np.arctan2(*(hb - ha)[1::-1])
    R = rotation_matrix(0.0, 0.0, heading)
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
    obj = b.new_object((*((ha + hb) / 2)[:2], run / 2, 0.3, heading), OBJECTS, 0.5 * (s_a + s_b))
    b.add_table(np.full(len(tb["V"]), obj), tb)


# ---- trees, poles, parked cars -----------------------------------------------------------------


def trees(
    b: PolyBuilder,
    rng: np.random.Generator,
    path: Path,
    road: RoadStyle,
    zones: Zones,
    shadows: Shadows,
    length: float,
) -> None:
    """Street trees on the sidewalk (city), in front yards (suburbs), scattered (open land)."""
    tree_gap = rng.uniform(7, 16)
    tree_p = rng.uniform(0.2, 0.9)
    leaf = np.array([0.20, 0.32, 0.10]) * rng.uniform(0.7, 1.2, 3)
    verge = road.half_width + road.sidewalk
    for side in (1, -1):
        s = rng.uniform(0, tree_gap)
        while s < length:
            zone = zones.at(side, s)
            if zone == 0:
                t_tree = verge - 0.8 if road.sidewalk > 2.4 else None
            elif zone == 1:
                t_tree = verge + rng.uniform(1.5, 3.0)
            else:
                t_tree = verge + rng.uniform(2.0, 25.0)
            if t_tree is not None and rng.random() < tree_p and not road.at_intersection(s, 4.0):
                _tree(b, rng, path, s, side * t_tree, road.kerb_height, leaf, shadows)
            s += tree_gap * rng.uniform(0.6, 1.4) * (0.7 if zone == 2 else 1.0)


def poles(
    b: PolyBuilder, rng: np.random.Generator, path: Path, road: RoadStyle, shadows: Shadows, length: float
) -> None:
    """Street lamps at a regular spacing on one or both sides."""
    pole_gap = rng.uniform(25, 45)
    pole_sides = (1, -1) if rng.random() < 0.5 else (int(rng.choice([1, -1])),)
    for side in pole_sides:
        s = rng.uniform(0, pole_gap)
        while s < length:
            if not road.at_intersection(s, 3.0):
                _pole(b, rng, path, s, side, road.half_width + 0.45, road.kerb_height, shadows)
            s += pole_gap


def parked_cars(
    b: PolyBuilder,
    rng: np.random.Generator,
    path: Path,
    road: RoadStyle,
    shadows: Shadows,
    length: float,
    density: float | None,
) -> None:
    """Cars in the parking lanes: a ``density`` fraction of the slots taken (None: drawn)."""
    density = density if density is not None else rng.uniform(0.15, 0.9)
    parked = []
    if road.park_width > 0:
        for side in (1, -1):
            s = rng.uniform(0, 5)
            while s < length:
                slot = rng.uniform(5.6, 7.0)
                if rng.random() < density and not road.at_intersection(s, 7.0):
                    t = road.half_width - road.park_width / 2 + rng.uniform(-0.15, 0.1)
                    parked.append((s, side * t, side))
                s += slot
    if parked:
        _park(b, rng, path, np.array(parked), shadows)


def _park(b: PolyBuilder, rng: np.random.Generator, path: Path, P: np.ndarray, shadows: Shadows) -> None:
    """Parked cars at rows (s, t, side) of ``P``, with their sun and contact shadows."""
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
        shadows.add(box_corners(o, y, lc, wc, hc), o[2], s)
        shadows.add(box_corners(o, y, lc + 0.5, wc + 0.4, 0.0), o[2], s, kind=1)


def _tree(
    b: PolyBuilder,
    rng: np.random.Generator,
    path: Path,
    s: float,
    t: float,
    kerb_h: float,
    leaf,
    shadows: Shadows,
) -> None:
    """A tree at (s, t) on ground kerb_h high: a square trunk under a leafy canopy."""
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
    shadows.add(_canopy(b, rng, obj, base, r, z1, z2, leaf), base[2], s)


def _canopy(
    b: PolyBuilder, rng: np.random.Generator, obj: int, base: np.ndarray, r: float, z1: float, z2: float, leaf
) -> np.ndarray:
    """An 8-sided prism with pyramid caps (convex, so back-face culling orders its faces); its points."""
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
    return np.vstack([lo, hi, top[None], bot[None]])


def _pole(
    b: PolyBuilder,
    rng: np.random.Generator,
    path: Path,
    s: float,
    side: int,
    t: float,
    kerb_h: float,
    shadows: Shadows,
) -> None:
    """A lamp post at s on ``side``, t from the road's centre: a thin mast, its arm over the road."""
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
    shadows.add(
        np.array([base, base + [0, 0, h], base + [0.05, 0.05, 0], base + [0.05, 0.05, h]]), base[2], s
    )
