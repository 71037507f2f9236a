"""Benchmark the synthetic world: drive set-up time and per-frame render time at several sizes.

    .venv/bin/python benchmarks/bench_world.py [--sizes 640x192,1242x375] [--frames 10]
        [--out out/bench_world.json]

Frames are rendered with and without the LiDAR sweep; intrinsics are KITTI's scaled to each size.
Prints a table and writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from depth_node.data.sim.world import SyntheticDrive, WorldConfig


def bench(width: int, height: int, frames: int, seed: int, lidar: bool) -> dict:
    cfg = WorldConfig(
        seed=seed,
        num_frames=max(frames, 2) * 3,
        width=width,
        height=height,
        lidar=lidar,
    )
    t0 = time.perf_counter()
    drive = SyntheticDrive(cfg)
    setup = time.perf_counter() - t0
    drive.frame(0)  # warm caches (ray grids)
    times, cpu, points = [], [], []
    for i in range(frames):
        t0, c0 = time.perf_counter(), time.process_time()
        f = drive.frame(3 * i + 1)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        points.append(len(f.lidar))
    return {
        "size": f"{width}x{height}",
        "lidar": lidar,
        "setup_s": setup,
        "frames": frames,
        "median_ms": 1000 * float(np.median(times)),
        "mean_ms": 1000 * float(np.mean(times)),
        "max_ms": 1000 * float(np.max(times)),
        "median_cpu_ms": 1000 * float(np.median(cpu)),  # less sensitive to other processes
        "lidar_points": int(np.mean(points)),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="320x96,640x192,1242x375", help="comma-separated WxH list")
    ap.add_argument("--frames", type=int, default=10, help="frames timed per size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out/bench_world.json")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)  # one core: the budget of a data-loader worker
    rows = []
    for size in args.sizes.split(","):
        w, h = (int(x) for x in size.lower().split("x"))
        for lidar in (False, True):
            row = bench(w, h, args.frames, args.seed, lidar)
            rows.append(row)
            print(
                f"  {row['size']:>9}  lidar={'on ' if lidar else 'off'}  median {row['median_ms']:7.1f} ms"
                f" wall, {row['median_cpu_ms']:7.1f} ms cpu",
                flush=True,
            )
    print()
    print(
        f"{'size':>9} {'lidar':>5} {'setup s':>8} {'median ms':>10} {'mean ms':>8} {'max ms':>8}"
        f" {'cpu ms':>7} {'points':>7}"
    )
    for r in rows:
        print(
            f"{r['size']:>9} {('on' if r['lidar'] else 'off'):>5} {r['setup_s']:8.2f} {r['median_ms']:10.1f} "
            f"{r['mean_ms']:8.1f} {r['max_ms']:8.1f} {r['median_cpu_ms']:7.1f} {r['lidar_points']:7d}"
        )
    result = {
        "benchmark": "synthetic world render time per frame (single process)",
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
