"""What each depth network costs on this CPU, per precision, beside the CPU's matrix-multiply peak.

    .venv/bin/python benchmarks/bench_models.py                         # every network at 640x192
    .venv/bin/python benchmarks/bench_models.py --size 320x96 --models resnet18:monodepth2 --threads 1

For each encoder:decoder pair (random weights; the cost does not depend on them): parameters, GMAC,
then ONNX Runtime latency (batch 1, median) of the fp32 export and of its int8 Q/DQ model (calibrated
on frames of the synthetic world, head in float, as ``depth-export --int8`` makes it), fps, achieved
GFLOP/s (2 x MAC / time) and its share of the peak of one large matrix multiply run by ONNX Runtime
with the same threads in the same run (fp32 MatMul for fp32, u8 x s8 MatMulInteger for int8). The
models take turns in blocks (``training.export.measure_latencies``), so a changing load hits them alike.
Prints a table, writes JSON (``--out``).
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
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from depth_node.data.sim.world import SyntheticDrive, WorldConfig  # noqa: E402
from training.export import (  # noqa: E402
    DepthExportWrapper,
    _torch_onnx_export,
    count_flops,
    cpu_name,
    measure_latencies,
)
from training.networks import build_depth_net, model_config  # noqa: E402
from training.quantize import quantize_model  # noqa: E402

MODELS = (
    "resnet18:monodepth2",
    "stdc1:monodepth2",
    "stdc1:slim",
    "stdc1:light",
    "darknet:light",
    "mobilenetv3_large:monodepth2",
    "mobilenetv3_large:light",
    # The seeds' networks (issue 17): U-Net++ on ResNet18, STDC1 and ResNeXt50, LR-ASPP,
    # Inception-ResNet-v2 with the attention-and-skip decoder.
    "resnet18:unetpp",
    "stdc1:unetpp",
    "resnext50_32x4d:unetpp",
    "mobilenetv3_large:lraspp",
    "inception_resnet_v2:attention",
)
PEAK_SIDE = 1024  # a square matrix multiply this large runs at the kernels' peak


def export_pair(name: str, height: int, width: int, folder: Path, frames: list[np.ndarray]) -> dict:
    """fp32 and int8 ONNX files of ``backbone:decoder`` with random weights, and their sizes."""
    backbone, decoder = name.split(":")
    torch.manual_seed(0)
    net = build_depth_net(model_config({"backbone": backbone, "decoder": decoder, "weights": None})).eval()
    example = torch.rand(1, 3, height, width)
    fp32 = folder / f"{backbone}_{decoder}.onnx"
    _torch_onnx_export(DepthExportWrapper(net), example, fp32, 17, False)
    model = onnx.load(str(fp32))
    helper.set_model_props(
        model, {"input_height": str(height), "input_width": str(width), "precision": "fp32"}
    )
    onnx.save(model, str(fp32))
    int8 = quantize_model(fp32, folder / f"{backbone}_{decoder}.int8.onnx", frames)
    with torch.no_grad():
        flops = count_flops(net, example)
    return {
        "model": name,
        "parameters": sum(p.numel() for p in net.parameters()),
        "gmac": flops["macs"] / 1e9,
        "files": {"fp32": fp32, "int8": int8},
    }


def _matmul_model(path: Path, int8: bool) -> Path:
    n = PEAK_SIDE
    if int8:
        inputs = [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n]),
            helper.make_tensor_value_info("b", TensorProto.INT8, [n, n]),
        ]
        node = helper.make_node("MatMulInteger", ["a", "b"], ["c"])
        output = helper.make_tensor_value_info("c", TensorProto.INT32, [n, n])
    else:
        inputs = [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in ("a", "b")]
        node = helper.make_node("MatMul", ["a", "b"], ["c"])
        output = helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])
    graph = helper.make_graph([node], "peak", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def matmul_peak(folder: Path, threads: int, int8: bool, runs: int = 10) -> float:
    """G(FL)OP/s of one PEAK_SIDE^3 matrix multiply in ONNX Runtime (2 operations per multiply-add)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        str(_matmul_model(folder / f"peak_{'int8' if int8 else 'fp32'}.onnx", int8)),
        options,
        providers=["CPUExecutionProvider"],
    )
    rng = np.random.default_rng(0)
    n = PEAK_SIDE
    if int8:
        feeds = {
            "a": rng.integers(0, 255, (n, n), dtype=np.uint8),
            "b": rng.integers(-127, 127, (n, n), dtype=np.int8),
        }
    else:
        feeds = {"a": rng.random((n, n), dtype=np.float32), "b": rng.random((n, n), dtype=np.float32)}
    session.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def world_frames(height: int, width: int, count: int = 8) -> list[np.ndarray]:
    drive = SyntheticDrive(WorldConfig(seed=7, num_frames=count, width=width, height=height, lidar=False))
    return [frame.image for frame in drive]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma list of backbone:decoder")
    parser.add_argument("--size", default="640x192", help="network input WIDTHxHEIGHT")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per model and precision")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench_models.json")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    torch.set_num_threads(args.threads)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        folder = Path(tmp)
        frames = world_frames(height, width)
        peak = {
            "fp32": matmul_peak(folder, args.threads, False),
            "int8": matmul_peak(folder, args.threads, True),
        }
        for name in args.models.split(","):
            print(f"[bench] {name}: export fp32 and int8 at {width}x{height}", flush=True)
            model = export_pair(name.strip(), height, width, folder, frames)
            files = model.pop("files")
            latencies = measure_latencies(
                [files["fp32"], files["int8"]], height, width, runs=args.runs, threads=args.threads, rounds=4
            )
            for precision, ms in zip(("fp32", "int8"), latencies, strict=True):
                achieved = 2 * model["gmac"] / (ms / 1000.0)
                rows.append(
                    {
                        **model,
                        "precision": precision,
                        "ms": ms,
                        "fps": 1000.0 / ms,
                        "gflops": achieved,
                        "peak_share": achieved / peak[precision],
                    }
                )
    print_table(rows, peak, args, width, height)
    report = {
        "cpu": cpu_name(),
        "threads": args.threads,
        "size": [width, height],
        "matmul_peak_gops": peak,
        "models": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"[bench] wrote {args.out}")
    return 0


def print_table(
    rows: list[dict], peak: dict[str, float], args: argparse.Namespace, width: int, height: int
) -> None:
    print(
        f"\n{cpu_name()}, {args.threads} thread(s), {width}x{height}, batch 1; matrix-multiply peak "
        f"{peak['fp32']:.0f} GFLOP/s fp32, {peak['int8']:.0f} GOP/s int8 (ONNX Runtime, {PEAK_SIDE}^3)"
    )
    columns = ("params", 8), ("GMAC", 6), ("prec", 5), ("ms", 7), ("fps", 6), ("GFLOP/s", 8), ("of peak", 8)
    header = f"{'model':32} " + " ".join(f"{name:>{size}}" for name, size in columns)
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['model']:32} {row['parameters'] / 1e6:7.2f}M {row['gmac']:6.2f} {row['precision']:>5} "
            f"{row['ms']:7.1f} {row['fps']:6.1f} {row['gflops']:8.1f} {100 * row['peak_share']:7.0f}%"
        )
    by_model: dict[str, dict[str, float]] = {}
    for row in rows:
        by_model.setdefault(row["model"], {})[row["precision"]] = row["ms"]
    print("int8 speed-up: " + ", ".join(f"{m} x{t['fp32'] / t['int8']:.2f}" for m, t in by_model.items()))


if __name__ == "__main__":
    sys.exit(main())
