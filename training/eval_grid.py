"""``depth-eval``'s picture: one row per frame, image | prediction | ground truth | relative error."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from depth_node.colormap import colorize_depth, colorize_error, spread_sparse_depth
from depth_node.metrics import MAX_DEPTH, relative_error_map


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    tile = np.ascontiguousarray(tile)
    cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def write_grid(
    path: str | Path,
    rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    max_depth: float = MAX_DEPTH,
    tile_width: int = 640,
) -> Path:
    """PNG: one row per frame, image | prediction | ground truth | relative error (red: too far).

    ``rows``: (title, rgb, pred metres, gt metres) with pred and gt at the same size.
    """
    lines = []
    for title, rgb, pred, gt in rows:
        height, width = gt.shape
        tile_h = max(1, round(height * tile_width / width))
        values = np.concatenate([pred[np.isfinite(pred) & (pred > 0)], gt[np.isfinite(gt) & (gt > 0)]])
        lo, hi = np.percentile(values, [1, 99]) if values.size else (1.0, max_depth)
        lo, hi = max(float(lo), 0.5), min(max(float(hi), float(lo) * 2), max_depth)
        gt_show = spread_sparse_depth(gt)
        tiles = [
            _label(cv2.resize(rgb, (tile_width, tile_h), interpolation=cv2.INTER_AREA), title[:60]),
            _label(colorize_depth(pred, lo, hi), f"prediction  {lo:.0f}-{hi:.0f} m (log)"),
            _label(colorize_depth(gt_show, lo, hi), "ground truth"),
            _label(colorize_error(relative_error_map(pred, gt_show)), "(pred-gt)/gt  red: too far, +-50%"),
        ]
        tiles = [
            cv2.resize(t, (tile_width, tile_h), interpolation=cv2.INTER_NEAREST)
            if t.shape[1] != tile_width
            else t
            for t in tiles
        ]
        lines.append(np.concatenate(tiles, axis=1))
    grid = np.concatenate(lines, axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return path
