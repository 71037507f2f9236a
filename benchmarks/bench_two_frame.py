"""What the two-frame (Manydepth-style) model costs beside its single-frame model, per backbone.

    .venv/bin/python benchmarks/bench_two_frame.py                     # resnet18 and stdc1 at 640x192
    .venv/bin/python benchmarks/bench_two_frame.py --backbones stdc1 --bins 96 --matching-channels 0

For each backbone, a single-frame and a two-frame model with random weights (the cost does not depend
on them) are exported by ``depth-export``'s own code (``training.export.export_onnx``) and run by the
runtime: end to end through the node's frame path (``FramePath.process``, default parameters, as
``bench_runtime.py`` measures it) and inference only (``DepthEstimator.infer``). The four loops
alternate frame by frame in the same run, so a changing machine load hits them alike. The two-frame
model runs in its steady state (frame mode "two": the previous frame is the one before). The table
gives ms per frame (median), two-frame / single-frame ratios against the 1.6 target (issue 13),
parameters and GMAC (conv + linear). ``--bins``, ``--matching-channels``, ``--pose-downsample``,
``--matching-level``, ``--motion-aware``, ``--matching-source`` and ``--student`` override the
multi-frame defaults (``training.networks.manydepth.MULTI_FRAME_DEFAULTS``) to measure other designs;
``--guided`` measures guided matching (``training.networks.guided``) as the two-frame model instead:
the multi-frame checkpoint exported by ``depth-export --guided``.
Writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_runtime import CameraFrames  # noqa: E402

from depth_node.runtime.estimator import DepthEstimator  # noqa: E402
from depth_node.runtime.frame import FrameDrop, FramePath  # noqa: E402
from depth_node.runtime.message_types import rosbags_types  # noqa: E402
from depth_node.runtime.parameters import validate_parameters  # noqa: E402
from depth_node.runtime.pipeline import DepthPipeline  # noqa: E402
from training.checkpoint import (  # noqa: E402
    guided_net_from_checkpoint,
    load_checkpoint,
    save_checkpoint,
    two_frame_net_from_checkpoint,
)
from training.export import count_flops, cpu_name, export_onnx  # noqa: E402
from training.networks import (  # noqa: E402
    GUIDED_PRIORS,
    build_depth_net,
    build_multi_depth_net,
    build_pose_net,
    multi_frame_config,
)

TARGET = 1.6  # two-frame / single-frame, end to end (issue 13)
BACKBONES = ("resnet18", "stdc1")


def make_checkpoints(
    backbone: str, overrides: dict, height: int, width: int, folder: Path, guided: str | None = None
) -> dict:
    """Random-weight checkpoints of the single-frame and the two-frame model, with their sizes
    (``guided``: the two-frame model is the multi-frame checkpoint's guided one, with that prior)."""
    torch.manual_seed(0)
    data = {"height": height, "width": width}
    single_cfg = {"backbone": backbone, "weights": None}
    two_cfg = multi_frame_config({**single_cfg, "multi_frame": True, **overrides})
    depth_net, pose_net, student = (
        build_depth_net(single_cfg).eval(),
        build_pose_net(two_cfg).eval(),
        build_multi_depth_net(two_cfg).eval(),
    )
    single_ckpt = save_checkpoint(
        folder / f"{backbone}_single.pt",
        {"config": {"model": single_cfg, "data": data}, "depth_net": depth_net.state_dict()},
    )
    two_ckpt = save_checkpoint(
        folder / f"{backbone}_two.pt",
        {
            "config": {"model": two_cfg, "data": data},
            "depth_net": depth_net.state_dict(),
            "pose_net": pose_net.state_dict(),
            "multi_depth_net": student.state_dict(),
        },
    )
    # The two-frame model exactly as depth-export builds it from that checkpoint.
    two_frame = load_checkpoint(two_ckpt)
    if guided is None:
        two = two_frame_net_from_checkpoint(two_frame)
    else:
        two = guided_net_from_checkpoint(two_frame, prior=guided)
    example = torch.rand(1, 3, height, width)
    sizes = {
        "single": {
            "parameters": sum(p.numel() for p in depth_net.parameters()),
            "gmac": count_flops(depth_net, example)["macs"] / 1e9,
        },
        "two": {
            "parameters": sum(p.numel() for p in two.parameters()),
            "gmac": count_flops(two, (example, example))["macs"] / 1e9,
        },
    }
    return {"config": two_cfg, "sizes": sizes, "checkpoints": {"single": single_ckpt, "two": two_ckpt}}


class Runner:
    """One exported model: its estimator, its frame path and a network-sized input (and previous)."""

    def __init__(self, model: Path, threads: int) -> None:
        self.settings = validate_parameters({"threads": threads})
        self.estimator = DepthEstimator(model, providers=("cpu",), threads=threads)
        self.path = FramePath(DepthPipeline(self.estimator, self.settings.pipeline_config()), rosbags_types())
        info = self.estimator.info
        rng = np.random.default_rng(1)
        self.batch = rng.random((1, 3, info.input_height, info.input_width), dtype=np.float32)
        self.prev = rng.random(self.batch.shape, dtype=np.float32) if info.frames == 2 else None
        self.infer_s: list[float] = []
        self.e2e_s: list[float] = []

    def step(self, frames: CameraFrames, record: bool) -> str:
        """One inference-only and one end-to-end frame; returns the frame path's frame mode."""
        t0 = time.perf_counter()
        self.estimator.infer(self.batch, self.prev)
        t1 = time.perf_counter()
        outputs = self.path.process(frames.image, frames.camera_info, self.settings, cloud=True)
        t2 = time.perf_counter()
        if isinstance(outputs, FrameDrop):
            raise SystemExit(
                f"the frame path dropped the benchmark frame ({outputs.reason}): {outputs.detail}"
            )
        if record:
            self.infer_s.append(t1 - t0)
            self.e2e_s.append(t2 - t1)
        return outputs.frame_mode


def bench_backbone(backbone: str, args: argparse.Namespace, folder: Path, frames: CameraFrames) -> dict:
    overrides: dict = {}
    if args.bins is not None:
        overrides["num_depth_bins"] = args.bins
    if args.matching_channels is not None:
        overrides["matching_channels"] = args.matching_channels or None  # 0: no prematching conv
    if args.pose_downsample is not None:
        overrides["pose_downsample"] = args.pose_downsample
    if args.matching_level is not None:
        overrides["matching_level"] = args.matching_level
    if args.motion_aware:
        overrides["motion_aware"] = True
    if args.matching_source is not None:
        overrides["matching_source"] = args.matching_source
    if args.student is not None:
        overrides["student"] = args.student
    made = make_checkpoints(backbone, overrides, args.height, args.width, folder, args.guided)
    models = {
        kind: export_onnx(
            ckpt,
            folder / f"{backbone}_{kind}.onnx",
            latency_runs=1,
            verbose=False,
            guided=args.guided if kind == "two" else None,
        )
        for kind, ckpt in made["checkpoints"].items()
    }
    runners = {kind: Runner(path, args.threads) for kind, path in models.items()}
    print(f"[bench] {backbone}: {args.frames} frames per loop, alternating", flush=True)
    modes = set()
    for i in range(args.warmup + args.frames):
        for kind, runner in runners.items():
            mode = runner.step(frames, record=i >= args.warmup)
            if i >= args.warmup and kind == "two":
                modes.add(mode)
    if modes != {"two"}:
        raise SystemExit(f"the two-frame model ran in frame modes {sorted(modes)}, expected only 'two'")
    keys = (
        "num_depth_bins",
        "matching_channels",
        "pose_downsample",
        "matching_level",
        "motion_aware",
        "matching_source",
        "student",
    )
    design = {key: made["config"][key] for key in keys}
    if args.guided is not None:  # no cost volume: the search, around the single-frame depth or the student's
        design = {"guided": args.guided, "pose_downsample": made["config"]["pose_downsample"]}
    result: dict = {"backbone": backbone, "multi_frame": design}
    for kind, runner in runners.items():
        result[kind] = {
            **made["sizes"][kind],
            "end_to_end_ms": 1e3 * statistics.median(runner.e2e_s),
            "inference_ms": 1e3 * statistics.median(runner.infer_s),
        }
    for measure in ("end_to_end_ms", "inference_ms", "gmac"):
        result[f"ratio_{measure.removesuffix('_ms')}"] = result["two"][measure] / result["single"][measure]
    return result


def print_table(results: list[dict], args: argparse.Namespace) -> None:
    print(
        f"\n{cpu_name()}, {args.threads} thread(s), {args.width}x{args.height}, batch 1, random weights; "
        f"{args.frames} frames per loop, medians"
    )
    header = f"{'backbone':10} {'model':7} {'params':>8} {'GMAC':>6} {'e2e ms':>8} {'infer ms':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        for kind in ("single", "two"):
            row = r[kind]
            print(
                f"{r['backbone']:10} {kind:7} {row['parameters'] / 1e6:7.2f}M {row['gmac']:6.2f} "
                f"{row['end_to_end_ms']:8.1f} {row['inference_ms']:9.1f}"
            )
        verdict = "meets" if r["ratio_end_to_end"] <= TARGET else "MISSES"
        print(
            f"{'':10} {'ratio':7} {'':8} {r['ratio_gmac']:6.2f} {r['ratio_end_to_end']:8.2f} "
            f"{r['ratio_inference']:9.2f}   ({verdict} the {TARGET} end-to-end target; {r['multi_frame']})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", default=",".join(BACKBONES), help="comma list (resnet18, stdc1, ...)")
    parser.add_argument("--size", default="640x192", help="network input and camera image WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=20, help="timed frames per loop")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--bins", type=int, help="model.num_depth_bins (default: the multi-frame default)")
    parser.add_argument(
        "--matching-channels", type=int, help="model.matching_channels (0: no prematching conv)"
    )
    parser.add_argument("--pose-downsample", type=int, help="model.pose_downsample")
    parser.add_argument("--matching-level", type=int, help="model.matching_level (0: stride 2, 1: stride 4)")
    parser.add_argument(
        "--motion-aware",
        action="store_true",
        help="model.motion_aware (Manydepth2's step; the teacher runs too)",
    )
    parser.add_argument(
        "--matching-source",
        choices=("features", "image"),
        help="model.matching_source (image: full-size patches)",
    )
    parser.add_argument(
        "--student",
        choices=("encoder", "refine"),
        help="model.student (refine: a small head corrects the teacher, which runs too)",
    )
    parser.add_argument(
        "--guided",
        nargs="?",
        const="single_frame",
        choices=GUIDED_PRIORS,
        help="the two-frame model is guided matching (training.networks.guided) around the single-frame "
        "depth (default) or the student's; the pose net as --pose-downsample and the defaults set it",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench_two_frame.json")
    args = parser.parse_args(argv)
    args.width, args.height = (int(v) for v in args.size.lower().split("x"))
    torch.set_num_threads(args.threads)
    frames = CameraFrames(args.width, args.height, rosbags_types())
    with tempfile.TemporaryDirectory(prefix="bench-two-frame-") as tmp:
        results = [bench_backbone(b.strip(), args, Path(tmp), frames) for b in args.backbones.split(",")]
    print_table(results, args)
    load = os.getloadavg()
    print(f"load average while measuring (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    report = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": args.threads,
        "size": [args.width, args.height],
        "frames": args.frames,
        "load_average": load,
        "target": TARGET,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"[bench] wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
