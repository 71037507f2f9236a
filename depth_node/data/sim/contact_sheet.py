"""Contact sheet of a synthetic drive: frames next to their colourised depth, moving cars outlined."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from depth_node.data.sim.world import Frame, SyntheticDrive


def colourise_depth(depth: np.ndarray, max_depth: float = 80.0) -> np.ndarray:
    """RGB uint8 image of a depth map through a colormap (near = bright), sky black."""
    valid = np.isfinite(depth) & (depth > 0)
    norm = np.zeros(depth.shape, np.float32)
    # Log depth from 2 m (bright) to max_depth (dark): near and middle range both keep contrast.
    d = np.clip(depth[valid], 2.0, max_depth)
    norm[valid] = 1.0 - np.log(d / 2.0) / np.log(max_depth / 2.0)
    bgr = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_MAGMA)
    bgr[~valid] = 0
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def frame_tile(frame: Frame) -> np.ndarray:
    """The image with moving cars outlined in green, above its colourised depth."""
    image = frame.image.copy()
    mask = frame.moving_mask.astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(image, contours, -1, (0, 255, 0), 1)
    label = f"#{frame.index}  t={frame.timestamp:.1f}s  v={np.linalg.norm(frame.velocity_imu):.1f}m/s"
    cv2.putText(image, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
    return np.vstack([image, colourise_depth(frame.depth)])


def make_contact_sheet(
    drive: SyntheticDrive, indices: Sequence[int], path: str | Path, columns: int | None = None
) -> Path:
    """Write a PNG grid of ``indices`` (image over depth per tile); returns the path written."""
    if len(indices) == 0:
        raise ValueError("make_contact_sheet needs at least one frame index")
    tiles = [frame_tile(drive.frame(i)) for i in indices]
    return write_grid(tiles, path, columns or min(len(tiles), 4))


def write_grid(tiles: Sequence[np.ndarray], path: str | Path, columns: int) -> Path:
    """Write RGB tiles (same size) as a PNG grid with a thin gap between tiles."""
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    gap = 4
    sheet = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write contact sheet to {path}")
    return path
