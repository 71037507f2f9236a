"""Ground truth for a KITTI split, exported once (what Monodepth2's export_gt_depth.py does).

    python -m training.kitti_gt --data-root data/kitti_raw \
        --split ../shared/data/kitti_splits/eigen/test_files.txt --out out/gt_eigen.npz
    python -m training.kitti_gt ... --source dense      # proj_depth/groundtruth (eigen_benchmark)

Velodyne GT: the scan projected into the split line's camera at the calibration's image size
(``depth_node.data.kitti.velodyne_depth_map``, KITTI's recipe). Dense/improved GT: the drive's
``proj_depth/groundtruth/image_0X`` PNG. Depth in metres, 0 = no ground truth.

File format (``np.savez_compressed``, no pickled objects): ``lines`` = the split lines, and one
float32 array ``gt_00000``, ``gt_00001``, ... per line. ``load_gt_depths`` also reads Monodepth2's
``gt_depths.npz`` (an object array under ``data``), which needs pickle: only for files you made.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from depth_node.data import kitti
from training.datasets.kitti import SplitEntry, read_split_file, resolve_drive

GT_SOURCES = ("velodyne", "dense")


def gt_depth(root: str | Path, entry: SplitEntry, source: str = "velodyne") -> np.ndarray:
    """Ground-truth depth (float32 m, 0 = none) of one split entry at the camera's image size."""
    drive_dir = resolve_drive(root, entry.folder)
    if source == "dense":
        path = kitti.depth_gt_path(drive_dir, entry.frame, cam=entry.cam)
        if not path.is_file():
            raise FileNotFoundError(f"no dense ground truth {path}")
        return kitti.read_depth_png(path)
    if source != "velodyne":
        raise ValueError(f"ground-truth source {source!r}: expected one of {GT_SOURCES}")
    calib = kitti.read_calib(drive_dir.parent, cam=entry.cam)
    velo = kitti.load_velodyne(kitti.velodyne_path(drive_dir, entry.frame))
    width, height = calib.image_size
    return kitti.velodyne_depth_map(calib, velo, height, width)


def export_gt_depths(
    root: str | Path,
    entries: Sequence[SplitEntry],
    out_path: str | Path,
    source: str = "velodyne",
    progress: bool = True,
) -> Path:
    """Write the ground truth of every entry to ``out_path`` (.npz, format in the module docstring)."""
    arrays: dict[str, np.ndarray] = {"lines": np.array([e.line() for e in entries])}
    for i, entry in enumerate(tqdm(entries, desc=f"gt ({source})", disable=not progress)):
        arrays[f"gt_{i:05d}"] = gt_depth(root, entry, source).astype(np.float32)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("wb") as f:  # a file object: savez would otherwise append ".npz" to other names
        np.savez_compressed(f, **arrays)
    return out_path


def load_gt_depths(path: str | Path) -> tuple[list[np.ndarray], list[str] | None]:
    """Ground-truth maps and split lines from ``export_gt_depths`` (or Monodepth2's gt_depths.npz)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ground-truth file {path} does not exist")
    with np.load(path, allow_pickle=False) as data:
        if "lines" in data:
            lines = [str(x) for x in data["lines"]]
            return [data[f"gt_{i:05d}"].astype(np.float32) for i in range(len(lines))], lines
    # Monodepth2's format: an object array of per-frame maps (pickled), in split order.
    with np.load(path, allow_pickle=True, encoding="latin1") as data:
        if "data" not in data:
            raise ValueError(f"{path}: expected 'lines' + 'gt_NNNNN' arrays or Monodepth2's 'data'")
        return [np.asarray(d, dtype=np.float32) for d in data["data"]], None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.kitti_gt",
        description="Export KITTI ground-truth depth for a split file (as Monodepth2's export_gt_depth).",
    )
    parser.add_argument("--data-root", required=True, type=Path, help="KITTI raw root (holds <date>/)")
    parser.add_argument("--split", required=True, type=Path, help="split file, e.g. eigen/test_files.txt")
    parser.add_argument("--source", choices=GT_SOURCES, default="velodyne")
    parser.add_argument("--out", required=True, type=Path, help="output .npz")
    args = parser.parse_args(argv)
    try:
        entries = read_split_file(args.split)
        out = export_gt_depths(args.data_root, entries, args.out, args.source)
    except (FileNotFoundError, ValueError, kitti.KittiLayoutError) as exc:
        print(f"kitti_gt: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(entries)} ground-truth maps ({args.source}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
