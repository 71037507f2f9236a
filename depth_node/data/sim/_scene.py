"""Scene description for the synthetic world: a table of planar convex polygons.

Every surface is a planar polygon of at most four vertices (triangles repeat their last vertex) with
an outward normal, a material, a colour, material parameters and an affine surface-coordinate frame
(s, t in metres, anchored to the world). Polygons belong to objects; the painter's sort of the
renderer orders whole objects by the distance from the camera to the object's footprint rectangle.
"""

from __future__ import annotations

import numpy as np

# Materials (shaders live in _shading.py).
ASPHALT, CONCRETE, KERB, GRASS, FACADE, CAR, GLASS_CAB, BARK, FOLIAGE, METAL, WALL = range(11)
N_PARAMS = 12
GROUND, OBJECTS = 0, 1  # render layers: everything on the ground is drawn before standing objects


class PolyBuilder:
    """Collects polygons and objects; ``tables()`` turns them into numpy arrays."""

    def __init__(self) -> None:
        self.V: list[np.ndarray] = []
        self.N: list[np.ndarray] = []
        self.E1: list[np.ndarray] = []
        self.E2: list[np.ndarray] = []
        self.O1: list[float] = []
        self.O2: list[float] = []
        self.mat: list[int] = []
        self.col: list[np.ndarray] = []
        self.prm: list[np.ndarray] = []
        self.obj: list[int] = []
        self.order: list[int] = []
        self.rects: list[tuple[float, float, float, float, float]] = []  # cx, cy, hx, hy, heading
        self.layers: list[int] = []
        self.obj_s: list[float] = []  # arc length along the road: lets the renderer slice by range
        self._count: list[int] = []

    def new_object(self, rect: tuple[float, float, float, float, float], layer: int, s_ref: float) -> int:
        self.rects.append(tuple(float(x) for x in rect))
        self.layers.append(layer)
        self.obj_s.append(float(s_ref))
        self._count.append(0)
        return len(self.rects) - 1

    def add(
        self,
        obj: int,
        verts: np.ndarray,
        outward: np.ndarray,
        mat: int,
        col,
        prm,
        origin: np.ndarray,
        e1: np.ndarray,
        e2: np.ndarray,
        off1: float = 0.0,
        off2: float = 0.0,
    ) -> None:
        """Add a polygon; s = (X - origin).e1 + off1, t = (X - origin).e2 + off2."""
        verts = np.asarray(verts, np.float64)
        if len(verts) == 3:
            verts = np.vstack([verts, verts[2:3]])
        n = newell_normal(verts)
        if n @ outward < 0:
            n = -n
        self.V.append(verts)
        self.N.append(n)
        self.E1.append(np.asarray(e1, np.float64))
        self.E2.append(np.asarray(e2, np.float64))
        self.O1.append(float(np.dot(origin, e1) - off1))
        self.O2.append(float(np.dot(origin, e2) - off2))
        self.mat.append(mat)
        self.col.append(np.asarray(col, np.float32))
        p = np.zeros(N_PARAMS, np.float32)
        p[: len(prm)] = prm
        self.prm.append(p)
        self.obj.append(obj)
        self.order.append(self._count[obj])
        self._count[obj] += 1

    def add_table(self, obj_ids: np.ndarray, table: dict[str, np.ndarray]) -> None:
        """Append a batch built by ``box_table`` (one object id per polygon)."""
        for i in range(len(table["V"])):
            self.V.append(table["V"][i])
            self.N.append(table["N"][i])
            self.E1.append(table["E1"][i])
            self.E2.append(table["E2"][i])
            self.O1.append(float(table["O1"][i]))
            self.O2.append(float(table["O2"][i]))
            self.mat.append(int(table["mat"][i]))
            self.col.append(table["col"][i])
            self.prm.append(table["prm"][i])
            o = int(obj_ids[i])
            self.obj.append(o)
            self.order.append(self._count[o])
            self._count[o] += 1

    def tables(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        V = np.array(self.V, np.float64).reshape(-1, 4, 3)
        N = np.array(self.N, np.float64).reshape(-1, 3)
        polys = {
            "V": V,
            "N": N,
            "D": np.einsum("ij,ij->i", N, V.mean(axis=1)),
            "E1": np.array(self.E1, np.float64).reshape(-1, 3),
            "O1": np.array(self.O1, np.float64),
            "E2": np.array(self.E2, np.float64).reshape(-1, 3),
            "O2": np.array(self.O2, np.float64),
            "mat": np.array(self.mat, np.int16),
            "col": np.array(self.col, np.float32).reshape(-1, 3),
            "prm": np.array(self.prm, np.float32).reshape(-1, N_PARAMS),
            "obj": np.array(self.obj, np.int32),
            "order": np.array(self.order, np.int32),
        }
        objects = {
            "rect": np.array(self.rects, np.float64).reshape(-1, 5),
            "layer": np.array(self.layers, np.int8),
            "s": np.array(self.obj_s, np.float64),
        }
        return polys, objects


def newell_normal(verts: np.ndarray) -> np.ndarray:
    """Unit normal of a (nearly) planar polygon, robust to repeated vertices."""
    nxt = np.roll(verts, -1, axis=0)
    n = np.array(
        [
            np.sum((verts[:, 1] - nxt[:, 1]) * (verts[:, 2] + nxt[:, 2])),
            np.sum((verts[:, 2] - nxt[:, 2]) * (verts[:, 0] + nxt[:, 0])),
            np.sum((verts[:, 0] - nxt[:, 0]) * (verts[:, 1] + nxt[:, 1])),
        ]
    )
    return n / max(np.linalg.norm(n), 1e-12)


# Box faces in the box's own frame (x forward, y left, z up), corners as (ix, iy, iz) in {0, 1}.
# Surface coordinates: sides run s along x from the rear and t up from the base; front/rear run s
# along y from the right; the top runs s along x and t along y.
_FACES = {
    "front": ((1, 0, 0), (1, 1, 0), (1, 1, 1), (1, 0, 1)),
    "rear": ((0, 0, 0), (0, 1, 0), (0, 1, 1), (0, 0, 1)),
    "left": ((0, 1, 0), (1, 1, 0), (1, 1, 1), (0, 1, 1)),
    "right": ((0, 0, 0), (1, 0, 0), (1, 0, 1), (0, 0, 1)),
    "top": ((0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)),
    "bottom": ((0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0)),
}
_NORMALS = {
    "front": (1, 0, 0),
    "rear": (-1, 0, 0),
    "left": (0, 1, 0),
    "right": (0, -1, 0),
    "top": (0, 0, 1),
    "bottom": (0, 0, -1),
}
FACE_CODE = {"left": 0, "right": 0, "front": 1, "rear": 2, "top": 3, "bottom": 3}


def box_table(
    origin: np.ndarray,
    R: np.ndarray,
    x0,
    x1,
    y0,
    y1,
    z0,
    z1,
    faces: tuple[str, ...],
    mat,
    col: np.ndarray,
    prm: np.ndarray,
) -> dict[str, np.ndarray]:
    """Polygons of B boxes at once (vectorised: the renderer builds moving cars every frame).

    origin (B, 3) and R (B, 3, 3) place each box frame in the world; x0..z1 (B,) are the box's
    extents in that frame; ``mat`` and ``prm[:, 0]`` (face code) are filled per face. Returns a
    polygon table ordered box-major (all faces of box 0, then box 1, ...).
    """
    # Long only by its 12-argument signature: the body is one vectorised pass over the faces.
    B = len(origin)
    lo = np.stack([x0, y0, z0], axis=1).astype(np.float64)
    hi = np.stack([x1, y1, z1], axis=1).astype(np.float64)
    F = len(faces)
    V = np.empty((B, F, 4, 3))
    N = np.empty((B, F, 3))
    E1 = np.empty((B, F, 3))
    E2 = np.empty((B, F, 3))
    O1 = np.empty((B, F))
    O2 = np.empty((B, F))
    code = np.empty(F, np.float32)
    ex, ey, ez = R[:, :, 0], R[:, :, 1], R[:, :, 2]
    for f, name in enumerate(faces):
        corners = np.array(_FACES[name], np.float64)  # (4, 3) of 0/1
        local = lo[:, None, :] + corners[None] * (hi - lo)[:, None, :]
        V[:, f] = origin[:, None, :] + np.einsum("bij,bkj->bki", R, local)
        N[:, f] = np.einsum("bij,j->bi", R, np.array(_NORMALS[name], np.float64))
        if name in ("left", "right"):
            e1, e2, off1, off2 = ex, ez, -x0, np.zeros(B)
        elif name in ("front", "rear"):
            e1, e2, off1, off2 = ey, ez, -y0, np.zeros(B)
        else:
            e1, e2, off1, off2 = ex, ey, -x0, -y0
        E1[:, f], E2[:, f] = e1, e2
        O1[:, f] = np.einsum("bi,bi->b", origin, e1) - off1
        O2[:, f] = np.einsum("bi,bi->b", origin, e2) - off2
        code[f] = FACE_CODE[name]
    P = np.repeat(np.asarray(prm, np.float32)[:, None, :], F, axis=1).copy()
    P[:, :, 0] = code[None, :]
    Vf = V.reshape(-1, 4, 3)
    Nf = N.reshape(-1, 3)
    return {
        "V": Vf,
        "N": Nf,
        "D": np.einsum("ij,ij->i", Nf, Vf.mean(axis=1)),
        "E1": E1.reshape(-1, 3),
        "O1": O1.reshape(-1),
        "E2": E2.reshape(-1, 3),
        "O2": O2.reshape(-1),
        "mat": np.broadcast_to(np.asarray(mat, np.int16).reshape(-1, 1), (B, F)).reshape(-1).copy(),
        "col": np.repeat(np.asarray(col, np.float32), F, axis=0),
        "prm": P.reshape(-1, N_PARAMS),
    }


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


def car_tables(
    origin: np.ndarray,
    R: np.ndarray,
    length: np.ndarray,
    width: np.ndarray,
    height: np.ndarray,
    col: np.ndarray,
    seed: np.ndarray,
) -> dict[str, np.ndarray]:
    """Cars as a body box plus a narrower glass cabin (10 faces each; body drawn before cabin)."""
    B = len(origin)
    body_top = 0.52 * height + 0.18
    cab_x0 = -0.36 * length
    cab_x1 = 0.14 * length
    prm = np.zeros((B, N_PARAMS), np.float32)
    prm[:, 1] = length
    prm[:, 2] = width
    prm[:, 3] = body_top
    prm[:, 4] = height
    prm[:, 5] = cab_x0 + 0.5 * length  # cabin range measured from the rear bumper
    prm[:, 6] = cab_x1 + 0.5 * length
    prm[:, 7] = seed
    faces = ("rear", "front", "left", "right", "top")
    body = box_table(
        origin,
        R,
        -0.5 * length,
        0.5 * length,
        -0.5 * width,
        0.5 * width,
        np.full(B, 0.05),
        body_top,
        faces,
        np.full(B, CAR),
        col,
        prm,
    )
    cab_w = 0.43 * width
    cab = box_table(
        origin, R, cab_x0, cab_x1, -cab_w, cab_w, body_top, height, faces, np.full(B, GLASS_CAB), col, prm
    )
    # Interleave so that each car's polygons are contiguous: body faces, then cabin faces.
    out = {}
    for k in body:
        a = body[k].reshape(B, 5, *body[k].shape[1:])
        b = cab[k].reshape(B, 5, *cab[k].shape[1:])
        out[k] = np.concatenate([a, b], axis=1).reshape(B * 10, *body[k].shape[1:])
    return out


def box_corners(origin: np.ndarray, yaw: float, length: float, width: float, height: float) -> np.ndarray:
    """The 8 corners of a yawed box standing on ``origin`` (cars: their shadows and footprints)."""
    c, s = np.cos(yaw), np.sin(yaw)
    pts = []
    for dx in (-length / 2, length / 2):
        for dy in (-width / 2, width / 2):
            for h in (0.0, height):
                pts.append([origin[0] + c * dx - s * dy, origin[1] + s * dx + c * dy, origin[2] + h])
    return np.array(pts)
