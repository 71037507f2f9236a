"""Start-up and per-frame cost of the runtime's session on each execution provider: the GPU figures.

    .venv/bin/python benchmarks/bench_startup.py --providers tensorrt,cuda,cpu      # on the car's GPU
    .venv/bin/python benchmarks/bench_startup.py --model models/x.onnx --providers cpu

For each shipped model (or ``--model``) and each provider on its own: the first start with an empty
TensorRT cache (``DepthEstimator``: session, engine build, warm-up run), a restart with the cache
that start wrote, and the median ms per frame (batch 1, the model's input size) of the restarted
session, with the provider and model file the runtime chose (``precision: auto``). A provider that
is not available here is reported as such, not timed. Prints a table, writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from depth_node.runtime.estimator import PROVIDER_NAMES, DepthEstimator  # noqa: E402


def time_provider(model: Path, provider: str, cache: Path, frames: int, threads: int) -> dict:
    """First start (empty cache), restart (warm cache) and ms per frame on ``provider`` alone."""
    start = time.perf_counter()
    first = DepthEstimator(model, providers=[provider], threads=threads, trt_cache_dir=cache)
    first_start = time.perf_counter() - start
    ran_on = first.provider
    del first
    start = time.perf_counter()
    estimator = DepthEstimator(model, providers=[provider], threads=threads, trt_cache_dir=cache)
    restart = time.perf_counter() - start
    info = estimator.info
    image = np.random.default_rng(0).random((1, 3, info.input_height, info.input_width), dtype=np.float32)
    times = []
    for _ in range(frames):
        begin = time.perf_counter()
        estimator.infer(image, image if info.frames == 2 else None)
        times.append(time.perf_counter() - begin)
    return {
        "model": model.name,
        "provider": provider,
        "ran_on": ran_on,
        "file": estimator.model_path.name,
        "precision": estimator.precision,
        "input": f"{info.input_width}x{info.input_height}",
        "first_start_s": first_start,
        "restart_s": restart,
        "ms_per_frame": 1000.0 * statistics.median(times),
        "cache_files": sum(1 for p in cache.rglob("*") if p.is_file()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", type=Path, help="ONNX model (repeat); default: models/")
    parser.add_argument("--providers", default="tensorrt,cuda,cpu", help="comma list, each timed on its own")
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: ONNX Runtime's)")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench_startup.json")
    args = parser.parse_args(argv)
    models = args.model or sorted(p for p in (ROOT / "models").glob("*.onnx") if p.name.count(".") == 1)
    available = ort.get_available_providers()
    rows = []
    for model in models:
        for name in (p.strip() for p in args.providers.split(",") if p.strip()):
            if PROVIDER_NAMES.get(name, name) not in available:
                rows.append({"model": model.name, "provider": name, "ran_on": "not available here"})
                continue
            with tempfile.TemporaryDirectory(prefix="bench-startup-") as cache:
                rows.append(time_provider(model, name, Path(cache), args.frames, args.threads))
            print(f"[bench] {model.name} on {name}: done", flush=True)
    print(f"\nONNX Runtime {ort.__version__}; available providers: {', '.join(available)}")
    header = f"{'model':28} {'provider':9} {'ran on':26} {'file':28} " + "first start  restart  ms/frame"
    print(header)
    print("-" * len(header))
    for row in rows:
        if "ms_per_frame" not in row:
            print(f"{row['model']:28} {row['provider']:9} {row['ran_on']:26}")
            continue
        print(
            f"{row['model']:28} {row['provider']:9} {row['ran_on']:26} {row['file']:28} "
            f"{row['first_start_s']:10.2f}s {row['restart_s']:7.2f}s {row['ms_per_frame']:9.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"onnxruntime": ort.__version__, "available": available, "rows": rows}, indent=2)
    )
    print(f"[bench] wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
