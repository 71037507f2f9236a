"""Seeded layout of a synthetic drive: road, roadside objects, light, the ego car and the traffic.

The road is built in ``_road.py``, what stands beside it in ``_roadside.py``. ``generate`` draws
every section from one random generator in a fixed order: reordering the sections, or the draws
inside one, changes every seed's drive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depth_node.data.sim._road import (
    Path,
    RoadStyle,
    crossing_streets,
    make_ground_colours,
    make_road_path,
    make_road_style,
    make_zones,
    road_surface,
)
from depth_node.data.sim._roadside import (
    Shadows,
    buildings,
    parked_cars,
    poles,
    trees,
)
from depth_node.data.sim._scene import CAR_COLOURS, PolyBuilder


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


def generate(rng: np.random.Generator, length: float, s_start: float, duration: float, cfg) -> Layout:
    """Build the whole drive. ``cfg`` is the WorldConfig (layout and traffic knobs)."""
    road = make_road_style(rng, length, s_start, cfg.intersections)
    path = make_road_path(rng, length, road, cfg)
    light = _lighting(rng)
    b = PolyBuilder()
    shadows = Shadows(light.sun)
    colours = make_ground_colours(rng)
    zones = make_zones(rng, length)
    road_surface(b, path, road, zones, colours, length)
    crossing_streets(b, path, road, colours.kerb)
    buildings(b, rng, path, road, zones, shadows, length)
    trees(b, rng, path, road, zones, shadows, length)
    poles(b, rng, path, road, shadows, length)
    parked_cars(b, rng, path, road, shadows, length, cfg.parked_density)
    polys, objects = b.tables()
    ego = _ego_motion(rng, road, s_start, cfg)
    traffic = _traffic(rng, road, ego, length, duration, cfg)
    return Layout(path, road, light, ego, traffic, polys, objects, *shadows.arrays())


def _lighting(rng: np.random.Generator) -> Lighting:
    """Sun or overcast sky, one per drive."""
    overcast = rng.random() < 0.25
    elev = np.deg2rad(rng.uniform(18, 60))
    az = rng.uniform(-np.pi, np.pi)
    sun = np.array([np.cos(elev) * np.cos(az), np.cos(elev) * np.sin(az), np.sin(elev)])
    warm = rng.uniform(0.0, 0.12)
    return Lighting(
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
