"""Material shaders: albedo of world-anchored surface samples (camera pixels or LiDAR returns).

A shader gets 1-D arrays of the samples of one material: surface coordinates ``s, t`` (metres, in
the polygon's own frame), world ``x, y``, footprint ``fp`` (metres per pixel on the surface), and the
per-polygon colour ``col`` (n, 3) and parameters ``prm`` (n, 12). It returns albedo (n, 3) in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depth_node.data.sim._road import RoadStyle
from depth_node.data.sim._scene import (
    ASPHALT,
    BARK,
    CAR,
    CONCRETE,
    FACADE,
    FOLIAGE,
    GLASS_CAB,
    GRASS,
    KERB,
    METAL,
    WALL,
)
from depth_node.data.sim._textures import MipTexture, band_noise, box, crack_texture, fbm, hash01, pulses


@dataclass
class Samples:
    s: np.ndarray
    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    fp: np.ndarray
    col: np.ndarray
    prm: np.ndarray


class Materials:
    """Textures of one drive plus the shaders that read them."""

    def __init__(self, rng: np.random.Generator, road: RoadStyle, seed: int):
        self.noise = [band_noise(rng) for _ in range(4)]
        self.cracks = MipTexture(crack_texture(rng), texels_per_metre=48.0)
        self.road = road
        self.seed = seed
        self.white = np.array([0.86, 0.86, 0.83], np.float32)
        self.yellow = np.array([0.85, 0.68, 0.18], np.float32)
        self._shaders = {
            ASPHALT: self._asphalt,
            CONCRETE: self._concrete,
            KERB: self._kerb,
            GRASS: self._grass,
            FACADE: self._facade,
            CAR: self._car,
            GLASS_CAB: self._cabin,
            BARK: self._bark,
            FOLIAGE: self._foliage,
            METAL: self._metal,
            WALL: self._wall,
        }

    def albedo(self, mat: int, smp: Samples) -> np.ndarray:
        return np.clip(self._shaders[mat](smp), 0.0, 1.0).astype(np.float32)

    # ---- ground -------------------------------------------------------------------------------
    def _asphalt(self, m: Samples) -> np.ndarray:
        lum, n2 = self._asphalt_luminance(m)
        main = m.prm[:, 0] < 0.5  # the drive's own road; the rest are crossing streets
        cov = np.zeros(len(m.s), np.float32)
        yellow = np.zeros(len(m.s), np.float32)
        if main.any():
            lum_main = lum[main]
            self._lane_wear(lum_main, m.t[main], m.fp[main])
            lum[main] = lum_main
            cov[main], yellow[main] = self._road_markings(m.s[main], m.t[main], m.fp[main])
        side = ~main
        if side.any():
            cov[side] = _crossing_markings(m.s[side], m.t[side], m.fp[side], m.prm[side])
        cov = np.clip(cov, 0, 1) * np.clip(0.8 + 0.4 * n2, 0.4, 1.0)  # worn paint
        alb = m.col * lum[:, None]
        paint = self.white + (self.yellow - self.white) * np.clip(yellow, 0, 1)[:, None]
        return alb + (paint - alb) * cov[:, None]

    def _asphalt_luminance(self, m: Samples) -> tuple[np.ndarray, np.ndarray]:
        """Grain at three scales, cracks and repair patches; also the middle scale's noise (paint wear)."""
        N = self.noise
        x, y, s, t, fp = m.x, m.y, m.s, m.t, m.fp
        n1 = fbm(N[0], x, y, fp, 0.11, 3, 0.75)
        n2 = fbm(N[1], x, y, fp, 0.9, 3, 0.75)
        n3 = fbm(N[2], x, y, fp, 7.0, 3, 0.85)
        lum = 1.0 + 0.13 * n1 + 0.11 * n2 + 0.13 * n3
        lum *= 1.0 - 0.6 * self.cracks(x, y, fp)
        # Repair patches: a hashed rectangle in some 6 m x 2.5 m cells of the road frame.
        cs, ct = np.floor(s / 6.0), np.floor(t / 2.5)
        h = hash01(self.seed + 11, cs, ct)
        sel = h < 0.22
        if sel.any():
            h2 = hash01(self.seed + 12, cs[sel], ct[sel])
            ls, lt = s[sel] - cs[sel] * 6.0, t[sel] - ct[sel] * 2.5
            cov = box(ls, 0.4 + 2.0 * h2, 5.6 - 1.0 * h2, fp[sel]) * box(lt, 0.25, 2.25 - 0.8 * h2, fp[sel])
            lum[sel] *= 1.0 + (h2 - 0.45) * 0.5 * cov
        return lum, n2

    def _lane_wear(self, lum: np.ndarray, t: np.ndarray, fp: np.ndarray) -> None:
        """Darken ``lum`` in place: polished tyre tracks in the lanes, the gutter along the kerb."""
        rs = self.road
        at = np.abs(t)
        q = np.mod(at, rs.lane_width) - 0.5 * rs.lane_width
        in_lanes = at < rs.lanes * rs.lane_width
        wear = box(np.abs(q), 0.5, 1.05, fp) * in_lanes  # tyre tracks, polished darker
        lum *= 1.0 - 0.07 * wear - 0.05 * box(np.abs(q), 0.0, 0.35, fp) * in_lanes
        lum *= 1.0 - 0.12 * box(at, rs.half_width - 0.35, rs.half_width + 1, fp)  # gutter

    def _road_markings(self, s: np.ndarray, t: np.ndarray, fp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Paint coverage and its yellow part on the drive's road: zebras and stop lines at the
        crossings, centre, lane and edge lines (interrupted across the crossings)."""
        rs = self.road
        at = np.abs(t)
        drive = rs.lanes * rs.lane_width
        c = np.zeros(len(s), np.float32)
        yel = np.zeros(len(s), np.float32)
        lines_ok = np.ones(len(s), bool)
        for si, w in rs.intersections:
            d = s - si
            ad = np.abs(d)
            lines_ok &= ad > w / 2 + 4.7
            c += (
                box(ad, w / 2 + 0.8, w / 2 + 3.8, fp)
                * pulses(t, 1.1, 0.55, fp, 0.275)
                * (at < rs.half_width - 0.3)
            )
            stop = np.where(t < 0, -d, d)
            c += box(stop, w / 2 + 4.2, w / 2 + 4.6, fp) * box(at, 0.1, drive, fp)
        if rs.centre == 0:
            cl = box(t, -0.06, 0.06, fp) * pulses(s, 9.0, 3.0, fp)
        elif rs.centre == 1:
            cl = box(at, 0.06, 0.18, fp)
            yel += cl * lines_ok
        else:
            cl = box(t, -0.07, 0.07, fp)
        lane_lines = cl
        if rs.lanes > 1:
            lane_lines = lane_lines + box(at, rs.lane_width - 0.06, rs.lane_width + 0.06, fp) * pulses(
                s, 12.0, 3.0, fp
            )
        if rs.edge_lines:
            lane_lines = lane_lines + box(at, drive - 0.07, drive + 0.07, fp)
        c += lane_lines * lines_ok
        return c, yel

    def _slabs(self, m: Samples, a: float, b: float, contrast: float, salt: int) -> np.ndarray:
        """Slab brightness per a x b cell plus dark joints, faded out where cells get sub-pixel."""
        cs, ct = np.floor(m.s / a), np.floor(m.t / b)
        fade = np.clip(1.5 - 2.0 * m.fp / min(a, b), 0.0, 1.0)
        slab = 1.0 + contrast * (hash01(self.seed + salt, cs, ct) - 0.5) * 2.0 * fade
        joint = np.maximum(pulses(m.s, a, 0.02, m.fp, -0.01), pulses(m.t, b, 0.02, m.fp, -0.01))
        return slab * (1.0 - 0.35 * joint)

    def _concrete(self, m: Samples) -> np.ndarray:
        N = self.noise
        plaza = m.prm[:, 0] > 0.5
        lum = np.empty(len(m.s), np.float32)
        if (~plaza).any():
            lum[~plaza] = self._slabs(_take(m, ~plaza), 1.5, 1.25, 0.1, 21)
        if plaza.any():
            lum[plaza] = self._slabs(_take(m, plaza), 0.6, 0.6, 0.12, 22)
        lum *= 1.0 + 0.08 * fbm(N[0], m.x, m.y, m.fp, 0.3, 2) + 0.07 * fbm(N[1], m.x, m.y, m.fp, 2.0, 2)
        lum *= 1.0 + 0.1 * fbm(N[2], m.x, m.y, m.fp, 10.0, 3)
        return m.col * lum[:, None]

    def _kerb(self, m: Samples) -> np.ndarray:
        N = self.noise
        lum = 1.0 + 0.1 * fbm(N[3], m.s, m.t, m.fp, 6.0, 3) + 0.06 * fbm(N[1], m.s, m.t, m.fp, 1.0, 2)
        lum *= 1.0 - 0.4 * pulses(m.s, 1.0, 0.015, m.fp)
        lum *= 0.9 + 0.1 * box(m.t, 0.1, 1.0, m.fp)
        return m.col * lum[:, None]

    def _grass(self, m: Samples) -> np.ndarray:
        N = self.noise
        big = fbm(N[0], m.x, m.y, m.fp, 0.06, 2)
        lum = 1.0 + 0.22 * fbm(N[1], m.x, m.y, m.fp, 1.5, 4, 0.8) + 0.12 * fbm(N[3], m.x, m.y, m.fp, 0.3, 2)
        dry = np.clip(0.5 + 0.6 * big, 0, 1)[:, None]
        col = m.col * (1 - dry) + np.array([0.42, 0.40, 0.24], np.float32) * dry
        return col * lum[:, None]

    # ---- buildings --------------------------------------------------------------------------------
    def _facade(self, m: Samples) -> np.ndarray:
        N = self.noise
        s, h, fp, P = m.s, m.t, m.fp, m.prm
        kind, spacing, win_w, floor_h, win_h = P[:, 0], P[:, 1], P[:, 2], P[:, 3], P[:, 4]
        height, door, seed, shop = P[:, 5], P[:, 6], P[:, 7], P[:, 8]
        lum = 1.0 + 0.05 * fbm(N[0], s, h, fp, 0.4, 2) + 0.07 * fbm(N[2], s, h, fp, 4.0, 3)
        brick = kind == 1
        if brick.any():
            bs, bh, bf = s[brick], h[brick], fp[brick]
            row = np.floor(bh / 0.075)
            off = 0.12 * np.mod(row, 2)
            fade = np.clip(1.5 - 2.0 * bf / 0.075, 0, 1)
            mortar = np.maximum(pulses(bh, 0.075, 0.012, bf), pulses(bs + off, 0.24, 0.012, bf))
            var = (hash01(self.seed + 31, np.floor((bs + off) / 0.24), row) - 0.5) * 0.25 * fade
            lum[brick] *= (1.0 + var) * (1.0 + 0.45 * mortar)
        panel = kind == 2
        if panel.any():
            ps, ph, pf = s[panel], h[panel], fp[panel]
            joint = np.maximum(pulses(ps, 3.0, 0.03, pf), pulses(ph, floor_h[panel], 0.03, pf))
            fade = np.clip(1.5 - 2.0 * pf / 3.0, 0, 1)
            var = (
                (hash01(self.seed + 32, np.floor(ps / 3.0), np.floor(ph / floor_h[panel])) - 0.5)
                * 0.16
                * fade
            )
            lum[panel] *= (1.0 + var) * (1.0 - 0.4 * joint)
        glass = kind == 3
        win_w = np.where(glass, 0.88 * spacing, win_w)
        win_h = np.where(glass, 0.8 * floor_h, win_h)
        # Floor bands and the roof trim give horizontal structure at every distance.
        lum *= 1.0 - 0.12 * pulses(h, floor_h, 0.18, fp, -0.09) * (kind != 3)
        lum *= 1.0 - 0.2 * box(h, height - 0.5, height + 1.0, fp)
        alb = m.col * lum[:, None]
        upper = (h > floor_h) & (h < height - 0.7)
        ph = 0.5 * (spacing - win_w)
        sill = 0.32 * floor_h
        cover = pulses(s, spacing, win_w, fp, ph) * pulses(h, floor_h, win_h, fp, sill) * upper
        frame = pulses(s, spacing, win_w + 0.18, fp, ph - 0.09) * pulses(
            h, floor_h, win_h + 0.18, fp, sill - 0.09
        )
        frame = np.clip(frame * upper - cover, 0, 1)
        ground = h <= floor_h
        shopw = box(h, 0.45, floor_h - 0.5, fp) * pulses(s, 2 * spacing, 1.7 * spacing, fp, 0.15 * spacing)
        cover = cover + ground * np.where(shop > 0.5, shopw, 0.0)
        doorc = box(h, -1.0, 2.3, fp) * pulses(s, 14.0, 1.3, fp, door * 12.0) * ground
        cell = hash01(self.seed + 33, np.floor((s - ph) / spacing), np.floor((h - sill) / floor_h), seed)
        tone = (cell - 0.5) * 0.25
        vert = np.clip((np.mod(h - sill, floor_h)) / np.maximum(win_h, 0.1), 0, 1)
        glass_col = np.stack(
            [0.10 + 0.14 * vert + tone, 0.13 + 0.16 * vert + tone, 0.17 + 0.20 * vert + tone], axis=1
        )
        curtain = (cell > 0.75)[:, None] & (vert > 0.35)[:, None]
        glass_col = np.where(
            curtain, np.array([0.55, 0.50, 0.42], np.float32) * (0.7 + 0.6 * cell[:, None]), glass_col
        )
        glass_col *= 1.0 + 0.06 * fbm(N[1], s, h, fp, 2.0, 2)[:, None]
        alb = alb + (np.array([0.82, 0.82, 0.80], np.float32) - alb) * frame[:, None]
        alb = alb + (glass_col - alb) * np.clip(cover, 0, 1)[:, None]
        return alb + (np.array([0.25, 0.16, 0.10], np.float32) - alb) * doorc[:, None]

    def _wall(self, m: Samples) -> np.ndarray:
        N = self.noise
        lum = 1.0 + 0.1 * fbm(N[2], m.s, m.t, m.fp, 3.0, 3) + 0.06 * fbm(N[0], m.s, m.t, m.fp, 0.5, 2)
        lum *= 1.0 - 0.3 * pulses(m.s, 2.0, 0.02, m.fp)
        return m.col * lum[:, None]

    # ---- cars ---------------------------------------------------------------------------------------
    def _car(self, m: Samples) -> np.ndarray:
        s, h, fp, P = m.s, m.t, m.fp, m.prm
        face, L, W, Hb = P[:, 0], P[:, 1], P[:, 2], P[:, 3]
        shade = 0.8 + 0.3 * np.clip(h / np.maximum(Hb, 0.1), 0, 1)
        alb = m.col * shade[:, None]
        dark = np.array([0.05, 0.05, 0.055], np.float32)
        bumper = box(h, -1, 0.3, fp)
        alb = alb + (dark * 2 - alb) * (bumper * (face != 3))[:, None]
        side = face == 0
        # Wheels (tyre + rim) and a door seam on the sides.
        wheel = np.zeros(len(s), np.float32)
        rim = np.zeros(len(s), np.float32)
        for c in (0.85, -0.85):
            sc = np.where(c > 0, c, L + c)
            d = np.hypot(s - sc, h - 0.33)
            wheel = np.maximum(wheel, box(d, -1, 0.34, fp))
            rim = np.maximum(rim, box(d, -1, 0.19, fp))
        seam = pulses(s, 1.0, 0.02, fp) * box(s, 0.3 * L, 0.75 * L, fp) * box(h, 0.3, Hb - 0.05, fp)
        alb = alb * (1 - 0.5 * seam * side)[:, None]
        alb = alb + (dark - alb) * (wheel * side)[:, None]
        alb = alb + (np.array([0.55, 0.55, 0.56], np.float32) - alb) * (rim * side)[:, None]
        front, rear = face == 1, face == 2
        lamps = (box(s, 0.12, 0.45, fp) + box(s, W - 0.45, W - 0.12, fp)) * box(h, Hb - 0.28, Hb - 0.1, fp)
        head = np.array([0.92, 0.92, 0.86], np.float32)
        tail = np.array([0.70, 0.06, 0.05], np.float32)
        alb = alb + (head - alb) * (lamps * front)[:, None] + (tail - alb) * (lamps * rear)[:, None]
        grille = box(s, 0.55, W - 0.55, fp) * box(h, Hb - 0.42, Hb - 0.2, fp) * front
        alb = alb + (dark - alb) * grille[:, None]
        plate = box(s, W / 2 - 0.26, W / 2 + 0.26, fp) * box(h, 0.32, 0.45, fp) * (front | rear)
        return alb + (np.array([0.9, 0.9, 0.88], np.float32) - alb) * plate[:, None]

    def _cabin(self, m: Samples) -> np.ndarray:
        s, h, fp, P = m.s, m.t, m.fp, m.prm
        face, W, Hb, H = P[:, 0], P[:, 2], P[:, 3], P[:, 4]
        cab_len = P[:, 6] - P[:, 5]
        side = face == 0
        endf = (face == 1) | (face == 2)
        win_h = box(h, Hb + 0.06, H - 0.07, fp)
        pillars = box(s, 0.4, cab_len - 0.14, fp) * (
            1 - box(s, 0.55 * cab_len - 0.06, 0.55 * cab_len + 0.06, fp)
        )
        glass = win_h * np.where(side, pillars, 0) + win_h * box(s, 0.08, 0.86 * W - 0.08, fp) * endf
        vert = np.clip((h - Hb) / np.maximum(H - Hb, 0.1), 0, 1)
        g = np.stack([0.07 + 0.18 * vert, 0.08 + 0.2 * vert, 0.10 + 0.24 * vert], axis=1)
        paint = m.col * 0.95
        return paint + (g - paint) * glass[:, None]

    # ---- vegetation and street furniture -------------------------------------------------------------
    def _bark(self, m: Samples) -> np.ndarray:
        lum = 1.0 + 0.2 * fbm(self.noise[3], m.s * 4.0, m.t * 0.5, m.fp * 4.0, 1.0, 3)
        return m.col * lum[:, None]

    def _foliage(self, m: Samples) -> np.ndarray:
        N = self.noise
        u = m.s + m.prm[:, 1] * 0.37
        clump = fbm(N[1], u, m.t, m.fp, 0.9, 4, 0.75)
        lum = np.clip(0.85 + 0.45 * clump, 0.25, 1.6)
        hue = fbm(N[0], u, m.t, m.fp, 0.25, 2)[:, None]
        col = m.col * (1.0 + 0.15 * hue * np.array([1.0, 0.6, 1.0], np.float32))
        return col * lum[:, None]

    def _metal(self, m: Samples) -> np.ndarray:
        lum = 1.0 + 0.06 * fbm(self.noise[2], m.s, m.t, m.fp, 2.0, 2)
        return m.col * lum[:, None]


def _take(m: Samples, sel: np.ndarray) -> Samples:
    return Samples(m.s[sel], m.t[sel], m.x[sel], m.y[sel], m.fp[sel], m.col[sel], m.prm[sel])


def _crossing_markings(s: np.ndarray, t: np.ndarray, fp: np.ndarray, prm: np.ndarray) -> np.ndarray:
    """Paint coverage on a crossing street (s outwards from the road's axis): zebra, stop line, centre line.

    ``prm[:, 1]`` is the main road's half width, ``prm[:, 2]`` the crossing street's width.
    """
    half = prm[:, 1]
    c = box(s, half + 0.8, half + 3.8, fp) * pulses(t, 1.1, 0.55, fp, 0.275)
    c += box(s, half + 4.2, half + 4.6, fp) * box(t, -prm[:, 2] / 2 + 0.3, 0, fp)
    c += box(t, -0.06, 0.06, fp) * pulses(s, 9.0, 3.0, fp) * (s > half + 5)
    return c
