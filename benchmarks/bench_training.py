"""Training throughput (images/s) per backbone and resolution: the full training step of depth-train
(depth net + pose net forward, Monodepth2 loss, backward, Adam) on a synthetic batch.

    python benchmarks/bench_training.py                       # CPU (and CUDA when available)
    python benchmarks/bench_training.py --backbones resnet18 --sizes 96x320 --steps 5 --threads 2

One "image" is one training sample (a target frame with its two neighbours). Data loading is left
out (random tensors), so the figures are the network/loss cost a DataLoader has to keep up with.
Results: a table on stdout and JSON at --out (default out/bench_training.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from training.losses import SelfSupervisedLoss
from training.networks import DepthPoseModel, build_depth_net, build_pose_net
from training.train import resolve_config

FRAME_IDS = (0, -1, 1)


def synthetic_batch(batch: int, height: int, width: int, device: torch.device) -> dict[Any, torch.Tensor]:
    """A batch with the trainer's keys: smooth random images, KITTI-like intrinsics, 1 m distances."""
    gen = torch.Generator().manual_seed(0)
    out: dict[Any, torch.Tensor] = {}
    for f in FRAME_IDS:
        # Low-frequency noise (upsampled) looks more like images than white noise does.
        small = torch.rand(batch, 3, height // 8, width // 8, generator=gen)
        image = torch.nn.functional.interpolate(small, (height, width), mode="bilinear", align_corners=False)
        out[("color", f, 0)] = out[("color_aug", f, 0)] = image.to(device)
        if f != 0:
            out[("distance", f)] = torch.ones(batch, device=device)
    K = torch.tensor(
        [[0.58 * width, 0, 0.5 * width, 0], [0, 1.92 * height, 0.5 * height, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    )
    out["K"] = K.expand(batch, 4, 4).contiguous().to(device)
    out["inv_K"] = torch.linalg.inv(K).expand(batch, 4, 4).contiguous().to(device)
    return out


def bench_one(
    backbone: str,
    height: int,
    width: int,
    batch: int,
    steps: int,
    warmup: int,
    device: torch.device,
    amp: bool,
) -> dict[str, Any]:
    """Time ``steps`` training steps after ``warmup`` untimed ones; returns images/s and ms/step."""
    config = resolve_config({"model": {"backbone": backbone}, "loss": {}})
    model = DepthPoseModel(build_depth_net(config["model"]), build_pose_net(config["model"]), FRAME_IDS).to(
        device
    )
    criterion = SelfSupervisedLoss(config["loss"], height, width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    use_amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    data = synthetic_batch(batch, height, width, device)
    model.train()

    def step() -> None:
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            outputs = model(data)
        loss, _ = criterion(data, {k: v.float() for k, v in outputs.items()})
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    median = sorted(times)[len(times) // 2]
    params = sum(p.numel() for p in model.depth_net.parameters())
    return {
        "backbone": backbone,
        "height": height,
        "width": width,
        "batch": batch,
        "device": str(device),
        "amp": use_amp,
        "steps": steps,
        "ms_per_step": 1000.0 * median,
        "images_per_s": batch / median,
        "depth_net_params_m": params / 1e6,
    }


def parse_size(text: str) -> tuple[int, int]:
    """'96x320' -> (96, 320) as height x width (Monodepth2 writes sizes that way)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected HEIGHTxWIDTH, e.g. 96x320") from None
    if height % 32 or width % 32:
        raise argparse.ArgumentTypeError(f"size {text!r}: height and width must be multiples of 32")
    return height, width


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    header = f"{'device':<8}{'backbone':<10}{'size':>10}{'batch':>7}{'ms/step':>10}{'images/s':>10}"
    lines = [header, "-" * len(header)]
    for r in rows:
        size = f"{r['height']}x{r['width']}"
        lines.append(
            f"{r['device']:<8}{r['backbone']:<10}{size:>10}{r['batch']:>7}{r['ms_per_step']:>10.0f}"
            f"{r['images_per_s']:>10.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="depth-train throughput per backbone and resolution")
    parser.add_argument("--backbones", nargs="+", default=["resnet18", "stdc1", "stdc2"])
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=[(96, 320), (192, 640)])
    parser.add_argument("--batch", type=int, default=4, help="CPU batch size")
    parser.add_argument("--cuda-batch", type=int, default=12, help="CUDA batch size (Monodepth2's 12)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration (median)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--devices", nargs="+", default=None, help="cpu and/or cuda (default: all available)")
    parser.add_argument("--no-amp", action="store_true", help="fp32 on CUDA too")
    parser.add_argument("--out", type=Path, default=Path("out/bench_training.json"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if "cuda" in devices and not torch.cuda.is_available():
        print("bench_training: CUDA requested but not available", file=sys.stderr)
        return 2
    rows = []
    for device_name in devices:
        device = torch.device(device_name)
        batch = args.cuda_batch if device.type == "cuda" else args.batch
        for height, width in args.sizes:
            for backbone in args.backbones:
                row = bench_one(
                    backbone, height, width, batch, args.steps, args.warmup, device, not args.no_amp
                )
                rows.append(row)
                print(
                    f"{device_name} {backbone} {height}x{width}: {row['images_per_s']:.2f} images/s",
                    file=sys.stderr,
                    flush=True,
                )
    print(format_table(rows))
    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
