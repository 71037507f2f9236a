"""Per-stage cost of the runtime on camera-sized frames, and end-to-end vs inference-only frame rate.

    .venv/bin/python benchmarks/bench_runtime.py                      # shipped models, 3 camera sizes
    .venv/bin/python benchmarks/bench_runtime.py --model a.onnx --camera 1920x1080 -p points_stride:=1

For each model and camera size (640x192, 1242x375 and 1920x1080 by default): the end-to-end loop is
the node's own frame path as the node runs it (``FramePath.prepare`` of frame N+1 on a
``BackgroundThread`` at the node's ``prepare_priority`` and ``finish`` of frame N-1 on a
``FinishThread``, both beside frame N's ``infer`` on this thread; the node's default parameters,
``-p`` to change one): decode Image -> checks -> pipeline -> depth image, camera info and point cloud. Its
blocks of frames alternate with blocks of inference-only frames of the same model, so both see the
same machine load, and the table gives the ratio of the two frame rates; the target is at least 0.9
(for raw bgr8 frames). Also in the alternation: the same frame as a JPEG CompressedImage (a camera on
image_transport's compressed topic), the node's way with the preparing at the other priority, and
``FramePath.process`` one frame at a time (the replay's way, "sequential"). "frame latency" is what a frame
arriving at a free node takes, decode to last message: its network's start to its last message in
the end-to-end loop, plus decode and preprocess as measured one frame at a time. The stage
split (decoding an Image (bgr8) and the CompressedImage as the frame path does, with the reduced
JPEG decode where it applies, and in full; preprocess / inference / postprocess / scale, the cloud
as the node builds it, and packing the depth Image + CameraInfo) is read from separate frames
afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from depth_node.runtime.conversions import numpy_to_image, to_colour8  # noqa: E402
from depth_node.runtime.estimator import DepthEstimator  # noqa: E402
from depth_node.runtime.frame import (  # noqa: E402
    END_TO_END,
    QUEUED,
    FinishThread,
    FrameDrop,
    FrameOutputs,
    FramePath,
    prepare_thread,
)
from depth_node.runtime.message_types import rosbags_types, stamp_header  # noqa: E402
from depth_node.runtime.messages import build_outputs, camera_info_from_K  # noqa: E402
from depth_node.runtime.parameters import NodeSettings, parse_param_override, validate_parameters  # noqa: E402
from depth_node.runtime.pipeline import DepthPipeline  # noqa: E402

STAGES = (
    "decode_image",
    "decode_compressed",
    "decode_compressed_full",
    "preprocess",
    "inference",
    "postprocess",
    "scale",
    "pointcloud",
    "packing",
)
RATE_TARGET = 0.9  # end-to-end frame rate / inference-only frame rate
BLOCK = 10  # frames per timed block; the kinds of block alternate, so all see the same machine load
CAMERAS = ("640x192", "1242x375", "1920x1080")


def default_model(out_dir: Path, fp16_pair: bool) -> list[Path]:
    """The shipped models under models/, else a random ResNet18 exported with training.export."""
    shipped = sorted((ROOT / "models").glob("*.onnx"))
    if shipped:
        return shipped
    try:
        import torch

        from training.export import export_onnx
        from training.networks import build_depth_net
    except ImportError as error:
        raise SystemExit(
            f"no model under models/ and cannot build one ({error}); pass --model PATH to an ONNX depth model"
        ) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {"model": {"backbone": "resnet18", "weights": None}, "data": {"height": 192, "width": 640}}
    torch.manual_seed(0)
    checkpoint = out_dir / "resnet18_random_192x640.pt"
    torch.save({"config": config, "depth_net": build_depth_net(config["model"]).state_dict()}, checkpoint)
    paths = [export_onnx(checkpoint, out_dir / "resnet18_random_192x640.onnx", latency_runs=2)]
    if fp16_pair:
        paths.append(
            export_onnx(checkpoint, out_dir / "resnet18_random_192x640_fp16.onnx", fp16=True, latency_runs=2)
        )
    return paths


def camera_frame(width: int, height: int) -> np.ndarray:
    """A textured road-like RGB frame (JPEG sizes like a real camera's; content does not matter)."""
    rng = np.random.default_rng(0)
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [u / width * 180 + 40, v / height * 160 + 50, (u + v) / (width + height) * 120 + 60], axis=-1
    )
    noise = cv2.GaussianBlur(rng.normal(0, 25, (height, width, 3)).astype(np.float32), (0, 0), 2.0)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _ms(samples: list[float]) -> dict[str, float]:
    return {
        "median_ms": 1e3 * statistics.median(samples),
        "mean_ms": 1e3 * statistics.fmean(samples),
        "p90_ms": 1e3 * float(np.percentile(samples, 90)),
    }


