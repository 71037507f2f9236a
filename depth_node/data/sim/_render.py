"""Polygon rasteriser with exact per-pixel ray-plane geometry (numpy + OpenCV).

Polygon ids are painted into a label image with ``cv2.fillConvexPoly``: first the ground layer,
then standing objects, each far-to-near by the distance to their footprint. Depth, surface
coordinates and shading then come from intersecting every pixel's ray with its polygon's plane, so
image, depth and LiDAR share one geometry exactly. Where a standing object's plane lies behind the
ground seen at the same pixel (a wall's buried foot, a car beyond a crest) the ground wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from depth_node.data.sim._layout import Layout
from depth_node.data.sim._roadside import convex_hull_ground
from depth_node.data.sim._scene import GROUND, N_PARAMS, OBJECTS, box_corners, car_tables
from depth_node.data.sim._shading import Materials, Samples
from depth_node.data.sim._textures import fbm
from depth_node.geometry import rotation_matrix
from depth_node.metrics import MOTION_LABELS

STATIC, SAME_WAY, ONCOMING = (MOTION_LABELS[name] for name in ("static", "same_way", "oncoming"))

NEAR = 0.05
FAR = 150.0  # objects wholly beyond this are culled (the terrain edge then meets the sky)
SHIFT = 4  # sub-pixel bits for cv2.fillConvexPoly
BEHIND, AHEAD = 60.0, FAR + 40.0  # arc-length window of static objects considered per frame


@dataclass
class View:
    R: np.ndarray  # camera optical -> world rotation
    c: np.ndarray  # optical centre in the world
    K: np.ndarray
    width: int
    height: int


@dataclass
class FrameTable:
    """The polygons that may be seen in one frame: static ones near the car plus moving cars."""

    V: np.ndarray
    N: np.ndarray
    D: np.ndarray
    E1: np.ndarray
    O1: np.ndarray
    E2: np.ndarray
    O2: np.ndarray
    mat: np.ndarray
    col: np.ndarray
    prm: np.ndarray
    rect: np.ndarray
    layer: np.ndarray
    obj: np.ndarray
    order: np.ndarray
    motion: np.ndarray  # per polygon, depth_node.metrics.MOTION_LABELS
    shadows: np.ndarray
    shadow_kind: np.ndarray


class Renderer:
    def __init__(self, layout: Layout, materials: Materials):
        self.layout = layout
        self.mat = materials
        p, o = layout.polys, layout.objects
        s_poly = o["s"][p["obj"]]
        order = np.argsort(s_poly, kind="stable")
        self.static = {k: v[order] for k, v in p.items()}
        self.static["rect"] = o["rect"][self.static["obj"]]
        self.static["layer"] = o["layer"][self.static["obj"]]
        self.static_s = s_poly[order]
        sh = np.argsort(layout.shadow_s, kind="stable")
        self.shadows = layout.shadows[sh]
        self.shadow_kind = layout.shadow_kind[sh]
        self.shadow_s = layout.shadow_s[sh]
        self.n_objects = len(o["rect"])
        self._rays: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    # ---- scene per frame ----------------------------------------------------------------------------
    def moving_cars(self, time: float) -> tuple[np.ndarray, ...]:
        """Origins, rotations and indices of the moving cars at ``time`` that lie on the road."""
        tr, path, ego = self.layout.traffic, self.layout.path, self.layout.ego
        if len(tr.s0) == 0:
            return np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros(0, int)
        s = tr.s0 + tr.speed * time
        if tr.lead.any():
            g = tr.gap[tr.lead]
            s[tr.lead] = ego.s(time) + g[:, 0] + g[:, 1] * np.sin(g[:, 2] * time)
        s_ego = ego.s(time)
        keep = np.flatnonzero((s > s_ego - BEHIND) & (s < s_ego + AHEAD) & (s > 0) & (s < path.s[-1]))
        s = s[keep]
        origins = path.point(s, tr.lane_t[keep])
        _, _, _, psi, g = path.at(s)
        back = tr.speed[keep] < 0
        yaw = psi + np.where(back, np.pi, 0.0)
        pitch = -np.arctan(g) * np.where(back, -1.0, 1.0)
        R = np.array([rotation_matrix(0.0, p, y) for p, y in zip(pitch, yaw)]).reshape(-1, 3, 3)
        return origins, R, keep

    def frame_table(self, time: float, s_cam: float) -> FrameTable:
        lo, hi = np.searchsorted(self.static_s, [s_cam - BEHIND, s_cam + AHEAD])
        st = {k: v[lo:hi] for k, v in self.static.items()}
        origins, R, keep = self.moving_cars(time)
        tr = self.layout.traffic
        n = len(keep)
        dyn = car_tables(
            origins, R, tr.length[keep], tr.width[keep], tr.height[keep], tr.colour[keep], tr.seed[keep]
        )
        yaw = np.arctan2(R[:, 1, 0], R[:, 0, 0])
        # Oncoming cars drive at negative speed; the lead car (speed 0 in the table) keeps the car's way.
        car_motion = np.where(tr.speed[keep] < 0, ONCOMING, SAME_WAY).astype(np.uint8)
        rect = np.stack([origins[:, 0], origins[:, 1], tr.length[keep] / 2, tr.width[keep] / 2, yaw], axis=1)
        m = len(st["V"])
        tab = {
            k: np.concatenate([st[k], dyn[k]])
            for k in ("V", "N", "D", "E1", "O1", "E2", "O2", "mat", "col", "prm")
        }
        # Shadows: static ones near the car, plus each moving car's sun shadow and contact shadow.
        a, b = np.searchsorted(self.shadow_s, [s_cam - BEHIND, s_cam + AHEAD])
        shadows = [self.shadows[a:b]]
        kinds = [self.shadow_kind[a:b]]
        if n:
            light = self.layout.light
            sd = -light.sun[:2] / max(light.sun[2], 0.2)
            for i in range(n):
                ln, wd, ht = tr.length[keep[i]], tr.width[keep[i]], tr.height[keep[i]]
                corners = box_corners(origins[i], yaw[i], ln, wd, ht)
                pts = corners.copy()
                pts[:, :2] += (corners[:, 2:3] - origins[i, 2]) * sd
                shadows.append(convex_hull_ground(pts, origins[i, 2] + 0.002)[None])
                footprint = box_corners(origins[i], yaw[i], ln + 0.5, wd + 0.4, 0.0)
                shadows.append(convex_hull_ground(footprint, origins[i, 2] + 0.002)[None])
                kinds.append(np.array([0, 1], np.int8))
        return FrameTable(
            **tab,
            rect=np.concatenate([st["rect"], np.repeat(rect, 10, axis=0)]),
            layer=np.concatenate([st["layer"], np.full(10 * n, OBJECTS, np.int8)]),
            obj=np.concatenate([st["obj"], np.repeat(self.n_objects + np.arange(n), 10)]),
            order=np.concatenate([st["order"], np.tile(np.arange(10), n)]),
            motion=np.concatenate([np.full(m, STATIC, np.uint8), np.repeat(car_motion, 10)]),
            shadows=np.concatenate(shadows).reshape(-1, 8, 3),
            shadow_kind=np.concatenate(kinds),
        )

    # ---- rasterisation --------------------------------------------------------------------------------
    def rays(self, K: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        key = (width, height, *np.asarray(K, np.float64).ravel().tolist())
        if key not in self._rays:
            if len(self._rays) > 8:  # camera + LiDAR views; drop stale sizes
                self._rays.clear()
            v, u = np.mgrid[0:height, 0:width].astype(np.float32)
            ru = ((u - K[0, 2]) / K[0, 0]).astype(np.float32).ravel()
            self._rays[key] = (ru, ((v - K[1, 2]) / K[1, 1]).astype(np.float32).ravel())
        return self._rays[key]

    def labels(self, tab: FrameTable, view: View) -> tuple[np.ndarray, np.ndarray]:
        """Label image (polygon index, -1 = sky) and the ground-only label image."""
        w, h = view.width, view.height
        K = view.K
        cam = np.einsum("pkj,ji->pki", tab.V - view.c, view.R)  # world -> camera optical frame
        z = cam[..., 2]
        facing = np.einsum("pj,pj->p", tab.N, view.c - tab.V[:, 0]) > 0
        zmax, zmin = z.max(axis=1), z.min(axis=1)
        keep = facing & (zmax > NEAR) & (zmin < FAR)
        # Frustum test on the vertices in front of the camera (cheap, conservative).
        with np.errstate(divide="ignore", invalid="ignore"):
            u = K[0, 0] * cam[..., 0] / z + K[0, 2]
            v = K[1, 1] * cam[..., 1] / z + K[1, 2]
        front = zmin > NEAR
        outside = front & ((u.max(1) < -1) | (u.min(1) > w) | (v.max(1) < -1) | (v.min(1) > h))
        keep &= ~outside
        idx = np.flatnonzero(keep)
        # Painter's order: ground layer first, then objects; far-to-near by footprint distance.
        r = tab.rect[idx]
        dx, dy = view.c[0] - r[:, 0], view.c[1] - r[:, 1]
        ca, sa = np.cos(r[:, 4]), np.sin(r[:, 4])
        lx = np.maximum(np.abs(ca * dx + sa * dy) - r[:, 2], 0)
        ly = np.maximum(np.abs(-sa * dx + ca * dy) - r[:, 3], 0)
        key = np.hypot(lx, ly)
        order = np.lexsort((tab.order[idx], tab.obj[idx], -key, tab.layer[idx]))
        idx = idx[order]
        layer = tab.layer[idx]
        label = np.full((h, w), -1, np.int32)
        ground = None
        scale = float(1 << SHIFT)
        for j, i in enumerate(idx):
            if ground is None and layer[j] != GROUND:
                ground = label.copy()
            if front[i]:
                pts = np.stack([u[i], v[i]], axis=1)
            else:
                pts = _clip_near(cam[i], K)
                if pts is None:
                    continue
            cv2.fillConvexPoly(label, np.round(pts * scale).astype(np.int32), int(i), cv2.LINE_8, SHIFT)
        if ground is None:
            ground = label.copy()
        return label, ground

    def depth_of(
        self, tab: FrameTable, view: View, poly: np.ndarray, ru: np.ndarray, rv: np.ndarray
    ) -> np.ndarray:
        """Optical-axis depth of rays (ru, rv, 1) hitting the planes of polygons ``poly``."""
        Nc = (tab.N @ view.R).astype(np.float32)  # normals in the camera frame (rows)
        Dc = (tab.D - tab.N @ view.c).astype(np.float32)
        den = Nc[poly, 0] * ru + Nc[poly, 1] * rv + Nc[poly, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            return (Dc[poly] / den).astype(np.float32)

    def resolve(self, tab: FrameTable, view: View) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Labels after the ground test, plus (flat) pixel indices and depths of the hit pixels."""
        label, ground = self.labels(tab, view)
        ru, rv = self.rays(view.K, view.width, view.height)
        lab = label.ravel()
        gnd = ground.ravel()
        idx = np.flatnonzero(lab >= 0)
        p = lab[idx]
        z = self.depth_of(tab, view, p, ru[idx], rv[idx])
        obj = (tab.layer[p] != GROUND) & (gnd[idx] >= 0)
        lab = lab.copy()
        if obj.any():
            j = idx[obj]
            zg = self.depth_of(tab, view, gnd[j], ru[j], rv[j])
            zo = z[obj]
            behind = (zg > 0) & ((zo > zg + 1e-3) | ~(zo > 0))
            if behind.any():
                jj = j[behind]
                lab[jj] = gnd[jj]
                z[np.flatnonzero(obj)[behind]] = zg[behind]
        # Rays that graze a plane just past its edge (the terrain at the horizon) count as sky.
        bad = ~((z > 0) & (z < 4 * FAR))
        if bad.any():
            lab[idx[bad]] = -1
            keep = ~bad
            idx, z = idx[keep], z[keep]
        return lab, idx, z

    # ---- camera image -----------------------------------------------------------------------------------
    def render(
        self, tab: FrameTable, view: View, noise_rng: np.random.Generator | None, noise_std: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w, h = view.width, view.height
        lab, idx, z = self.resolve(tab, view)
        ru, rv = self.rays(view.K, w, h)
        p = lab[idx]
        R, c = view.R.tolist(), view.c  # Python floats keep the per-pixel arrays float32
        rx, ry = ru[idx], rv[idx]
        dirw = [rx * R[k][0] + ry * R[k][1] + R[k][2] for k in range(3)]
        rel = [z * d for d in dirw]  # world point relative to the camera
        s = _dot(rel, tab.E1, p) + (tab.E1 @ c - tab.O1).astype(np.float32)[p]
        t = _dot(rel, tab.E2, p) + (tab.E2 @ c - tab.O2).astype(np.float32)[p]
        x = rel[0] + np.float32(c[0])
        y = rel[1] + np.float32(c[1])
        rnorm = np.sqrt(rx * rx + ry * ry + 1.0)
        Nc = (tab.N @ view.R).astype(np.float32)
        cos = np.abs(Nc[p, 0] * rx + Nc[p, 1] * ry + Nc[p, 2]) / rnorm
        f = float(0.5 * (view.K[0, 0] + view.K[1, 1]))
        fp = (z * rnorm / f) / np.sqrt(np.maximum(cos, 0.03))
        albedo = self.shade(tab, p, s, t, x, y, fp)
        # Lighting: a sun term (shadowed on the ground) and a sky term that prefers up-facing surfaces.
        light = self.layout.light
        sun_dot = np.clip(tab.N @ light.sun, 0, None)
        amb = (light.ambient[None, :] * (0.72 + 0.28 * tab.N[:, 2:3].clip(0, 1))).astype(np.float32)
        sun = (light.sun_colour[None, :] * sun_dot[:, None]).astype(np.float32)
        sunvis, ao = self.shadow_masks(tab, view)
        on_ground = tab.layer[p] == GROUND
        vis = np.where(on_ground, 1.0 - light.shadow * sunvis.ravel()[idx], 1.0).astype(np.float32)
        occl = np.where(on_ground, 1.0 - 0.55 * ao.ravel()[idx], 1.0).astype(np.float32)
        shaded = albedo * (amb[p] + sun[p] * vis[:, None]) * occl[:, None]
        img = np.empty((h * w, 3), np.float32)
        sky = np.ones(h * w, bool)
        sky[idx] = False
        img[sky] = self.sky(view, np.flatnonzero(sky))
        img[idx] = shaded
        img = img.reshape(h, w, 3) * np.float32(light.exposure)
        # Camera optics: a slight blur (anti-aliases polygon edges), then sensor noise.
        img = cv2.GaussianBlur(img, (0, 0), 0.5)
        img = np.clip(img * 255.0, 0, 255)
        if noise_rng is not None and noise_std > 0:
            img += noise_rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise_std)
        image = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        depth = np.full(h * w, np.nan, np.float32)
        depth[idx] = z
        motion = np.full(h * w, STATIC, np.uint8)
        motion[idx] = tab.motion[p]
        return image, depth.reshape(h, w), motion.reshape(h, w)

    def shade(self, tab: FrameTable, p: np.ndarray, s, t, x, y, fp) -> np.ndarray:
        mats = tab.mat[p]
        out = np.empty((len(p), 3), np.float32)
        # One stable sort groups the samples by material (cheaper than a mask per material).
        order = np.argsort(mats, kind="stable")
        bounds = np.flatnonzero(np.diff(mats[order])) + 1
        for sel in np.split(order, bounds):
            if len(sel) == 0:
                continue
            m = mats[sel[0]]
            ps = p[sel]
            smp = Samples(
                s[sel],
                t[sel],
                x[sel],
                y[sel],
                np.maximum(fp[sel], 1e-4).astype(np.float32),
                tab.col[ps],
                tab.prm[ps].reshape(-1, N_PARAMS),
            )
            out[sel] = self.mat.albedo(int(m), smp)
        return out

    def shadow_masks(self, tab: FrameTable, view: View) -> tuple[np.ndarray, np.ndarray]:
        w, h = view.width, view.height
        masks = [np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)]
        if len(tab.shadows):
            cam = np.einsum("pkj,ji->pki", tab.shadows - view.c, view.R)
            zmin, zmax = cam[..., 2].min(1), cam[..., 2].max(1)
            scale = float(1 << SHIFT)
            for i in np.flatnonzero((zmax > NEAR) & (zmin < FAR)):
                pts = _clip_near(cam[i], view.K)
                if pts is not None and len(pts) >= 3:
                    cv2.fillConvexPoly(
                        masks[int(tab.shadow_kind[i])],
                        np.round(pts * scale).astype(np.int32),
                        1.0,
                        cv2.LINE_8,
                        SHIFT,
                    )
        sigma = max(0.6, w / 900.0)
        return cv2.GaussianBlur(masks[0], (0, 0), sigma), cv2.GaussianBlur(masks[1], (0, 0), 2.5 * sigma)

    def sky(self, view: View, pix: np.ndarray) -> np.ndarray:
        """Sky at infinity: a gradient by elevation plus clouds fixed to directions (no parallax)."""
        ru, rv = self.rays(view.K, view.width, view.height)
        ru, rv = ru[pix], rv[pix]
        R = view.R.tolist()
        d = [ru * R[k][0] + rv * R[k][1] + R[k][2] for k in range(3)]
        norm = np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2)
        el = np.clip(d[2] / norm, 0, 1)
        light = self.layout.light
        a = np.sqrt(el)[:, None]
        col = light.sky_horizon[None, :] * (1 - a) + light.sky_zenith[None, :] * a
        if light.clouds > 0:
            # Clouds on a plane 1 km up, seen along the ray direction only (no parallax).
            zc = np.maximum(d[2] / norm, 0.03)
            u, v = d[0] / norm / zc, d[1] / norm / zc
            fp = 1.0 / (float(0.5 * (view.K[0, 0] + view.K[1, 1])) * zc * zc)
            cloud = fbm(self.mat.noise[3], u, v, fp, 0.6, 4, 0.55)
            fade = np.clip((el - 0.01) / 0.08, 0, 1)  # thin out towards the horizon haze
            cover = (np.clip(cloud * 0.8 + (light.clouds - 0.5) * 1.5, 0, 1) * fade)[:, None]
            col = col * (1 - cover) + np.array([0.93, 0.93, 0.94]) * cover
        return col.astype(np.float32)


def _dot(rel: list[np.ndarray], E: np.ndarray, p: np.ndarray) -> np.ndarray:
    E32 = E.astype(np.float32)
    return rel[0] * E32[p, 0] + rel[1] * E32[p, 1] + rel[2] * E32[p, 2]


def _clip_near(poly_cam: np.ndarray, K: np.ndarray) -> np.ndarray | None:
    """Clip a camera-frame polygon to z > NEAR (Sutherland-Hodgman) and project it."""
    out = []
    n = len(poly_cam)
    for k in range(n):
        a, b = poly_cam[k], poly_cam[(k + 1) % n]
        ina, inb = a[2] > NEAR, b[2] > NEAR
        if ina:
            out.append(a)
        if ina != inb:
            f = (NEAR - a[2]) / (b[2] - a[2])
            out.append(a + f * (b - a))
    if len(out) < 3:
        return None
    q = np.array(out)
    return np.stack([K[0, 0] * q[:, 0] / q[:, 2] + K[0, 2], K[1, 1] * q[:, 1] / q[:, 2] + K[1, 2]], axis=1)
