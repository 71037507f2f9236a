"""Is a multi-frame model's cost volume informative? Its argmin depth scored against ground truth.

    .venv/bin/python benchmarks/probe_cost_volume.py --checkpoint runs/mf/checkpoints/last.pt \
        --data-root /data/sim_heldout --drives 2011_09_26/2011_09_26_drive_0101_sync

For every ``--every``-th frame of the drives (with a previous frame), the student's matching is rerun
and the depth of each pixel's lowest cost (``matching_depth``) is scored like a prediction:
median-scaled abs_rel and the fraction within 1.25x of the ground truth, over the pixels whose
hypotheses all land inside the previous frame, at the matching grid (ground truth resized nearest).

Rows: ``model`` is the matching as trained (its level, its prematching conv, its hypotheses, the pose
net's motion); ``model, OXTS motion`` swaps in the drive's recorded motion, which separates pose
errors from matching errors. Then the encoder's own features at levels 0 and 1, without the
prematching conv, over the same range binned linearly and inversely (16 and 32 hypotheses): what a
different design would have to work with. ``student`` scores the model's depth on the 1/2-grid
pixels for scale. A cost volume that does not beat the constant baseline (~0.5 on the synthetic
drives) tells the student nothing. Writes JSON (``--out``).
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
from training.checkpoint import load_checkpoint, two_frame_net_from_checkpoint  # noqa: E402
from training.datasets.kitti import KittiDataset, split_from_drives  # noqa: E402
from training.geometry import transformation_from_parameters  # noqa: E402
from training.networks.manydepth import cost_volume, depth_bins, pose_frame  # noqa: E402

MIN_GT, MAX_GT = 1e-3, 80.0


def recorded_motion(dataset: KittiDataset, index: int) -> np.ndarray | None:
    """Current-camera points into the previous camera [4,4] from the drive's OXTS, None without it."""
    entry = dataset.entries[index]
    reader = dataset.reader(entry)
    paths = [kitti.oxts_path(reader.drive_dir, f) for f in (entry.frame - 1, entry.frame)]
    if not all(p.is_file() for p in paths):
        return None
    T_cam_imu = reader.calib.T_cam_imu
    imu_to_cam = np.eye(4) if T_cam_imu is None else np.linalg.inv(T_cam_imu)
    previous, current = (pose @ imu_to_cam for pose in kitti.oxts_poses([kitti.read_oxts(p) for p in paths]))
    return np.linalg.inv(previous) @ current


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
        self.height, self.width = (int(ckpt["config"]["data"][key]) for key in ("height", "width"))

    def features(self, image: torch.Tensor, level: int) -> torch.Tensor:
        x = self.net._level((image - self.net.mean) / self.net.std, 0)
        return self.net._level(x, 1) if level == 1 else x

    def run(
        self,
        image: torch.Tensor,
        prev: torch.Tensor,
        motion: torch.Tensor,
        level: int,
        bins: torch.Tensor,
        prematching: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(matching depth, confident) at the level's grid."""
        current, lookup = self.features(image, level), self.features(prev, level)
        if prematching:
            current, lookup = self.net.prematching_conv(current), self.net.prematching_conv(lookup)
        h, w = current.shape[-2:]
        S = torch.tensor(scale_intrinsics(np.eye(4), (self.width, self.height), (w, h)), dtype=torch.float32)
        K, inv_K = S @ self.two_frame.K, self.two_frame.inv_K @ torch.linalg.inv(S)
        volume = cost_volume(current, lookup, motion, K, inv_K, bins)
        return volume.matching_depth[0, 0].numpy(), volume.confidence[0, 0].numpy() > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a multi-frame depth-train checkpoint")
    parser.add_argument("--data-root", required=True, help="KITTI-layout root with dense ground truth")
    parser.add_argument("--drives", nargs="+", required=True, help="date/drive folders under the root")
    parser.add_argument("--every", type=int, default=4, help="use every n-th frame")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "probe_cost_volume.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    probe = Probe(args.checkpoint)
    net = probe.net
    entries = split_from_drives(args.data_root, args.drives, frame_ids=(0, -1))[:: args.every]
    dataset = KittiDataset(
        args.data_root, entries, 32, 32, [0], is_train=False, check_files=False, depth_gt="dense"
    )
    low, high, count = net.min_depth_bin, net.max_depth_bin, net.num_depth_bins
    own_level = net.matching_level
    rows: dict[str, tuple[int, torch.Tensor, bool, str]] = {
        "model": (own_level, net.depth_bins(), True, "net"),
        "model, OXTS motion": (own_level, net.depth_bins(), True, "oxts"),
    }
    for level in (0, 1):
        for binning in ("linear", "inverse"):
            for n in sorted({count, 32}):
                bins = depth_bins(low, high, n, binning)
                rows[f"level {level} features, {n} {binning}"] = (level, bins, False, "net")
    found: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in [*rows, "student"]}

    def tensor(rgb: np.ndarray) -> torch.Tensor:
        resized = resize_area(rgb, (probe.width, probe.height)).astype(np.float32) / 255.0
        return torch.from_numpy(resized.transpose(2, 0, 1).copy())[None]

    for index in range(len(dataset)):
        oxts = recorded_motion(dataset, index)
        image, prev = tensor(dataset.load_color(index, 0)), tensor(dataset.load_color(index, -1))
        gt = np.nan_to_num(dataset.load_depth_gt(index).astype(np.float32))
        with torch.no_grad():
            pose_args = (pose_frame(prev, net.pose_downsample), pose_frame(image, net.pose_downsample))
            axisangle, translation = probe.two_frame.pose_net(*pose_args)
            motions = {"net": transformation_from_parameters(axisangle, translation, invert=True)}
            if oxts is not None:
                motions["oxts"] = torch.tensor(oxts, dtype=torch.float32)[None]
            for name, (level, bins, prematching, source) in rows.items():
                if source not in motions:
                    continue
                motion = motions[source]
                matching, confident = probe.run(image, prev, motion, level, bins.float(), prematching)
                truth = resize_nearest(gt, matching.shape)
                keep = confident & (truth > MIN_GT) & (truth < MAX_GT)
                found[name].append((matching[keep], truth[keep]))
            depth = probe.two_frame(image, prev)
            half = F.avg_pool2d(depth, 2)[0, 0].numpy()
            truth = resize_nearest(gt, half.shape)
            keep = (truth > MIN_GT) & (truth < MAX_GT)
            found["student"].append((half[keep], truth[keep]))

    results = {}
    print(f"{'matching':40} {'abs_rel':>8} {'d<1.25':>7} {'pixels':>8}")
    for name, pairs in found.items():
        scores = [score(m, g) for m, g in pairs if m.size]
        abs_rel = float(np.mean([s[0] for s in scores])) if scores else float("nan")
        within = float(np.mean([s[1] for s in scores])) if scores else float("nan")
        pixels = sum(s[2] for s in scores)
        results[name] = {"abs_rel": abs_rel, "a1": within, "pixels": pixels, "frames": len(scores)}
        print(f"{name:40} {abs_rel:8.3f} {within:7.3f} {pixels:8d}")
    report = {
        "checkpoint": str(args.checkpoint),
        "drives": args.drives,
        "frames": len(dataset),
        "matching_level": own_level,
        "bins": {"count": count, "binning": net.depth_binning, "min": float(low), "max": float(high)},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"[probe] wrote {args.out}")
    return 0


def resize_nearest(depth: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Ground truth at a smaller grid: the nearest pixel's value (no mixing of near and far)."""
    rows = np.minimum((np.arange(shape[0]) + 0.5) * depth.shape[0] / shape[0], depth.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(shape[1]) + 0.5) * depth.shape[1] / shape[1], depth.shape[1] - 1).astype(int)
    return depth[np.ix_(rows, cols)]


if __name__ == "__main__":
    sys.exit(main())
