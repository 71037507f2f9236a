"""Ordinal point pairs from dense ground truth, written as a DIW annotation CSV.

Depth in the Wild trains and scores on one point pair per image with a human "A is nearer / farther"
label. Drives with dense ground truth (the synthetic world, KITTI's completed depth) give the same
kind of label without humans: this samples pairs from the ground truth and writes them in DIW's own
CSV layout, so ``data.source=diw`` trains on them and ``depth-eval --protocol diw`` scores them,
through exactly the code that reads the published files.

How pairs are drawn (per frame, ``count`` pairs, each its own CSV sample):

- half anywhere in the image (two valid ground-truth pixels), half on one image row, the second
  point mirrored about the vertical centre line: on a road scene "the lower point is nearer" orders
  most random pairs by itself, and row pairs take that shortcut away;
- a pair is kept only when the farther depth is at least ``min_ratio`` times the nearer one: DIW's
  annotators say only "nearer" or "farther", so near-ties have no label to copy.

Usage::

    python -m training.diw_pairs --data-root sim/kitti --drives 2011_09_26/2011_09_26_drive_0001_sync \\
        --pairs-per-frame 4 --out pairs/train.csv
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.baselines import valid_gt_mask
from training.datasets.common import DataError
from training.datasets.diw import DiwPair, write_diw_csv
from training.datasets.kitti import KittiDataset, split_from_drives

MIN_RATIO = 1.05


def sample_ordinal_pairs(
    depth: np.ndarray, rng: np.random.Generator, count: int, min_ratio: float = MIN_RATIO
) -> np.ndarray:
    """Up to ``count`` pairs of valid pixels of ``depth`` -> int [P,5]: 1-based (y_a, x_a, y_b, x_b)
    as DIW writes them, and the relation (+1: A farther, -1: A nearer); half of them on one row,
    mirrored about the centre. Fewer come back when the map has too few ordered pairs."""
    if min_ratio <= 1.0:
        raise ValueError(f"min_ratio={min_ratio}: expected > 1 (pairs nearer than that have no order)")
    width = depth.shape[1]
    valid = valid_gt_mask(depth)
    rows, cols = np.nonzero(valid)
    if rows.size < 2 or count < 1:
        return np.zeros((0, 5), dtype=np.int64)
    draws = 8 * count  # candidates per kind; most survive on a road scene
    a = rng.integers(0, rows.size, size=(2, draws))
    b = rng.integers(0, rows.size, size=draws)
    random_pairs = np.stack([rows[a[0]], cols[a[0]], rows[a[1]], cols[a[1]]], axis=1)
    mirrored = width - 1 - cols[b]
    row_pairs = np.stack([rows[b], cols[b], rows[b], mirrored], axis=1)
    row_pairs = row_pairs[valid[rows[b], mirrored] & (mirrored != cols[b])]

    def labelled(candidates: np.ndarray) -> np.ndarray:
        """The candidates with an order -> 1-based coordinates and relation."""
        d_a = depth[candidates[:, 0], candidates[:, 1]].astype(np.float64)
        d_b = depth[candidates[:, 2], candidates[:, 3]].astype(np.float64)
        ordered = np.maximum(d_a / d_b, d_b / d_a) >= min_ratio
        relation = np.where(d_a > d_b, 1, -1)[:, None]
        return np.concatenate([candidates + 1, relation], axis=1)[ordered]

    on_rows = labelled(row_pairs)[: count // 2]
    return np.concatenate([on_rows, labelled(random_pairs)[: count - len(on_rows)]])


def pairs_from_drives(
    root: str | Path,
    drives: Sequence[str],
    pairs_per_frame: int,
    seed: int = 0,
    min_ratio: float = MIN_RATIO,
) -> list[DiwPair]:
    """DIW samples from every frame of KITTI-layout drives with dense ground truth (proj_depth)."""
    entries = split_from_drives(root, drives, [0], ["l"], None)
    if not entries:
        raise DataError(f"{root}: no frames in drives {list(drives)}")
    dataset = KittiDataset(root, entries, 32, 32, [0], is_train=False, check_files=False)
    rng = np.random.default_rng(seed)
    samples = []
    for entry in entries:
        reader = dataset.reader(entry)
        depth = reader.dense_depth(entry.frame)
        height, width = depth.shape
        image = reader.image_path(entry.frame)
        for y_a, x_a, y_b, x_b, relation in sample_ordinal_pairs(depth, rng, pairs_per_frame, min_ratio):
            samples.append(
                DiwPair(image, int(y_a), int(x_a), int(y_b), int(x_b), int(relation), width, height)
            )
    return samples


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True, help="KITTI raw root (holds <date>/)")
    parser.add_argument("--drives", nargs="+", required=True, help="drives with proj_depth/groundtruth")
    parser.add_argument("--pairs-per-frame", type=int, default=4)
    parser.add_argument("--min-ratio", type=float, default=MIN_RATIO, help="farther / nearer depth at least")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="CSV to write (image paths relative to root)")
    args = parser.parse_args(argv)
    try:
        samples = pairs_from_drives(
            args.data_root, args.drives, args.pairs_per_frame, args.seed, args.min_ratio
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"diw_pairs: {exc}", file=sys.stderr)
        return 2
    write_diw_csv(args.out, samples, args.data_root)
    farther = sum(pair.relation > 0 for pair in samples)
    print(f"wrote {len(samples)} pairs ({farther} 'A farther') to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
