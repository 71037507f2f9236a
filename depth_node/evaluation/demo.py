"""``depth-demo``: the main job on a fresh machine, in one command and a couple of minutes on a CPU.

1. Generates a synthetic drive (``depth_node.data.sim.world``, a seed the demo model never saw in
   training) and writes it as a rosbag2 through the KITTI converter — exactly what a recorded
   KITTI drive would give: camera, camera_info, LiDAR, /tf_static, odometry, dense ground truth.
2. Replays the bag through the depth pipeline with the demo model from ``models/``
   (:mod:`depth_node.evaluation.replay`): metrics against the ground truth, latency, a depth rosbag2 and an
   HTML report.
3. Prints the metrics and the path of the report.

Needs only the runtime extras (``pip install -e .[runtime,replay]``): no torch, no ROS.
The synthetic bag is kept in the output folder and reused by later runs with the same settings.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from depth_node.evaluation.bag_input import ReplayError
from depth_node.evaluation.replay import ReplayOptions, ReplayResult, replay
from depth_node.evaluation.replay_cli import summary_text
from depth_node.runtime.errors import ModelLoadError
from depth_node.runtime.parameters import find_default_model, model_dirs, resolve_model

DEMO_MODEL_NAME = "demo_resnet18_320x96.onnx"
# Drives for training the demo model come from low seeds; 1000 and up are kept for evaluation.
DEFAULT_SEED = 1000
DEFAULT_FRAMES = 60
# The camera the demo model was trained for (see its model card): KITTI's field of view at 640x192
# (the world's default focal length at that size, fx = 371.8 px). A monocular model's metric scale
# holds only for the field of view it was trained with.
DEFAULT_SIZE = (640, 192)
DEFAULT_OUT = Path("runs/demo")


class DemoError(Exception):
    """A demo that cannot run (one-line message)."""


def default_model() -> Path:
    """The demo model, found the way the node finds it; DemoError naming where it looked."""
    found = find_default_model(model_dirs())
    if found is None:
        looked = ", ".join(str(d) for d in model_dirs())
        raise DemoError(
            f"demo model ({DEMO_MODEL_NAME}) not found in {looked}; train and export it "
            "(depth-train, depth-export) or pass --model PATH.onnx"
        )
    return found


def make_synthetic_bag(
    out: Path,
    seed: int = DEFAULT_SEED,
    frames: int = DEFAULT_FRAMES,
    size: tuple[int, int] = DEFAULT_SIZE,
    storage: str = "sqlite3",
    progress: bool = True,
) -> Path:
    """World -> KITTI raw layout (temporary) -> rosbag2 at ``out`` (a new directory)."""
    from depth_node.data import bag_convert, kitti
    from depth_node.data.sim.world import SyntheticDrive, WorldConfig

    drive = SyntheticDrive(WorldConfig(seed=seed, num_frames=frames, width=size[0], height=size[1]))
    with tempfile.TemporaryDirectory(prefix="depth-demo-") as tmp:
        drive_dir = kitti.write_drive(drive, tmp, drive_number=1, progress=progress)
        return bag_convert.convert_drive(drive_dir, out, storage, progress=progress)


def run_demo(
    out: Path = DEFAULT_OUT,
    seed: int = DEFAULT_SEED,
    frames: int = DEFAULT_FRAMES,
    size: tuple[int, int] = DEFAULT_SIZE,
    model: Path | None = None,
    storage: str = "sqlite3",
    threads: int = 0,
    progress: bool = True,
) -> tuple[Path, ReplayResult]:
    """Make (or reuse) the synthetic bag under ``out`` and replay it; return (bag, replay result)."""
    try:
        model = default_model() if model is None else resolve_model(model)
    except ModelLoadError as err:
        raise DemoError(str(err)) from None
    if frames < 1 or min(size) < 16:
        raise DemoError(f"need at least 1 frame of at least 16x16 pixels, got {frames} frames of {size}")
    out.mkdir(parents=True, exist_ok=True)
    from depth_node.data.sim.world import WorldConfig, focal_lengths

    # The camera is part of the name: a bag cached under another camera must not be reused.
    fx = focal_lengths(WorldConfig(width=size[0], height=size[1]))[0]
    bag = out / f"synthetic_seed{seed}_{frames}f_{size[0]}x{size[1]}_fx{fx:.0f}_{storage}"
    if not (bag / "metadata.yaml").is_file():
        shutil.rmtree(bag, ignore_errors=True)  # a bag cut short by an interrupted run
        started = time.perf_counter()
        make_synthetic_bag(bag, seed, frames, size, storage, progress)
        print(
            f"synthetic drive: seed {seed}, {frames} frames {size[0]}x{size[1]} -> {bag} "
            f"({time.perf_counter() - started:.1f} s)"
        )
    else:
        print(f"synthetic drive: reusing {bag}")
    options = ReplayOptions(
        bag=bag,
        model=model,
        out=out / "replay",
        # Every other pixel in the cloud: a quarter of the bag size (the camera-resolution cloud
        # would be ~7 MB a frame); everything else as the node's defaults.
        node_params={"threads": threads, "points_stride": 2},
        force=True,  # the demo's own previous replay: replaced atomically
        progress=progress,
    )
    return bag, replay(options)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="depth-demo",
        description="Generate a synthetic drive as a rosbag2, replay it through the depth node's "
        "pipeline with the demo model, print the metrics and the path of the HTML report.",
    )
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help=f"frames (default {DEFAULT_FRAMES})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"world seed (default {DEFAULT_SEED})")
    p.add_argument(
        "--model", type=Path, help=f"ONNX model (default: the demo model in models/, {DEMO_MODEL_NAME})"
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--width", type=int, default=DEFAULT_SIZE[0], help="camera image width")
    p.add_argument("--height", type=int, default=DEFAULT_SIZE[1], help="camera image height")
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3", help="bag storage")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: default)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        _, result = run_demo(
            out=args.out,
            seed=args.seed,
            frames=args.frames,
            size=(args.width, args.height),
            model=args.model,
            storage=args.storage,
            threads=args.threads,
            progress=not args.quiet,
        )
    except (DemoError, ReplayError) as err:
        print(f"depth-demo: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("depth-demo: interrupted", file=sys.stderr)
        return 130
    print(summary_text(result))
    # A machine-readable last line for scripts: the headline numbers.
    metrics = result.results.get("metrics") or {}
    headline = {
        "abs_rel": (metrics.get("metric") or {}).get("abs_rel"),
        "abs_rel_median_scaled": (metrics.get("median_scaled") or {}).get("abs_rel"),
        "a1": (metrics.get("metric") or {}).get("a1"),
        "fps": result.results["fps"]["pipeline"],
        "report": str(result.report),
    }
    print(f"demo done in {time.perf_counter() - started:.0f} s: {json.dumps(headline)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