class CameraFrames:
    """One camera size's test messages: Image (bgr8), CompressedImage (JPEG), CameraInfo."""

    def __init__(self, width: int, height: int, types) -> None:
        self.width, self.height = width, height
        header = stamp_header(types, 0, "camera_optical")
        bgr = cv2.cvtColor(camera_frame(width, height), cv2.COLOR_RGB2BGR)
        self.image = numpy_to_image(bgr, "bgr8", header, types)
        _, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
        self.compressed = types.CompressedImage(
            header=header, format="rgb8; jpeg compressed bgr8", data=jpeg.reshape(-1)
        )
        K = np.array([[721.5377, 0, width / 2 - 0.5], [0, 721.5377, height / 2 - 0.5], [0, 0, 1]])
        self.camera_info = camera_info_from_K(K, width, height, header, types)


def _stage_split(
    frame_path: FramePath, frames: CameraFrames, settings: NodeSettings, count: int
) -> dict[str, list[float]]:
    """Seconds per stage over ``count`` frames; build_outputs split into its cloud and the rest."""
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    cloud_options = {
        "stride": settings.points_stride,
        "organized": settings.points_organized,
        "min_range": settings.min_range,
        "max_range": settings.max_range,
    }
    for _ in range(count):
        outputs = frame_path.process(frames.image, frames.camera_info, settings, cloud=True)
        assert not isinstance(outputs, FrameDrop)
        result, header, types = outputs.result, frames.image.header, frame_path.types
        stages["decode_image"].append(outputs.timings["decode"])
        for name, seconds in result.timings.items():
            stages[name].append(seconds)
        colour = result.colour if settings.points_color else None
        t0 = time.perf_counter()
        build_outputs(result, header, frames.camera_info, types, cloud=False, **cloud_options)
        t1 = time.perf_counter()
        build_outputs(result, header, frames.camera_info, types, cloud=True, rgb=colour, **cloud_options)
        t2 = time.perf_counter()
        to_colour8(frames.compressed, frame_path.pipeline.input_reduction)
        t3 = time.perf_counter()
        to_colour8(frames.compressed)
        stages["decode_compressed"].append(t3 - t2)
        stages["decode_compressed_full"].append(time.perf_counter() - t3)
        stages["packing"].append(t1 - t0)
        stages["pointcloud"].append(max((t2 - t1) - (t1 - t0), 0.0))
    return stages


