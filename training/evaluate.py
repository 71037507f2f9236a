"""Depth evaluation on KITTI-layout data (the Eigen protocol), the ``depth-eval`` entry point.

    depth-eval --checkpoint runs/x/checkpoints/last.pt --data-root data/kitti_raw \
        --split ../shared/data/kitti_splits/eigen/test_files.txt --gt-npz out/gt_eigen.npz
    depth-eval --onnx models/depth.onnx --data-root /tmp/sim --drives 2011_09_26/2011_09_26_drive_0009_sync

Protocol (Monodepth2's): predictions resized to the ground truth's size (as disparity, bilinear),
ground truth in (1e-3, 80) m, Garg crop, predictions clipped to the same range, per-frame metrics
averaged over frames. ``EvalOptions.preset("nyu")`` is NYU Depth V2's (Eigen et al.): Eigen's crop
of the 480x640 frame, depth in (1e-3, 10) m, and log10 and the MSE beside the seven metrics.
``--protocol diw`` scores ordinal point pairs (a DIW annotation CSV, ``--split``): the weighted human
disagreement rate and pair accuracy, every pair counted once, beside the average layout's.
Monocular results are median-scaled per frame; models trained with metric supervision (velocity,
LiDAR) are also scored as they are (no scaling). Metrics come from
``depth_node.metrics``.

Every result stands next to two baselines scored on the same frames and pixels: a constant depth
and the training frames' average layout (``training.baselines``). The models come in through
``training.predictors``; the picture is ``training.eval_grid``'s.

Where the drives carry the synthetic world's motion labels (``proj_depth/motion``), the same metrics
are also reported per motion region, ``depth_node.metrics.MOTION_REGIONS``: static pixels, cars moving
the camera's way (the lead car among them), oncoming cars, and all moving cars (``regions`` in the JSON; each
method keeps the median scale of its whole frame), which is where DiPE's masking should matter.

Outputs in ``--out-dir``: ``metrics.json``, ``grid.png`` (image | prediction | ground truth | error).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from depth_node.metrics import (
    MAX_DEPTH,
    METRIC_NAMES,
    MIN_DEPTH,
    MOTION_REGIONS,
    NYU_MAX_DEPTH,
    NYU_METRIC_NAMES,
    disagreement_rate,
    evaluate_depth,
    format_metrics_table,
    mean_metrics,
    ordinal_disagreement,
    region_truths,
    resize_depth,
)
from training.baselines import TrainingPrior, training_prior, valid_gt_mask
from training.datasets.diw import DiwDataset
from training.datasets.kitti import KittiDataset, SplitEntry, read_split_file, split_from_drives
from training.eval_grid import write_grid
from training.predictors import CheckpointPredictor, OnnxPredictor, Predictor, add_guided_arguments

# ---------------------------------------------------------------------------------------------
# Frames with ground truth


@dataclass
class EvalFrame:
    """One evaluation frame: how to load its image and its ground truth (metres, 0/NaN invalid)."""

    name: str
    load_image: Callable[[], np.ndarray]
    load_gt: Callable[[], np.ndarray]
    load_motion: Callable[[], np.ndarray | None] | None = None  # MOTION_LABELS per pixel
    # The previous frame of the same drive, for two-frame models (None: the drive's first frame).
    load_previous: Callable[[], np.ndarray | None] | None = None


def _gt_loader(dataset: KittiDataset, entry: SplitEntry, gt: str) -> Callable[[], np.ndarray]:
    reader = dataset.reader(entry)
    if gt == "dense":
        return lambda: reader.dense_depth(entry.frame)
    if gt == "velodyne":
        return lambda: reader.velodyne_depth(entry.frame)
    raise ValueError(f"ground truth {gt!r}: expected dense or velodyne")


def kitti_frames(
    root: str | Path,
    entries: Sequence[SplitEntry],
    gt: str = "auto",
    gt_maps: Sequence[np.ndarray] | None = None,
    png: bool | None = None,
) -> list[EvalFrame]:
    """Evaluation frames for KITTI split entries; GT from ``gt_maps`` (an exported npz, in order),
    the dense PNGs, or the velodyne scans ("auto": dense where the first frame has one)."""
    entries = list(entries)
    if not entries:
        raise ValueError("no frames to evaluate")
    if gt_maps is not None and len(gt_maps) != len(entries):
        raise ValueError(f"{len(gt_maps)} ground-truth maps for {len(entries)} split lines")
    # Size arguments are unused here (frames are read at their own size).
    dataset = KittiDataset(root, entries, 32, 32, [0], png=png, is_train=False, check_files=False)
    if gt == "auto" and gt_maps is None:
        from depth_node.data.kitti import depth_gt_path

        first = dataset.reader(entries[0])
        gt = (
            "dense"
            if depth_gt_path(first.drive_dir, entries[0].frame, entries[0].cam).is_file()
            else "velodyne"
        )
    frames = []
    for i, entry in enumerate(entries):
        load_gt = (lambda m=gt_maps[i]: m) if gt_maps is not None else _gt_loader(dataset, entry, gt)
        reader = dataset.reader(entry)
        frames.append(
            EvalFrame(
                entry.line(),
                lambda i=i: dataset.load_color(i, 0),
                load_gt,
                lambda r=reader, f=entry.frame: r.motion_labels(f),
                lambda i=i, first=entry.frame == 0: None if first else dataset.load_color(i, -1),
            )
        )
    return frames


def nyu_frames(root: str | Path, split: str | Path | None, subset: str = "test") -> list[EvalFrame]:
    """Evaluation frames of NYU Depth V2 at its 640x480: ``root`` the labelled .mat (``split`` its
    splits.mat or index file, ``subset`` test or train) or a DenseDepth folder (``split`` its CSV)."""
    from training.datasets.nyu import open_nyu

    # Size arguments are unused here (frames are read at their own size).
    dataset = open_nyu(root, split, subset, height=32, width=32, is_train=False)
    if len(dataset) == 0:
        raise ValueError(f"NYU data {root}: no {subset} frames")
    return [
        EvalFrame(
            f"nyu {subset} {i}", lambda i=i: dataset.load_color(i, 0), lambda i=i: dataset.load_depth_gt(i)
        )
        for i in range(len(dataset))
    ]


def subsample(items: Sequence[Any], count: int | None) -> list[Any]:
    """At most ``count`` items, evenly spread (all when count is None or large enough)."""
    items = list(items)
    if count is None or count <= 0 or len(items) <= count:
        return items
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in picks]


# ---------------------------------------------------------------------------------------------
# Evaluation


# The metrics each protocol reports; its crop and depth range are in ``EvalOptions.preset``.
PROTOCOL_METRICS = {"kitti": METRIC_NAMES, "nyu": NYU_METRIC_NAMES}


@dataclass
class EvalOptions:
    """How frames are scored; the defaults are the KITTI Eigen protocol (``preset`` gives NYU's)."""

    min_depth: float = MIN_DEPTH
    max_depth: float = MAX_DEPTH
    garg_crop: bool = True
    metric: bool | None = None  # None: as the predictor says
    grid_frames: int = 4
    protocol: str = "kitti"  # kitti | nyu: the metrics reported (PROTOCOL_METRICS)
    nyu_crop: bool = False  # Eigen's crop of NYU's 480x640 frame (depth_node.metrics.nyu_crop_mask)
    # Two-frame models get every frame twice (the first-frame mode): against a normal run, what the
    # previous frame adds.
    repeat_frame: bool = False

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOL_METRICS:
            raise ValueError(f"protocol={self.protocol!r}: expected one of {sorted(PROTOCOL_METRICS)}")

    @classmethod
    def preset(cls, protocol: str, **overrides: Any) -> EvalOptions:
        """A protocol's published settings: kitti (Garg crop, depth in (1e-3, 80) m, the seven
        metrics) or nyu (Eigen's crop, depth in (1e-3, 10) m, plus log10 and mse); ``overrides``
        set any field."""
        presets = {
            "kitti": {},
            "nyu": {"max_depth": NYU_MAX_DEPTH, "garg_crop": False, "nyu_crop": True},
        }
        if protocol not in presets:
            raise ValueError(f"protocol={protocol!r}: expected one of {sorted(presets)}")
        return cls(**{"protocol": protocol, **presets[protocol], **overrides})

    @property
    def metric_names(self) -> tuple[str, ...]:
        return PROTOCOL_METRICS[self.protocol]


@dataclass
class EvalResult:
    """Mean metrics per method, per protocol; per-frame scale ratios (gt / pred medians)."""

    median_scaled: dict[str, dict[str, float]]
    metric: dict[str, dict[str, float]] | None
    scale_ratios: list[float]
    frames: int
    train_median_depth: float | None
    info: dict[str, Any] = field(default_factory=dict)
    # Per motion region: {region: {"frames", "pixels", "median_scaled", "metric"}}; None without labels.
    regions: dict[str, dict[str, Any]] | None = None

    @property
    def scale_ratio(self) -> float:
        return float(np.median(self.scale_ratios)) if self.scale_ratios else math.nan

    def table(self) -> str:
        rows: dict[str, dict[str, float]] = {}
        for name, metrics in self.median_scaled.items():
            rows[f"{name} (median-scaled)"] = metrics
        for name, metrics in (self.metric or {}).items():
            rows[f"{name} (metric)"] = metrics
        for region, scores in (self.regions or {}).items():
            for protocol in ("median_scaled", "metric"):
                for name, metrics in (scores[protocol] or {}).items():
                    rows[f"{name} ({region.replace('_', ' ')}, {protocol.replace('_', '-')})"] = metrics
        return format_metrics_table(rows)

    def to_json(self) -> dict[str, Any]:
        ratios = np.asarray(self.scale_ratios, dtype=np.float64)
        return {
            "frames": self.frames,
            "median_scaled": self.median_scaled,
            "metric": self.metric,
            "scale_ratio": {
                "median": self.scale_ratio,
                "std_over_median": float(ratios.std() / np.median(ratios)) if ratios.size else None,
            },
            "train_median_depth": self.train_median_depth,
            "regions": self.regions,
            **self.info,
        }


def _score(gt: np.ndarray, pred: np.ndarray, options: EvalOptions, median_scaling: bool) -> Any:
    return evaluate_depth(
        gt,
        pred,
        min_depth=options.min_depth,
        max_depth=options.max_depth,
        garg_crop=options.garg_crop,
        median_scaling=median_scaling,
        nyu_crop=options.nyu_crop,
        metric_names=options.metric_names,
    )


class _Scoreboard:
    """Per-frame metrics of every method under every protocol, averaged into an ``EvalResult``.

    Keys of ``per``: ``ms/<method>`` and ``metric/<method>`` (whole frames), ``<region>_ms/<method>``
    and ``<region>_metric/<method>`` (one motion region's pixels only).
    """

    def __init__(self, prior: TrainingPrior | None, options: EvalOptions, metric: bool) -> None:
        self.prior, self.options, self.metric = prior, options, metric
        self.per: dict[str, list[dict[str, float]]] = {}
        self.ratios: list[float] = []
        self.region_frames: dict[str, int] = dict.fromkeys(MOTION_REGIONS, 0)
        self.region_pixels: dict[str, int] = dict.fromkeys(MOTION_REGIONS, 0)

    def _add(self, key: str, result: Any) -> None:
        if result is not None:
            self.per.setdefault(key, []).append(result.metrics)

    def add_frame(self, gt: np.ndarray, pred: np.ndarray, motion: np.ndarray | None) -> None:
        """Score the model and the baselines on one frame (and on each motion region's pixels)."""
        options, prior = self.options, self.prior
        height, width = gt.shape
        model = _score(gt, pred, options, median_scaling=True)
        if model is None:
            return  # no valid GT pixel in this frame: skipped for every method alike
        self.ratios.append(model.scale)
        # Each method's depth map; any constant becomes the frame's median under median scaling.
        constant = np.ones_like(gt)
        median_scaled = {"model": pred, "constant": constant}
        metric_depths = {"model": pred} if self.metric else {}
        if prior is not None:
            layout = prior.layout(width, height)
            median_scaled["layout"] = layout
            if self.metric:
                metric_depths.update(constant=constant * prior.median_depth, layout=layout)
        scales = {}
        for name, depth in median_scaled.items():
            result = model if name == "model" else _score(gt, depth, options, median_scaling=True)
            self._add(f"ms/{name}", result)
            scales[name] = result.scale
        for name, depth in metric_depths.items():
            self._add(f"metric/{name}", _score(gt, depth, options, median_scaling=False))
        if motion is not None:
            for region, gt_region in region_truths(gt, motion).items():
                self._add_region(region, gt_region, median_scaled, scales, metric_depths)

    def _add_region(
        self,
        region: str,
        gt_region: np.ndarray,
        median_scaled: Mapping[str, np.ndarray],
        scales: Mapping[str, float],
        metric_depths: Mapping[str, np.ndarray],
    ) -> None:
        """Score one region's pixels (``gt_region``: 0 elsewhere), each method with its whole frame's
        median scale."""
        options = self.options
        model = _score(gt_region, median_scaled["model"] * scales["model"], options, median_scaling=False)
        if model is None:
            return  # the region has no pixel with valid GT in this frame
        self.region_frames[region] += 1
        self.region_pixels[region] += model.valid_pixels
        for name, depth in median_scaled.items():
            result = _score(gt_region, depth * scales[name], options, median_scaling=False)
            self._add(f"{region}_ms/{name}", result)
        for name, depth in metric_depths.items():
            self._add(f"{region}_metric/{name}", _score(gt_region, depth, options, median_scaling=False))

    def _mean(self, prefix: str) -> dict[str, dict[str, float]]:
        return {
            key.split("/", 1)[1]: mean_metrics(v) for key, v in self.per.items() if key.startswith(prefix)
        }

    def result(self) -> EvalResult:
        if not self.ratios:
            raise ValueError("no frame had valid ground truth")
        regions = {
            region: {
                "frames": frames,
                "pixels": self.region_pixels[region],
                "median_scaled": self._mean(f"{region}_ms/"),
                "metric": self._mean(f"{region}_metric/") if self.metric else None,
            }
            for region, frames in self.region_frames.items()
            if frames
        }
        return EvalResult(
            median_scaled=self._mean("ms/"),
            metric=self._mean("metric/") if self.metric else None,
            scale_ratios=self.ratios,
            frames=len(self.ratios),
            train_median_depth=self.prior.median_depth if self.prior is not None else None,
            regions=regions or None,
        )


def evaluate_predictions(
    frames: Sequence[tuple[np.ndarray, np.ndarray]],
    prior: TrainingPrior | None,
    *,
    options: EvalOptions | None = None,
    metric: bool = False,
    motion: Sequence[np.ndarray | None] | None = None,
) -> EvalResult:
    """Score (gt, pred) pairs (pred in metres when ``metric``; same size as gt) and the baselines.

    Without a ``prior`` only the median-scaled constant baseline can be computed (the others need
    the training frames' ground truth). ``motion``: per frame, its motion labels
    (``depth_node.metrics.MOTION_LABELS``, or None); the methods are then also scored on each motion
    region's pixels alone, each with its whole frame's median scale (``EvalResult.regions``).
    """
    board = _Scoreboard(prior, options or EvalOptions(), metric)
    for i, (gt, pred) in enumerate(frames):
        board.add_frame(np.asarray(gt, dtype=np.float32), pred, motion[i] if motion is not None else None)
    return board.result()


# ---------------------------------------------------------------------------------------------
# The whole run


def evaluate_model(
    predictor: Predictor,
    frames: Sequence[EvalFrame],
    prior: TrainingPrior | None,
    *,
    options: EvalOptions | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> EvalResult:
    """Predict every frame, score model and baselines, write metrics.json and grid.png to out_dir.

    A two-frame predictor (``predictor.frames == 2``) gets each frame's previous frame of the same
    drive (``EvalFrame.load_previous``; without one, or with ``options.repeat_frame``, the current
    frame twice)."""
    options = options or EvalOptions()
    metric = predictor.metric if options.metric is None else options.metric
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    motion: list[np.ndarray | None] = []
    grid_rows = []
    grid_picks = set(subsample(range(len(frames)), options.grid_frames)) if options.grid_frames else set()
    for i, frame in enumerate(tqdm(frames, desc="evaluating", disable=not progress)):
        rgb, gt = frame.load_image(), np.asarray(frame.load_gt(), dtype=np.float32)
        two_frame = predictor.frames == 2 and frame.load_previous is not None and not options.repeat_frame
        prev = frame.load_previous() if two_frame else None
        depth = predictor.predict(rgb, prev) * predictor.metric_scale
        pred = resize_depth(depth, gt.shape[1], gt.shape[0])
        pairs.append((gt, pred))
        motion.append(frame.load_motion() if frame.load_motion is not None else None)
        if i in grid_picks:
            shown = pred
            if not metric:
                valid = valid_gt_mask(gt, options.min_depth, options.max_depth) & (pred > 0)
                if valid.any():
                    shown = pred * float(np.median(gt[valid]) / np.median(pred[valid]))
            grid_rows.append((frame.name, rgb, shown, gt))
    result = evaluate_predictions(pairs, prior, options=options, metric=metric, motion=motion)
    result.info = {
        "model": predictor.name,
        "training_mode": getattr(predictor, "training_mode", None),
        "input_size": list(predictor.input_size),
        "metric_scale": predictor.metric_scale,
        "protocol": {
            "min_depth": options.min_depth,
            "max_depth": options.max_depth,
            "garg_crop": options.garg_crop,
            "name": options.protocol,
            "nyu_crop": options.nyu_crop,
        },
        "repeat_frame": options.repeat_frame and predictor.frames == 2,
        "baseline_training_frames": prior.frames if prior is not None else 0,
    }
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics.json").write_text(json.dumps(result.to_json(), indent=2))
        if grid_rows:
            write_grid(out_dir / "grid.png", grid_rows, options.max_depth)
    return result


def evaluate_ordinal(
    predictor: Predictor, dataset: DiwDataset, prior: TrainingPrior | None, progress: bool = True
) -> dict[str, dict[str, float]]:
    """DIW's protocol over every pair of ``dataset``: WHDR and pair accuracy of the model, and of the
    average layout where ``prior`` is given; each image predicted once, pairs pooled over images."""
    disagree: dict[str, list[np.ndarray]] = {"model": []} if prior is None else {"model": [], "layout": []}
    for i, group in enumerate(tqdm(dataset.images, desc="evaluating pairs", disable=not progress)):
        depth = predictor.predict(dataset.load_color(i, 0))
        height, width = depth.shape
        pixels = np.stack([pair.training_pixels(width, height) for pair in group])
        relation = np.array([pair.relation for pair in group])
        disagree["model"].append(ordinal_disagreement(depth, pixels, relation))
        if prior is not None:
            disagree["layout"].append(ordinal_disagreement(prior.layout(width, height), pixels, relation))
    return {name: disagreement_rate(np.concatenate(parts)) for name, parts in disagree.items()}


def prior_from_frames(
    frames: Sequence[EvalFrame], size: tuple[int, int], options: EvalOptions, progress: bool = True
) -> TrainingPrior:
    maps = (f.load_gt() for f in tqdm(frames, desc="training GT (baselines)", disable=not progress))
    return training_prior(
        maps,
        size,
        min_depth=options.min_depth,
        max_depth=options.max_depth,
        garg_crop=options.garg_crop,
        nyu_crop=options.nyu_crop,
    )


def _training_entries_from_config(config: Mapping[str, Any]) -> tuple[str, list[SplitEntry]] | None:
    """The training frames named by a training config (KITTI split or drives), if any."""
    data = config.get("data") or {}
    if data.get("source", "kitti") != "kitti" or not data.get("root"):
        return None
    if data.get("split") and Path(data["split"]).is_file():
        return data["root"], read_split_file(data["split"])
    if data.get("drives"):
        drives = [d for d in data["drives"] if (Path(data["root"]) / d).is_dir() or Path(d).is_dir()]
        if drives:
            return data["root"], split_from_drives(data["root"], drives, [0], data.get("sides", ["l"]), None)
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depth-eval",
        description="Evaluate a depth model (checkpoint or ONNX) with the KITTI Eigen protocol (or NYU's: "
        "--protocol nyu), beside a constant-depth and an average-layout baseline.",
    )
    parser.add_argument(
        "--protocol",
        choices=("kitti", "nyu", "diw"),
        default="kitti",
        help="kitti: --data-root is a KITTI raw root; nyu: the labelled .mat (--split: splits.mat, its "
        "testNdxs; --train-split the same file for trainNdxs) or a DenseDepth folder (--split: test CSV); "
        "diw: --split a DIW annotation CSV, its image paths relative to --data-root",
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", type=Path, help="depth-train checkpoint (.pt)")
    model.add_argument("--onnx", type=Path, help="exported ONNX model (runs through DepthEstimator)")
    parser.add_argument(
        "--data-root", type=Path, required=True, help="KITTI raw root (holds <date>/); NYU: see --protocol"
    )
    frames = parser.add_mutually_exclusive_group(required=True)
    frames.add_argument(
        "--split",
        type=Path,
        help="split file of the test frames (e.g. eigen/test_files.txt; NYU: splits.mat)",
    )
    frames.add_argument("--drives", nargs="+", help="test drives (all frames), relative to --data-root")
    parser.add_argument(
        "--gt", choices=("auto", "dense", "velodyne"), default="auto", help="ground truth source"
    )
    parser.add_argument("--gt-npz", type=Path, help="ground truth exported by `python -m training.kitti_gt`")
    parser.add_argument(
        "--train-root", type=Path, help="KITTI root of the training frames (default: --data-root)"
    )
    train = parser.add_mutually_exclusive_group()
    train.add_argument("--train-split", type=Path, help="training split (for the baselines)")
    train.add_argument("--train-drives", nargs="+", help="training drives (for the baselines)")
    parser.add_argument("--train-gt", choices=("auto", "dense", "velodyne"), default="auto")
    parser.add_argument("--baseline-frames", type=int, default=200, help="training frames used for baselines")
    parser.add_argument(
        "--metric", choices=("auto", "on", "off"), default="auto", help="score without scaling"
    )
    parser.add_argument("--min-depth", type=float, help=f"default: the protocol's ({MIN_DEPTH} m)")
    parser.add_argument(
        "--max-depth", type=float, help=f"default: the protocol's (KITTI {MAX_DEPTH} m, NYU 10 m)"
    )
    parser.add_argument("--no-garg-crop", action="store_true")
    parser.add_argument("--max-frames", type=int, help="evaluate at most this many frames (evenly spread)")
    parser.add_argument("--grid-frames", type=int, default=4)
    parser.add_argument(
        "--repeat-frame",
        action="store_true",
        help="two-frame models get every frame twice (the first-frame mode): what the previous frame adds "
        "is the difference to a run without this",
    )
    add_guided_arguments(parser, "--checkpoint")
    parser.add_argument("--out-dir", type=Path, default=Path("out/eval"))
    parser.add_argument("--device", default="auto", help="PyTorch device for --checkpoint")
    parser.add_argument("--png", choices=("auto", "png", "jpg"), default="auto", help="image file type")
    return parser


def _kitti_test_frames(args: argparse.Namespace, png: bool | None) -> list[EvalFrame]:
    if args.split:
        entries = read_split_file(args.split)
    else:
        if not args.drives:
            raise ValueError("--protocol kitti needs --split or --drives")
        entries = split_from_drives(args.data_root, args.drives, [0], ["l"], None)
    gt_maps = None
    if args.gt_npz:
        from training.kitti_gt import load_gt_depths

        gt_maps, _ = load_gt_depths(args.gt_npz)
    return kitti_frames(args.data_root, entries, args.gt, gt_maps, png)


def _baseline_frames(args: argparse.Namespace, predictor: Predictor) -> list[EvalFrame] | None:
    """Training frames for the constant and layout baselines, or None when none are known."""
    train_root = args.train_root or args.data_root
    if args.protocol == "nyu":
        if not args.train_split:
            return None
        return subsample(nyu_frames(train_root, args.train_split, "train"), args.baseline_frames)
    train_source: tuple[Any, list[SplitEntry]] | None = None
    if args.train_split:
        train_source = (train_root, read_split_file(args.train_split))
    elif args.train_drives:
        train_source = (train_root, split_from_drives(train_root, args.train_drives, [0], ["l"], None))
    elif isinstance(predictor, CheckpointPredictor):
        train_source = _training_entries_from_config(predictor.config)
    if train_source is None:
        return None
    return kitti_frames(train_source[0], subsample(train_source[1], args.baseline_frames), args.train_gt)


def main_ordinal(args: argparse.Namespace) -> int:
    """``depth-eval --protocol diw``: pair accuracy of the model and of the training layout."""
    if not args.split:
        print("depth-eval: --protocol diw needs --split (the DIW annotation CSV)", file=sys.stderr)
        return 2
    try:
        predictor: Predictor = (
            CheckpointPredictor(args.checkpoint, args.device) if args.checkpoint else OnnxPredictor(args.onnx)
        )
        dataset = DiwDataset(args.data_root, args.split, 32, 32, is_train=False)
        train_frames = _baseline_frames(args, predictor)
        prior = (
            None
            if train_frames is None
            else prior_from_frames(train_frames, predictor.input_size, EvalOptions())
        )
        rates = evaluate_ordinal(predictor, dataset, prior)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"depth-eval: {exc}", file=sys.stderr)
        return 2
    print(f"{predictor.name}: training mode {getattr(predictor, 'training_mode', 'unknown')}")
    pairs = int(rates["model"]["pairs"])
    print(f"{'method':<8} {'WHDR':>7} {'pair accuracy':>14}   ({pairs} pairs; chance 0.5)")
    for name, rate in rates.items():
        print(f"{name:<8} {rate['whdr']:>7.4f} {rate['pair_accuracy']:>14.4f}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    report = {"protocol": "diw", "csv": str(args.split), "name": predictor.name, **rates}
    (args.out_dir / "metrics.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out_dir / 'metrics.json'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.protocol == "diw":
        return main_ordinal(args)
    given = {"min_depth": args.min_depth, "max_depth": args.max_depth}
    options = EvalOptions.preset(
        args.protocol,
        **{key: value for key, value in given.items() if value is not None},
        metric={"auto": None, "on": True, "off": False}[args.metric],
        grid_frames=args.grid_frames,
        repeat_frame=args.repeat_frame,
    )
    if args.no_garg_crop:
        options = replace(options, garg_crop=False)
    png = {"auto": None, "png": True, "jpg": False}[args.png]
    if args.guided and not args.checkpoint:
        print("depth-eval: --guided needs --checkpoint", file=sys.stderr)
        return 2
    try:
        predictor: Predictor = (
            CheckpointPredictor(args.checkpoint, args.device, args.guided, args.intrinsics)
            if args.checkpoint
            else OnnxPredictor(args.onnx)
        )
        if args.protocol == "nyu":
            test_frames = nyu_frames(args.data_root, args.split, "test")
        else:
            test_frames = _kitti_test_frames(args, png)
        if args.max_frames:
            test_frames = subsample(test_frames, args.max_frames)

        train_frames = _baseline_frames(args, predictor)
        prior = None
        if train_frames is not None:
            gt_size = test_frames[0].load_gt().shape
            prior = prior_from_frames(train_frames, (gt_size[1], gt_size[0]), options)
        else:
            print(
                "depth-eval: no training frames (--train-split/--train-drives): only the constant "
                "median-scaled baseline is reported",
                file=sys.stderr,
            )
        result = evaluate_model(predictor, test_frames, prior, options=options, out_dir=args.out_dir)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"depth-eval: {exc}", file=sys.stderr)
        return 2
    scale = "metric" if predictor.metric else "up to scale: median-scaled only"
    print(f"{predictor.name}: training mode {getattr(predictor, 'training_mode', 'unknown')} ({scale})")
    print(result.table())
    print(
        f"{result.frames} frames; scale ratio gt/pred: median {result.scale_ratio:.3f}"
        + (f"; training median depth {result.train_median_depth:.2f} m" if result.train_median_depth else "")
    )
    print(f"wrote {args.out_dir / 'metrics.json'} and {args.out_dir / 'grid.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
