"""Is a multi-frame model's cost volume informative? Its argmin depth scored against ground truth.

    .venv/bin/python benchmarks/probe_cost_volume.py --checkpoint runs/mf/checkpoints/last.pt \
        --data-root /data/sim_heldout --drives 2011_09_26/2011_09_26_drive_0101_sync

For every ``--every``-th frame of the drives (with a previous frame), the student's matching is rerun
and the depth of each pixel's lowest cost (``matching_depth``) is scored like a prediction:
median-scaled abs_rel and the fraction within 1.25x of the ground truth, over the pixels whose
hypotheses all land inside the previous frame, at the matching grid (ground truth resized nearest).

Rows: ``model`` is the matching as trained (``CostVolumeMatching.match``: its level, its prematching conv
or image patches, its hypotheses, the pose net's motion); ``model, OXTS motion`` swaps in the
drive's recorded motion, which separates pose errors from matching errors. Then the encoder's own
features at levels 0 and 1, without the prematching conv, over the same range binned linearly and
inversely (16 and 32 hypotheses): what a different design would have to work with (not for a refining
student, ``model.student: refine``, which has no encoder of its own); and each pixel's
3x3 RGB patch at full size, a bound on what any features could match at this image size. ``student``
scores the model's depth on the 1/2-grid pixels for scale. A cost volume that does not beat the
constant baseline (~0.5 on the synthetic drives) tells the student nothing.

``--prev-offset K`` matches against the frame K back instead (the pose net estimates that motion
as it does the adjacent one): K times the parallax, and more of the scene changed or out of view.

``model, motion-aware`` reruns the model's matching with Manydepth2's compensation
(``model.motion_aware``, ``training.networks.manydepth.object_motion``) around the static flow of
the checkpoint's teacher, whatever the model was trained with; ``teacher`` scores that reference
depth on the same grid. Where the drives carry the world's motion labels, the fraction within 1.25x
is also given on static pixels and on moving cars, with the share of each region's pixels that the
compensation moved. Writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from depth_node.data import kitti  # noqa: E402
from depth_node.geometry import resize_area, scale_intrinsics  # noqa: E402
from depth_node.metrics import motion_regions  # noqa: E402
from training.checkpoint import (  # noqa: E402
    depth_net_from_checkpoint,
    load_checkpoint,
    two_frame_net_from_checkpoint,
)
from training.datasets.kitti import KittiDataset, split_from_drives  # noqa: E402
from training.geometry import transformation_from_parameters  # noqa: E402
from training.networks.manydepth import ManyDepthNet, cost_volume, depth_bins, pose_frame  # noqa: E402

MIN_GT, MAX_GT = 1e-3, 80.0


def recorded_motion(dataset: KittiDataset, index: int, offset: int = 1) -> np.ndarray | None:
    """Current-camera points into the camera ``offset`` frames back [4,4] from the drive's OXTS, None
    without it."""
    entry = dataset.entries[index]
    reader = dataset.reader(entry)
    paths = [kitti.oxts_path(reader.drive_dir, f) for f in (entry.frame - offset, entry.frame)]
    if not all(p.is_file() for p in paths):
        return None
    T_cam_imu = reader.calib.T_cam_imu
    imu_to_cam = np.eye(4) if T_cam_imu is None else np.linalg.inv(T_cam_imu)
    previous, current = (pose @ imu_to_cam for pose in kitti.oxts_poses([kitti.read_oxts(p) for p in paths]))
    return np.linalg.inv(previous) @ current


REGIONS = ("static", "moving")


def score(matching: np.ndarray, gt: np.ndarray) -> tuple[float, float, int]:
    """(median-scaled abs_rel, fraction within 1.25x, pixels) of depths against ground truth."""
    if matching.size == 0:
        return float("nan"), float("nan"), 0
    scaled = matching * np.median(gt) / np.median(matching)
    ratio = np.maximum(scaled / gt, gt / scaled)
    return float(np.mean(np.abs(scaled - gt) / gt)), float(np.mean(ratio < 1.25)), int(gt.size)


class Probe:
    """The student's matching, rerun on one frame pair at a chosen level, hypotheses and motion."""

    def __init__(self, checkpoint: Path) -> None:
        ckpt = load_checkpoint(checkpoint)
        self.two_frame = two_frame_net_from_checkpoint(ckpt)
        self.net = self.two_frame.net
        self.teacher = depth_net_from_checkpoint(ckpt)  # the motion-aware matching's reference depth
        self.height, self.width = (int(ckpt["config"]["data"][key]) for key in ("height", "width"))

    def features(self, image: torch.Tensor, level: int) -> torch.Tensor:
        """The encoder's level 0 or 1; level -1: each pixel's 3x3 RGB patch (27 channels, full size)."""
        normalised = (image - self.net.mean) / self.net.std
        if level == -1:
            return F.unfold(normalised, 3, padding=1).view(image.shape[0], 27, *image.shape[-2:])
        x = self.net._level(normalised, 0)
        return self.net._level(x, 1) if level == 1 else x

    def run(
        self,
        image: torch.Tensor,
        prev: torch.Tensor,
        motion: torch.Tensor,
        level: int,
        bins: torch.Tensor,
        as_trained: bool,
        reference_depth: torch.Tensor | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(matching depth, confident, compensated) at the level's grid; compensated where
        ``reference_depth`` is given (Manydepth2's step) and the pixel moved on its own.
        ``as_trained``: the model's own matching (``ManyDepthNet.match``: its features or image
        patches, its hypotheses); else ``level``'s features as they are over ``bins``."""
        if as_trained:
            current = self.net._matching_features(image)[-1]
            K, inv_K = self.two_frame.K, self.two_frame.inv_K
            volume, own = self.net.match(
                current, image, prev, motion, K, inv_K, reference_depth=reference_depth
            )
        else:
            current, lookup = self.features(image, level), self.features(prev, level)
            h, w = current.shape[-2:]
            S = torch.tensor(
                scale_intrinsics(np.eye(4), (self.width, self.height), (w, h)), dtype=torch.float32
            )
            K, inv_K = S @ self.two_frame.K, self.two_frame.inv_K @ torch.linalg.inv(S)
            volume, own = cost_volume(current, lookup, motion, K, inv_K, bins), None
        h, w = volume.cost.shape[-2:]
        compensated = np.zeros((h, w), bool) if own is None else own[0].abs().sum(0).numpy() > 0
        return volume.matching_depth[0, 0].numpy(), volume.confidence[0, 0].numpy() > 0, compensated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a multi-frame depth-train checkpoint")
    parser.add_argument("--data-root", required=True, help="KITTI-layout root with dense ground truth")
    parser.add_argument("--drives", nargs="+", required=True, help="date/drive folders under the root")
    parser.add_argument("--every", type=int, default=4, help="use every n-th frame")
    parser.add_argument(
        "--prev-offset",
        type=int,
        default=1,
        help="match against the frame this many back (the models are trained on 1): more parallax",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--motion-radius", type=int, help="motion-aware rows: search radius (default: the model's)"
    )
    parser.add_argument(
        "--motion-threshold", type=float, help="motion-aware rows: pixels that count as moving"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "probe_cost_volume.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    probe = Probe(args.checkpoint)
    net = probe.net
    if args.motion_radius is not None:
        net.motion_search_radius = args.motion_radius
    if args.motion_threshold is not None:
        net.motion_threshold = args.motion_threshold
    entries = split_from_drives(args.data_root, args.drives, frame_ids=(0, -args.prev_offset))[:: args.every]
    dataset = KittiDataset(
        args.data_root, entries, 32, 32, [0], is_train=False, check_files=False, depth_gt="dense"
    )
    low, high, count = net.min_depth_bin, net.max_depth_bin, net.num_depth_bins
    own_level = net.matching_level
    # name: (level, hypotheses, the model's own matching, motion source, motion-aware)
    rows: dict[str, tuple[int, torch.Tensor, bool, str, bool]] = {
        "model": (own_level, net.depth_bins(), True, "net", False),
        "model, OXTS motion": (own_level, net.depth_bins(), True, "oxts", False),
    }
    if net.matching_source == "features":  # the motion search runs on the matching features
        rows["model, motion-aware"] = (own_level, net.depth_bins(), True, "net", True)
        rows["model, motion-aware, OXTS motion"] = (own_level, net.depth_bins(), True, "oxts", True)
    # The encoder's levels; a refining student (``student: refine``) has none of its own.
    for level in (0, 1) if isinstance(net, ManyDepthNet) else ():
        for binning in ("linear", "inverse"):
            for n in sorted({count, 32}):
                bins = depth_bins(low, high, n, binning)
                rows[f"level {level} features, {n} {binning}"] = (level, bins, False, "net", False)
    # What the pictures themselves tell at full size: a bound on any learnt matching features.
    for source, label in (("net", ""), ("oxts", ", OXTS motion")):
        rows[f"3x3 RGB patches, 32 inverse{label}"] = (
            -1,
            depth_bins(low, high, 32, "inverse"),
            False,
            source,
            False,
        )
    # Per row and frame: (depth, ground truth, region masks, compensated), over the kept pixels.
    found: dict[str, list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]]] = {
        name: [] for name in [*rows, "teacher", "student"]
    }

    def tensor(rgb: np.ndarray) -> torch.Tensor:
        resized = resize_area(rgb, (probe.width, probe.height)).astype(np.float32) / 255.0
        return torch.from_numpy(resized.transpose(2, 0, 1).copy())[None]

    for index in range(len(dataset)):
        oxts = recorded_motion(dataset, index, args.prev_offset)
        entry = dataset.entries[index]
        labels = dataset.reader(entry).motion_labels(entry.frame)
        image = tensor(dataset.load_color(index, 0))
        prev = tensor(dataset.load_color(index, -args.prev_offset))
        gt = np.nan_to_num(dataset.load_depth_gt(index).astype(np.float32))

        with torch.no_grad():
            pose_args = (pose_frame(prev, net.pose_downsample), pose_frame(image, net.pose_downsample))
            axisangle, translation = probe.two_frame.pose_net(*pose_args)
            motions = {"net": transformation_from_parameters(axisangle, translation, invert=True)}
            if oxts is not None:
                motions["oxts"] = torch.tensor(oxts, dtype=torch.float32)[None]
            reference = probe.teacher.predict_depth(image)
            for name, (level, bins, as_trained, source, aware) in rows.items():
                if source not in motions:
                    continue
                matching, confident, compensated = probe.run(
                    image,
                    prev,
                    motions[source],
                    level,
                    bins.float(),
                    as_trained,
                    reference if aware else None,
                )
                found[name].append(kept(matching, gt, labels, confident, compensated))
            for name, depth in (("teacher", reference), ("student", probe.two_frame(image, prev))):
                at_grid = F.avg_pool2d(depth, 2 ** (own_level + 1))[0, 0].numpy()
                found[name].append(kept(at_grid, gt, labels, np.ones(at_grid.shape, bool)))

    results = {}
    columns = ("abs_rel", "d<1.25", "static", "moving")
    print(f"{'matching':40} " + " ".join(f"{c:>7}" for c in columns) + f" {'moved':>13} {'pixels':>8}")
    for name, frames in found.items():
        scores = [score(m, g) for m, g, _, _ in frames if m.size]
        abs_rel = float(np.mean([s[0] for s in scores])) if scores else float("nan")
        within = float(np.mean([s[1] for s in scores])) if scores else float("nan")
        pixels = sum(s[2] for s in scores)
        row: dict = {"abs_rel": abs_rel, "a1": within, "pixels": pixels, "frames": len(scores)}
        for region in REGIONS:
            # Each frame median-scaled as a whole, then a region's pixels pooled over the frames
            # (moving cars fill few pixels of each frame).
            within_region, moved_region = [], []
            for m, g, r, c in frames:
                if region in r and m.size:
                    scaled = m[r[region]] * np.median(g) / np.median(m)
                    truth = g[r[region]]
                    within_region.append(np.maximum(scaled / truth, truth / scaled) < 1.25)
                    moved_region.append(c[r[region]])
            if within_region and sum(w.size for w in within_region):
                row[f"a1_{region}"] = float(np.mean(np.concatenate(within_region)))
                row[f"moved_{region}"] = float(np.mean(np.concatenate(moved_region)))
        results[name] = row
        moved = f"{row.get('moved_static', float('nan')):6.3f}/{row.get('moved_moving', float('nan')):.3f}"
        print(
            f"{name:40} {abs_rel:8.3f} {within:7.3f} {row.get('a1_static', float('nan')):7.3f} "
            f"{row.get('a1_moving', float('nan')):7.3f} {moved:>13} {pixels:8d}"
        )
    report = {
        "checkpoint": str(args.checkpoint),
        "drives": args.drives,
        "prev_offset": args.prev_offset,
        "frames": len(dataset),
        "matching_level": own_level,
        "motion_search": {"radius": net.motion_search_radius, "threshold_px": net.motion_threshold},
        "bins": {"count": count, "binning": net.depth_binning, "min": float(low), "max": float(high)},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"[probe] wrote {args.out}")
    return 0


def kept(
    values: np.ndarray,
    gt: np.ndarray,
    labels: np.ndarray | None,
    keep: np.ndarray,
    compensated: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """A frame's (depth, ground truth, region masks, compensated) over its kept pixels at ``values``'
    grid: ``keep`` and valid ground truth (ground truth and motion labels resized nearest)."""
    truth = resize_nearest(gt, values.shape)
    keep = keep & (truth > MIN_GT) & (truth < MAX_GT)
    regions = {} if labels is None else motion_regions(resize_nearest(labels, values.shape))
    moved = np.zeros_like(keep) if compensated is None else compensated
    return values[keep], truth[keep], {k: regions[k][keep] for k in REGIONS if k in regions}, moved[keep]


def resize_nearest(depth: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Ground truth at a smaller grid: the nearest pixel's value (no mixing of near and far)."""
    rows = np.minimum((np.arange(shape[0]) + 0.5) * depth.shape[0] / shape[0], depth.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(shape[1]) + 0.5) * depth.shape[1] / shape[1], depth.shape[1] - 1).astype(int)
    return depth[np.ix_(rows, cols)]


if __name__ == "__main__":
    sys.exit(main())