def bench_camera(estimator: DepthEstimator, camera: str, settings: NodeSettings, args) -> dict:
    """Inference-only and end-to-end frames in alternating blocks, then the stage split, at one camera
    size. End to end is the node's way: :class:`FinishThread` finishes frame N while frame N+1 runs
    the network; "sequential" is :meth:`FramePath.process` a frame at a time (the replay's way)."""
    types = rosbags_types()
    width, height = (int(v) for v in camera.lower().split("x"))
    frames = CameraFrames(width, height, types)
    frame_path = FramePath(DepthPipeline(estimator, settings.pipeline_config()), types)
    info = estimator.info
    batch = np.random.default_rng(1).random((1, 3, info.input_height, info.input_width), dtype=np.float32)
    prev = batch if info.frames == 2 else None  # a two-frame model's second input: the same cost
    for _ in range(args.warmup):  # caches, arenas, the scale window
        estimator.infer(batch, prev)
        frame_path.process(frames.image, frames.camera_info, settings, cloud=True)

    print(f"[bench] {Path(estimator.model_path).name} @ {camera}: {args.frames} frames each", flush=True)
    # Only the newest outputs are kept, as in the node: holding every frame's messages would make
    # each new frame's buffers fresh memory (page faults) and slow the loop being measured.
    delivered: list[FrameOutputs] = []
    latency: list[float] = []

    def deliver(_: None, outputs: FrameOutputs | FrameDrop) -> None:
        delivered[:] = [_published(outputs)]
        # From its network's start to its last message. (Its decode and preprocess, prepared one ahead
        # beside the frame before, then wait for the network: added below as measured alone.)
        timings = delivered[0].timings
        latency.append(timings[END_TO_END] - timings[QUEUED] - timings["decode"] - timings["preprocess"])

    # The node's threads: frame N+1 prepared (at the node's prepare_priority) and frame N-1 finished
    # beside frame N's network; and the same with the preparing at the other priority, for comparison.
    other = "normal" if settings.prepare_priority == "idle" else "idle"
    preparers = {priority: prepare_thread(priority) for priority in (settings.prepare_priority, other)}
    finisher: FinishThread[None] = FinishThread(frame_path, deliver, _reraise)

    def overlapped(message, priority: str) -> float:
        """Seconds per frame over a block of BLOCK frames, prepared one ahead, finished one behind."""
        preparer = preparers[priority]
        t0 = time.perf_counter()
        ahead = preparer.submit(frame_path.prepare, message, frames.camera_info, settings)
        for index in range(BLOCK):
            prepared = _published(ahead.result())
            if index + 1 < BLOCK:
                ahead = preparer.submit(frame_path.prepare, message, frames.camera_info, settings)
            finisher.submit(_published(frame_path.infer(prepared)), True, None)
        finisher.wait()
        return (time.perf_counter() - t0) / BLOCK

    def per_frame(run_one) -> float:
        t0 = time.perf_counter()
        for _ in range(BLOCK):
            run_one()
        return (time.perf_counter() - t0) / BLOCK

    def one_at_a_time() -> None:
        _published(frame_path.process(frames.image, frames.camera_info, settings, cloud=True))

    inference_only, end_to_end, end_to_end_jpeg, sequential, other_priority, raw_latency = (
        [],
        [],
        [],
        [],
        [],
        [],
    )
    try:
        for _ in range(max(args.frames // BLOCK, 1)):
            inference_only.append(per_frame(lambda: estimator.infer(batch, prev)))
            end_to_end.append(overlapped(frames.image, settings.prepare_priority))
            outputs, raw_latency = delivered[0], raw_latency + latency[-BLOCK:]
            end_to_end_jpeg.append(overlapped(frames.compressed, settings.prepare_priority))
            jpeg_outputs = delivered[0]
            other_priority.append(overlapped(frames.image, other))
            sequential.append(per_frame(one_at_a_time))
    finally:
        finisher.close()
        for preparer in preparers.values():
            preparer.close()
    stages = _stage_split(frame_path, frames, settings, args.frames)
    before_network = statistics.median(stages["decode_image"]) + statistics.median(stages["preprocess"])
    raw_latency = [seconds + before_network for seconds in raw_latency]

    inference_ms = 1e3 * statistics.median(stages["inference"])
    e2e_ms = 1e3 * statistics.median(end_to_end)
    infer_only_ms = 1e3 * statistics.median(inference_only)
    overhead_ms = sum(
        1e3 * statistics.median(stages[s])
        for s in STAGES
        if s not in ("inference", "decode_compressed", "decode_compressed_full")
    )
    e2e_jpeg_ms = 1e3 * statistics.median(end_to_end_jpeg)
    return {
        "model": str(estimator.model_path),
        "backbone": info.backbone,
        "input": f"{info.input_width}x{info.input_height}",
        "camera": camera,
        "provider": estimator.provider,
        "scale_mode": frame_path.pipeline.scale_mode,
        "points_stride": settings.points_stride,
        "cloud": f"{outputs.points.width}x{outputs.points.height}",
        "stages": {name: _ms(samples) for name, samples in stages.items()},
        "end_to_end": _ms(end_to_end),
        "inference_only": _ms(inference_only),
        "fps_end_to_end": 1e3 / e2e_ms,
        "fps_inference_only": 1e3 / infer_only_ms,
        "rate_ratio": infer_only_ms / e2e_ms,
        "latency": _ms(raw_latency),
        "sequential": _ms(sequential),
        "prepare_priority": settings.prepare_priority,
        "end_to_end_other_priority": {"priority": other, **_ms(other_priority)},
        "rate_ratio_other_priority": infer_only_ms / (1e3 * statistics.median(other_priority)),
        "rate_ratio_sequential": infer_only_ms / (1e3 * statistics.median(sequential)),
        "end_to_end_jpeg": _ms(end_to_end_jpeg),
        "jpeg_reduction": jpeg_outputs.reduction,
        "rate_ratio_jpeg": infer_only_ms / e2e_jpeg_ms,
        "overhead_ms": overhead_ms,
        "overhead_fraction": overhead_ms / inference_ms,
        "overhead_fraction_e2e": (e2e_ms - infer_only_ms) / infer_only_ms,
    }


def _published(outputs):
    """``outputs`` (a frame from any step), or the run ends: a benchmark frame never drops."""
    if isinstance(outputs, FrameDrop):
        raise SystemExit(f"the frame path dropped the benchmark frame ({outputs.reason}): {outputs.detail}")
    return outputs


def _reraise(_: None, error: Exception) -> None:
    raise error


def print_table(results: list[dict]) -> None:
    for camera in dict.fromkeys(r["camera"] for r in results):
        rows_of = [r for r in results if r["camera"] == camera]
        names = [Path(r["model"]).name for r in rows_of]
        width = max(14, *(len(n) for n in names))
        print(f"\ncamera {camera}")
        print(f"{'stage [ms, median]':<22}" + "".join(f"{n:>{width + 2}}" for n in names))
        for stage in STAGES:
            print(
                f"{stage:<22}"
                + "".join(f"{r['stages'][stage]['median_ms']:>{width + 2}.2f}" for r in rows_of)
            )
        rows = [
            ("cloud (w x h)", lambda r: r["cloud"]),
            ("end-to-end [ms]", lambda r: f"{r['end_to_end']['median_ms']:.2f}"),
            ("inference-only [ms]", lambda r: f"{r['inference_only']['median_ms']:.2f}"),
            ("end-to-end [fps]", lambda r: f"{r['fps_end_to_end']:.2f}"),
            ("inference-only [fps]", lambda r: f"{r['fps_inference_only']:.2f}"),
            ("e2e/inference rate", lambda r: f"{r['rate_ratio']:.2f}"),
            ("prepare priority", lambda r: r["prepare_priority"]),
            ("e2e/inf, prepare at", lambda r: r["end_to_end_other_priority"]["priority"]),
            ("  that rate", lambda r: f"{r['rate_ratio_other_priority']:.2f}"),
            ("frame latency [ms]", lambda r: f"{r['latency']['median_ms']:.2f}"),
            ("sequential e2e/inf", lambda r: f"{r['rate_ratio_sequential']:.2f}"),
            ("JPEG end-to-end [ms]", lambda r: f"{r['end_to_end_jpeg']['median_ms']:.2f}"),
            ("JPEG decoded at", lambda r: f"1/{r['jpeg_reduction']}"),
            ("JPEG e2e/inference", lambda r: f"{r['rate_ratio_jpeg']:.2f}"),
            ("non-inference/infer", lambda r: f"{100 * r['overhead_fraction']:.1f}%"),
            ("provider", lambda r: r["provider"].replace("ExecutionProvider", "")),
        ]
        for label, value in rows:
            print(f"{label:<22}" + "".join(f"{value(r):>{width + 2}}" for r in rows_of))
    print()
    for r in results:
        verdict = "meets" if r["rate_ratio"] >= RATE_TARGET else "MISSES"
        print(
            f"{Path(r['model']).name} @ {r['camera']}: {r['fps_end_to_end']:.1f} fps end to end vs "
            f"{r['fps_inference_only']:.1f} fps inference only = {r['rate_ratio']:.2f} "
            f"({verdict} the {RATE_TARGET:.1f} target)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", type=Path, help="ONNX model (repeat for several)")
    parser.add_argument(
        "--fp16-pair", action="store_true", help="when building the default model, also export fp16"
    )
    parser.add_argument(
        "--camera", action="append", help=f"camera size WxH (repeat; default {', '.join(CAMERAS)})"
    )
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: ONNX Runtime's default)")
    parser.add_argument("--providers", default="cpu", help="comma-separated, e.g. tensorrt,cuda,cpu")
    parser.add_argument(
        "-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
        help="a node parameter other than its default (e.g. points_stride:=1, scale_mode:=camera_height)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench_runtime.json")
    args = parser.parse_args(argv)
    args.providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    cameras = args.camera or list(CAMERAS)
    bad = [c for c in cameras if not _is_size(c)]
    if bad:
        raise SystemExit(f"--camera wants WxH (e.g. 1920x1080), got {', '.join(bad)}")
    # The node's parameters as it starts without any (the default settings), plus -p overrides.
    settings = validate_parameters({"threads": args.threads, **dict(map(parse_param_override, args.param))})

    models = args.model or default_model(args.out.parent / "bench_models", args.fp16_pair)
    missing = [str(m) for m in models if not Path(m).is_file()]
    if missing:
        raise SystemExit(f"model file(s) not found: {', '.join(missing)}")
    results = []
    for model in models:
        estimator = DepthEstimator(Path(model), providers=args.providers, threads=args.threads)
        results += [bench_camera(estimator, camera, settings, args) for camera in cameras]
    print_table(results)
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "opencv": cv2.__version__,
        },
        "frames": args.frames,
        "parameters": dict(map(parse_param_override, args.param)),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"[bench] wrote {args.out}")
    return 0


def _is_size(text: str) -> bool:
    parts = text.lower().split("x")
    return len(parts) == 2 and all(p.isdigit() and int(p) > 0 for p in parts)


if __name__ == "__main__":
    raise SystemExit(main())
