"""Contact sheet of a synthetic drive: frames next to their colourised depth, moving cars outlined
(green: the camera's way, the lead car among them; orange: oncoming)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from depth_node.colormap import colorize_depth
from depth_node.data.sim.world import Frame, SyntheticDrive
from depth_node.metrics import MOTION_LABELS

MAX_DEPTH = 80.0  # depth (m) at the dark end of the colours; sky (no depth) is black
OUTLINES = {"same_way": (0, 255, 0), "oncoming": (255, 140, 0)}  # RGB per motion region


def frame_tile(frame: Frame) -> np.ndarray:
    """The image with moving cars outlined by their motion region, above its colourised depth."""
    image = frame.image.copy()
    for region, rgb in OUTLINES.items():
        mask = (frame.motion == MOTION_LABELS[region]).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(image, contours, -1, rgb, 1)
    label = f"#{frame.index}  t={frame.timestamp:.1f}s  v={np.linalg.norm(frame.velocity_imu):.1f}m/s"
    cv2.putText(image, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
    return np.vstack([image, colorize_depth(frame.depth, 2.0, MAX_DEPTH, invalid_rgb=(0, 0, 0))])


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
