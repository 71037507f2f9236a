"""Procedural, world-anchored texture helpers for the synthetic world (numpy + OpenCV).

Every sampler takes surface coordinates in metres plus the pixel footprint ``fp`` (metres covered by
one pixel on that surface). Detail finer than about two pixels fades to its mean instead of
aliasing, so textures stay stable between frames at 640x192 as well as at full KITTI size.
"""

from __future__ import annotations

import cv2
import numpy as np

NOISE_SIZE = 256
NOISE_PERIOD = 8.0  # texels per noise feature: bilinear sampling of such a smooth signal is exact enough
_ROW = 512  # remap works on 2-D maps; 1-D sample lists are reshaped to rows of this length


def band_noise(rng: np.random.Generator, size: int = NOISE_SIZE, period: float = NOISE_PERIOD) -> np.ndarray:
    """Tileable band-limited noise (zero mean, unit std) with features of ``period`` texels."""
    white = rng.standard_normal((size, size))
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    f0 = 1.0 / period
    filt = np.exp(-0.5 * ((np.hypot(fx, fy) - f0) / (0.45 * f0)) ** 2)
    out = np.fft.ifft2(np.fft.fft2(white) * filt).real
    out -= out.mean()
    out /= out.std()
    return out.astype(np.float32)


def sample(tex: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear, wrap-around lookup of a tileable float32 texture at texel coordinates (x, y)."""
    n = x.size
    if n == 0:
        return np.zeros(0, np.float32)
    h, w = tex.shape[:2]
    rows = -(-n // _ROW)
    mx = np.zeros(rows * _ROW, np.float32)
    my = np.zeros(rows * _ROW, np.float32)
    # Wrap in numpy first: remap's fixed-point maps overflow for coordinates beyond +-32k texels.
    mx[:n] = np.mod(x, w)
    my[:n] = np.mod(y, h)
    out = cv2.remap(
        tex, mx.reshape(rows, _ROW), my.reshape(rows, _ROW), cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP
    )
    return out.reshape(rows * _ROW, *tex.shape[2:])[:n]


def fbm(
    tex: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    fp: np.ndarray,
    freq: float,
    octaves: int,
    gain: float = 0.6,
    lacunarity: float = 2.03,
    angle: float = 0.0,
) -> np.ndarray:
    """Fractal noise of ``octaves`` octaves starting at ``freq`` cycles/metre, band-limited by ``fp``.

    An octave keeps full weight while it has at least four pixels per cycle and is gone at two (the
    Nyquist limit), so distant surfaces get the prefiltered mean rather than shimmering noise.
    """
    out = np.zeros(u.shape, np.float32)
    amp, norm = 1.0, 0.0
    for k in range(octaves):
        f = freq * lacunarity**k
        w = np.clip((0.5 - f * fp) * 4.0, 0.0, 1.0).astype(np.float32)
        norm += amp * amp
        if w.max(initial=0.0) > 0.0:
            a = angle + 1.1 * k  # rotate octaves so their grids never line up
            ca, sa = float(np.cos(a)), float(np.sin(a))  # Python floats keep the arrays float32
            scale = f * NOISE_PERIOD
            x = (ca * u - sa * v) * scale + 37.0 * k
            y = (sa * u + ca * v) * scale + 91.0 * k
            out += (amp * w) * sample(tex, x, y)
        amp *= gain
    return out / np.float32(np.sqrt(norm))


def box(x: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Box-filtered coverage of the interval [lo, hi] by a pixel of width ``fp`` centred at x."""
    half = 0.5 * fp
    return np.clip((np.minimum(x + half, hi) - np.maximum(x - half, lo)) / fp, 0.0, 1.0)


def pulses(
    x: np.ndarray,
    period: float | np.ndarray,
    width: float | np.ndarray,
    fp: np.ndarray,
    phase: float | np.ndarray = 0.0,
) -> np.ndarray:
    """Box-filtered coverage of periodic pulses [k*period + phase, k*period + phase + width]."""

    def integral(y: np.ndarray) -> np.ndarray:
        y = y - phase
        q = np.floor(y / period)
        return q * width + np.clip(y - q * period, 0.0, width)

    half = 0.5 * fp
    return np.clip((integral(x + half) - integral(x - half)) / fp, 0.0, 1.0)


def hash01(seed: int, *cells: np.ndarray) -> np.ndarray:
    """Deterministic pseudo-random value in [0, 1) per integer cell (vectorised, wraps on purpose)."""
    h = np.full(np.shape(cells[0]), np.uint64(seed * 2654435761 + 1013904223), dtype=np.uint64)
    primes = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))
    for k, c in enumerate(cells):
        ci = np.asarray(c, dtype=np.int64).view(np.uint64)
        h = (h ^ (ci * primes[k % 3])) * np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(29)
    h = h * np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(32)
    return ((h >> np.uint64(40)).astype(np.float64) / float(1 << 24)).astype(np.float32)


class MipTexture:
    """A tileable detail texture (e.g. cracks) with a box-filtered pyramid, sampled by footprint."""

    def __init__(self, image: np.ndarray, texels_per_metre: float):
        self.levels = [image.astype(np.float32)]
        while self.levels[-1].shape[0] > 8:
            prev = self.levels[-1]
            # Exact 2x2 averaging keeps the pyramid tileable (no border handling involved).
            self.levels.append(
                cv2.resize(prev, (prev.shape[1] // 2, prev.shape[0] // 2), interpolation=cv2.INTER_AREA)
            )
        self.density = texels_per_metre
        self.mean = float(self.levels[-1].mean())

    def __call__(self, u: np.ndarray, v: np.ndarray, fp: np.ndarray) -> np.ndarray:
        top = len(self.levels) - 1
        lod = np.clip(np.log2(np.maximum(fp * self.density, 1e-6)), 0.0, top - 1e-3)
        l0 = lod.astype(np.int32)
        frac = (lod - l0).astype(np.float32)
        out = np.empty(u.shape, np.float32)
        for level in np.unique(l0):
            sel = np.flatnonzero(l0 == level)
            x = u[sel] * self.density
            y = v[sel] * self.density
            s0 = 0.5**level
            a = sample(self.levels[level], x * s0 - 0.5 + 0.5 * s0, y * s0 - 0.5 + 0.5 * s0)
            s1 = 0.5 ** (level + 1)
            b = sample(self.levels[level + 1], x * s1 - 0.5 + 0.5 * s1, y * s1 - 0.5 + 0.5 * s1)
            out[sel] = a + frac[sel] * (b - a)
        return out


def crack_texture(rng: np.random.Generator, size: int = 512, count: int = 26) -> np.ndarray:
    """Tileable image of thin branching cracks (1 = crack), drawn as random walks on a torus."""
    img = np.zeros((size, size), np.float32)
    for _ in range(count):
        p = rng.uniform(0, size, 2)
        heading = rng.uniform(0, 2 * np.pi)
        pts = [p.copy()]
        for _ in range(int(rng.integers(6, 22))):
            heading += rng.normal(0, 0.5)
            p = p + rng.uniform(4, 14) * np.array([np.cos(heading), np.sin(heading)])
            pts.append(p.copy())
        poly = (np.array(pts) * 16).astype(np.int32)
        thickness = int(rng.integers(1, 3))
        for dx in (-size, 0, size):  # draw the copies that wrap around the tile edges
            for dy in (-size, 0, size):
                cv2.polylines(img, [poly + np.array([dx, dy]) * 16], False, 1.0, thickness, cv2.LINE_AA, 4)
    return np.clip(img, 0, 1)
