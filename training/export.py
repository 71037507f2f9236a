"""Export a trained DepthNet checkpoint to the runtime's ONNX contract (DESIGN.md, "ONNX model").

Graph: input ``image`` float32 [N,3,H,W] RGB in [0,1] -> output ``depth`` float32 [N,1,H,W]
(``disp_to_depth`` of the scale-0 disparity, model units); ImageNet normalisation inside. The fp16
variant computes in half precision but keeps the float32 interface (casts at both ends), so the
runtime never changes. Each export is checked (``onnx.checker``, ONNX Runtime vs PyTorch parity)
and gets a model card ``<name>.md`` next to it (``training.model_card``).

``--int8`` (CPU) exports fp32 as above, then writes the statically quantized model to ``--out``
(``training.quantize``: calibrated on real frames, the disparity head and depth conversion in
float), compares its depth with fp32's on the calibration frames and measures both models' CPU
latency side by side; the fp32 model is not kept (export again without ``--int8`` to ship it).

A multi-frame checkpoint (``model.multi_frame``, Manydepth's student) exports as a two-frame model:
inputs ``image`` and ``prev_image`` (both [N,3,H,W] RGB in [0,1]), output ``depth``, the pose net
inside the graph, metadata ``frames=2``. Its cost volume matches with the training camera's
intrinsics normalised by image size (fx/W, fy/H, cx/W, cy/H), baked into the graph and recorded as
``cost_volume_intrinsics``: a camera whose normalised intrinsics differ needs its own export (train
or fine-tune on its images). Two-frame models export in fp32 only for now.

CLI: ``depth-export --checkpoint CKPT --out models/x.onnx [--fp16 | --int8 --calibration PATH ...]
[--dynamic-batch]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from depth_node.files import WriteError, atomic_path
from training.checkpoint import (
    depth_net_from_checkpoint,
    guided_net_from_checkpoint,
    load_checkpoint,
    two_frame_net_from_checkpoint,
)
from training.geometry import disp_to_depth
from training.losses import METRIC_TRAINING_MODES
from training.losses import training_mode as infer_training_mode
from training.model_card import card_info, write_model_card
from training.networks import (
    DepthNet,
    GuidedTwoFrameNet,
    RefineNet,
    TwoFrameDepthNet,
    model_config,
)
from training.predictors import add_guided_arguments
from training.quantize import (
    CALIBRATION_METHODS,
    DEFAULT_CALIBRATION_FRAMES,
    DEFAULT_CALIBRATION_METHOD,
    QuantizeError,
    calibration_frames,
    calibration_sources,
    depth_difference,
    image_batch,
    quantization_name,
    quantize_model,
)

FP32_TOLERANCE = 1e-3
FP16_TOLERANCE = 2e-2  # half precision: ~1e-3 per op, accumulated through the network
# A guided model's argmin over near-equal costs may fall the other way in ONNX Runtime (0.003 % of the
# pixels of a trained model's held-out frames): the parity leaves out this share of the searched
# pixels, the worst.
GUIDED_PARITY_SHARE = 1e-4
# int8 vs fp32, median relative depth difference: a few percent is int8's expected error; ten is a
# broken calibration (wrong frames, a saturating kernel) rather than quantization noise.
INT8_MEDIAN_TOLERANCE = 0.10


class ExportError(RuntimeError):
    """An export that failed its checks (message says which)."""


class DepthExportWrapper(nn.Module):
    """image [N,3,H,W] in [0,1] -> depth [N,1,H,W] float32, optionally computing in fp16."""

    def __init__(self, net: DepthNet, fp16: bool = False) -> None:
        super().__init__()
        self.net = net.half() if fp16 else net
        self.fp16 = fp16

    def forward(self, image: Tensor) -> Tensor:
        x = image.half() if self.fp16 else image
        disp = self.net(x)[("disp", 0)].float()
        # disp_to_depth in float32 even for fp16: 1/x near max_depth is where half precision hurts.
        return disp_to_depth(disp, self.net.min_depth, self.net.max_depth)[1]


def count_flops(model: nn.Module, example: Tensor | tuple[Tensor, ...]) -> dict[str, float]:
    """Multiply-accumulates of conv and linear layers for one forward pass of ``example`` (batch 1;
    a tuple for a model of several inputs).

    Returned as {"macs": ..., "flops": 2 * macs}; element-wise ops (BN, activations, pads) are left
    out, as is usual for reported FLOPs.
    """
    macs = 0

    def conv_hook(module: nn.Conv2d, _inputs: tuple, output: Tensor) -> None:
        nonlocal macs
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        macs += output[0].numel() * k

    def linear_hook(module: nn.Linear, _inputs: tuple, output: Tensor) -> None:
        nonlocal macs
        macs += output[0].numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    examples = example if isinstance(example, tuple) else (example,)
    try:
        with torch.no_grad():
            model(*(x[:1] for x in examples))
    finally:
        for h in handles:
            h.remove()
    return {"macs": float(macs), "flops": 2.0 * macs}


def git_commit(repo: Path | None = None) -> str | None:
    """Short commit hash of the repository holding this file (``-dirty`` if modified), or None."""
    repo = repo or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip() + ("-dirty" if status.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _training_mode(ckpt: Mapping[str, Any]) -> str:
    # Explicit records win over inference from the config: the trainer knows whether batches
    # really carried distances / depth.
    if ckpt.get("training_mode"):
        return str(ckpt["training_mode"])
    config = ckpt["config"]
    used_velocity = ckpt.get("used_velocity")
    return infer_training_mode(config, None if used_velocity is None else bool(used_velocity))


def _source_summary(ckpt: Mapping[str, Any], checkpoint_path: Path, commit: str | None) -> str:
    config = ckpt["config"]
    data = config.get("data", {}) or {}
    summary = {
        "checkpoint": checkpoint_path.name,
        "epoch": ckpt.get("epoch"),
        "step": ckpt.get("global_step", ckpt.get("step")),
        "commit": commit,
        "data": {
            k: data.get(k) for k in ("source", "root", "split", "drives", "height", "width") if k in data
        },
        "model": {k: v for k, v in (config.get("model") or {}).items() if k != "weights"},
        "loss": config.get("loss") or {},
        "train": {
            k: v
            for k, v in (config.get("train") or {}).items()
            if k in ("batch_size", "epochs", "lr", "max_steps")
        },
    }
    return json.dumps(summary, sort_keys=True, default=str)


def _torch_onnx_export(
    wrapper: nn.Module, example: Tensor | tuple[Tensor, ...], out_path: Path, opset: int, dynamic_batch: bool
) -> None:
    """torch.onnx.export, the TorchScript-based exporter first (it honours opset 17 exactly),
    the dynamo exporter as a fallback. ``example``: the image, or (image, prev_image) for a
    two-frame model."""
    examples = example if isinstance(example, tuple) else (example,)
    input_names = ["image", "prev_image"][: len(examples)]
    dynamic_axes = {name: {0: "batch"} for name in [*input_names, "depth"]} if dynamic_batch else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                examples,
                str(out_path),
                input_names=input_names,
                output_names=["depth"],
                opset_version=opset,
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
                dynamo=False,
            )
        return
    except OSError:  # writing failed (a full disk): the dynamo exporter would fail the same way
        raise
    except Exception as exc:  # the legacy exporter may be gone in a later torch: try dynamo
        legacy_error = exc
    batch_dim = torch.export.Dim("batch", min=1, max=64)
    dynamic_shapes = tuple({0: batch_dim} for _ in examples) if dynamic_batch else None
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper,
                examples,
                input_names=input_names,
                output_names=["depth"],
                opset_version=opset,
                dynamic_shapes=dynamic_shapes,
                dynamo=True,
                external_data=False,
            )
            program.save(str(out_path), external_data=False)
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed (legacy: {legacy_error}; dynamo: {exc})") from exc


def _session(path: Path, threads: int = 0):  # -> onnxruntime.InferenceSession
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def parity_check(
    net: DepthNet | TwoFrameDepthNet | GuidedTwoFrameNet,
    onnx_path: Path,
    height: int,
    width: int,
    batch: int = 1,
    seed: int = 0,
    ignore_share: float = 0.0,
) -> float:
    """Max relative error |onnx - torch| / torch of depth over a random and a smooth test image (a
    two-frame model gets each as the current frame, with it shifted by 3 pixels as the previous).
    ``ignore_share``: that share of each image's pixels, the worst, is left out (a guided model's
    argmin over near-equal costs may fall the other way in ONNX Runtime's arithmetic)."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(batch, 3, height, width, generator=gen)
    # A smooth gradient image as well: random noise alone is not what the network sees in use.
    ramp = torch.linspace(0, 1, width).view(1, 1, 1, width).expand(batch, 3, height, width).contiguous()
    session = _session(onnx_path)
    two_frame = isinstance(net, (TwoFrameDepthNet, GuidedTwoFrameNet))
    worst = 0.0
    for image in (noise, ramp):
        feed = {"image": image}
        if two_frame:
            feed["prev_image"] = torch.roll(image, shifts=3, dims=-1)
        with torch.no_grad():
            ref = net(**feed) if two_frame else net.predict_depth(image)
        got = session.run(["depth"], {name: x.numpy() for name, x in feed.items()})[0]
        ref = ref.numpy()
        if got.shape != ref.shape or got.dtype != np.float32:
            raise ExportError(f"ONNX output {got.shape} {got.dtype} != expected {ref.shape} float32")
        error = np.abs(got - ref) / np.abs(ref)
        worst = max(worst, float(np.quantile(error, 1.0 - ignore_share) if ignore_share else error.max()))
    return worst


def measure_latencies(
    onnx_paths: Sequence[Path], height: int, width: int, runs: int = 10, threads: int = 0, rounds: int = 2
) -> list[float]:
    """Median ONNX Runtime CPU latency in milliseconds for one image, per model.

    The models take turns in blocks (``rounds`` of ``runs / rounds`` runs each, after one warm-up
    run), so a shared CPU's changing load hits them alike; only one session is alive at a time,
    because an idle session's spinning thread pool slows the one being timed (measured: a
    ResNet18 at 320x96 took 67 ms run by run beside an int8 session, 37 ms alone).
    """
    image = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    times: list[list[float]] = [[] for _ in onnx_paths]
    per_round = max(1, runs // max(1, rounds))
    for _ in range(max(1, rounds)):
        for path, record in zip(onnx_paths, times, strict=True):
            session = _session(path, threads)
            feed = {tensor.name: image for tensor in session.get_inputs()}  # a two-frame model: both
            session.run(["depth"], feed)
            for _ in range(per_round):
                start = time.perf_counter()
                session.run(["depth"], feed)
                record.append(time.perf_counter() - start)
            del session
    return [1000.0 * statistics.median(record) for record in times]


def measure_latency(onnx_path: Path, height: int, width: int, runs: int = 10, threads: int = 0) -> float:
    """Median ONNX Runtime CPU latency in milliseconds for one image (after one warm-up run)."""
    return measure_latencies([onnx_path], height, width, runs, threads)[0]


def cpu_name() -> str:
    """The CPU's model name and vector extensions, e.g. "AMD EPYC (AVX2, no VNNI)": int8's speed-up
    hangs on them (VNNI's dot products), so the card says where its latencies were measured."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
    vnni = "VNNI" if flags & {"avx512_vnni", "avx_vnni"} else "no VNNI"
    name = fields.get("model name") or platform.machine()
    return f"{name} ({vector}, {vnni})" if vector else name


def _metadata(
    ckpt: Mapping[str, Any],
    checkpoint_path: Path,
    out_path: Path,
    model_cfg: Mapping[str, Any],
    fp16: bool,
    commit: str | None,
) -> dict[str, str]:
    """The ONNX model's ``metadata_props`` (DESIGN.md, "ONNX model")."""
    data = ckpt["config"].get("data") or {}
    mode = _training_mode(ckpt)
    return {
        "input_height": str(int(data["height"])),
        "input_width": str(int(data["width"])),
        "min_depth": repr(float(model_cfg["min_depth"])),
        "max_depth": repr(float(model_cfg["max_depth"])),
        "metric_scale": "1.0",
        "scale_is_metric": "true" if mode in METRIC_TRAINING_MODES else "false",
        "backbone": str(model_cfg["backbone"]),
        "decoder": str(model_cfg.get("decoder", "monodepth2")),
        "training_mode": mode,
        "source": _source_summary(ckpt, checkpoint_path, commit),
        "name": out_path.stem,
        "precision": "fp16" if fp16 else "fp32",
    }


def guided_metadata(model: GuidedTwoFrameNet) -> dict[str, str]:
    """A guided two-frame model's extra ``metadata_props``: ``frames=2`` and ``guided``, its search (the
    prior, the camera normalised by image size, the hypotheses, the window, the search's width)."""
    search = {
        "prior": "single_frame" if model.student is None else "student",
        "intrinsics": list(model.intrinsics),
        "ratio": model.ratio,
        "count": model.count,
        "window": model.window,
        "min_parallax": model.min_parallax,
        "automask": model.automask,
        "search_factor": model.search_factor,
    }
    return {"frames": "2", "guided": json.dumps(search)}


def two_frame_metadata(model: TwoFrameDepthNet) -> dict[str, str]:
    """A two-frame model's extra ``metadata_props``: ``frames=2``, the cost volume's intrinsics
    (normalised by image size: fx/W, fy/H, cx/W, cy/H), its depth hypotheses and, for a motion-aware
    model, its motion search; ``student=refine`` for a refining student."""
    net = model.net
    bins = {
        "count": net.num_depth_bins,
        "binning": net.depth_binning,
        "min": float(net.min_depth_bin),
        "max": float(net.max_depth_bin),
    }
    metadata = {
        "frames": "2",
        "cost_volume_intrinsics": json.dumps([float(v) for v in net.intrinsics]),
        "depth_bins": json.dumps(bins),
    }
    if net.matching_source != "features":  # Manydepth's learnt features are the default
        metadata["matching_source"] = net.matching_source
    if isinstance(net, RefineNet):  # the teacher's depth refined, the teacher inside the graph
        metadata["student"] = "refine"
    if net.motion_aware:  # Manydepth2's compensation, with the teacher inside the graph
        motion = {"search_radius": net.motion_search_radius, "threshold_px": net.motion_threshold}
        metadata["motion_aware"] = json.dumps(motion)
    return metadata


def _write_metadata(onnx_file: Path, out_path: Path, metadata: Mapping[str, str]) -> None:
    """Replace the metadata of the model in ``onnx_file`` (to become ``out_path``), run ``onnx.checker``
    (full check) and save it."""
    import onnx

    model = onnx.load(str(onnx_file))
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = f"depth_node monocular depth ({metadata['backbone']}, {metadata['training_mode']})"
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ExportError(f"{out_path}: onnx.checker failed: {exc}") from exc
    onnx.save(model, str(onnx_file), format="protobuf")


def _checked_parity(
    net: DepthNet | TwoFrameDepthNet | GuidedTwoFrameNet,
    onnx_file: Path,
    out_path: Path,
    height: int,
    width: int,
    fp16: bool,
    dynamic_batch: bool,
    say: Callable,
) -> tuple[float, float]:
    """ONNX Runtime vs PyTorch: (max relative error, the share of pixels left out of it: a guided
    model's flips); ``ExportError`` above the precision's tolerance."""
    share = 0.0
    if isinstance(net, GuidedTwoFrameNet):
        # A search pixel's correction reaches (2 factor)^2 output pixels through the bilinear upsampling.
        factor = net.search_factor
        share = GUIDED_PARITY_SHARE * ((2 * factor) ** 2 if factor > 1 else 1)
    parity = parity_check(net, onnx_file, height, width, batch=2 if dynamic_batch else 1, ignore_share=share)
    tolerance = FP16_TOLERANCE if fp16 else FP32_TOLERANCE
    but = f" (all but the worst {share:.0e} of the pixels)" if share else ""
    say(f"[export] ONNX Runtime vs PyTorch: max relative error{but} {parity:.2e} (limit {tolerance:.0e})")
    if not parity <= tolerance:
        raise ExportError(
            f"{out_path}: parity check failed, max relative error{but} {parity:.2e} > {tolerance:.0e}"
        )
    return parity, share


def _quantized(
    fp32_file: Path,
    onnx_file: Path,
    out_path: Path,
    frames: Sequence[np.ndarray],
    method: str,
    runs: int,
    say: Callable,
) -> dict[str, Any]:
    """Quantize ``fp32_file`` into ``onnx_file`` (to become ``out_path``); depth difference and latency
    of int8 vs fp32 (``ExportError`` above ``INT8_MEDIAN_TOLERANCE``). Returns what the card shows."""
    try:
        quantize_model(fp32_file, onnx_file, frames, calibration_method=method)
    except QuantizeError as exc:
        raise ExportError(f"{out_path}: int8 quantization failed: {exc}") from exc
    recorded = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}["quantization"]
    if recorded != quantization_name(method):
        say(f"[export] {method} calibration could not bin every tensor: activation ranges by MinMax instead")
    diff = depth_difference(fp32_file, onnx_file, (image_batch(frame) for frame in frames))
    say(
        f"[export] int8 vs fp32 on {diff['frames']} calibration frames: relative depth difference "
        f"median {100 * diff['median']:.2f} % (p95 {100 * diff['p95']:.2f} %, "
        f"limit {100 * INT8_MEDIAN_TOLERANCE:.0f} % median)"
    )
    if not diff["median"] <= INT8_MEDIAN_TOLERANCE:
        raise ExportError(
            f"{out_path}: int8 depth differs from fp32 by {100 * diff['median']:.1f} % (median) "
            f"> {100 * INT8_MEDIAN_TOLERANCE:.0f} %"
        )
    height, width = frames[0].shape[:2]
    int8_ms, fp32_ms = measure_latencies([onnx_file, fp32_file], height, width, runs=runs)
    return {
        "precision": "int8",
        "latency_ms": int8_ms,
        "int8": {
            "quantization": recorded,
            "calibration_frames": len(frames),
            "median_relative_difference": diff["median"],
            "p95_relative_difference": diff["p95"],
            "fp32_latency_ms": fp32_ms,
            "speedup": fp32_ms / int8_ms,
        },
    }


def _summary(out_path: Path, info: Mapping[str, Any], card: Path) -> list[str]:
    """The closing lines: size, compute, latency, and whether int8 pays on this CPU."""
    size_mb = out_path.stat().st_size / 1e6
    lines = [
        f"[export] done: {out_path} ({size_mb:.1f} MB, {info['parameters'] / 1e6:.2f} M params, "
        f"{info['flops'] / 1e9:.2f} GFLOPs, CPU {info['latency_ms']:.1f} ms), card {card}"
    ]
    int8 = info.get("int8")
    if int8:
        lines.append(
            f"[export] CPU latency int8 {info['latency_ms']:.1f} ms vs fp32 "
            f"{int8['fp32_latency_ms']:.1f} ms: x{int8['speedup']:.2f} ({info['cpu']})"
        )
        if int8["speedup"] < 1.0:
            lines.append("[export] int8 does not pay on this CPU: ship the fp32 export (no --int8)")
    return lines


def export_onnx(
    checkpoint_path: str | Path,
    out_path: str | Path,
    fp16: bool = False,
    dynamic_batch: bool = False,
    opset: int = 17,
    metrics: Mapping[str, Any] | None = None,
    latency_runs: int = 10,
    verbose: bool = True,
    int8: bool = False,
    calibration: Sequence[str | Path] = (),
    calibration_count: int = DEFAULT_CALIBRATION_FRAMES,
    calibration_method: str = DEFAULT_CALIBRATION_METHOD,
    guided: str | None = None,
    intrinsics: Sequence[float] | None = None,
) -> Path:
    """Export the checkpoint's DepthNet to ``out_path`` (+ ``<name>.md`` model card); returns the path.

    A multi-frame checkpoint exports its two-frame student. ``guided`` (a prior of ``GUIDED_PRIORS``):
    the guided two-frame model instead (``training.checkpoint.guided_net_from_checkpoint``, with
    ``intrinsics`` where the checkpoint records no camera).

    ``int8``: ``out_path`` gets the int8 model, calibrated on ``calibration_count`` frames spread
    over ``calibration`` (KITTI drives, folders of drives, rosbag2s), activation ranges by
    ``calibration_method`` (``training.quantize.CALIBRATION_METHODS``); its card holds the depth
    difference to fp32 and both latencies. ``ExportError`` when that difference's median is above 10 %.

    Both files are written to temporary siblings and replace the old ones only when everything
    passed (``depth_node.files``): a failed export or a full disk (``WriteError``) leaves them as they
    were. Raises ``ExportError`` when the checker or the parity check fails (fp32: max relative error
    above 1e-3; fp16: above 2e-2). ``metrics`` (e.g. KITTI Eigen results) go into the model card;
    without them, ``checkpoint["metrics"]`` is used when present.
    """
    # Long: load, export, check, compare with PyTorch, write metadata and card: one pass, in order.

    def say(msg: str) -> None:
        if verbose:
            print(msg, flush=True)

    if int8 and fp16:
        raise ValueError("int8 export excludes fp16 (int8 runs on CPUs, fp16 on GPUs)")
    if int8 and not calibration:
        raise ValueError("int8 export needs calibration paths (KITTI drives or rosbag2 recordings)")
    checkpoint_path, out_path = Path(checkpoint_path), Path(out_path)
    ckpt = load_checkpoint(checkpoint_path)
    config = ckpt["config"]
    data = config.get("data") or {}
    height, width = int(data["height"]), int(data["width"])
    model_cfg = model_config(config.get("model"))
    two_frame = bool(model_cfg.get("multi_frame")) or guided is not None
    if two_frame and (fp16 or int8):
        raise ValueError(
            f"{checkpoint_path}: a two-frame (multi-frame or guided) model exports in fp32 only for now"
        )
    if guided is not None:
        net = guided_net_from_checkpoint(ckpt, intrinsics, guided)
    else:
        net = two_frame_net_from_checkpoint(ckpt) if two_frame else depth_net_from_checkpoint(ckpt)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Before writing: exporting over a tracked model (models/*.onnx) would itself make the tree dirty.
    commit = git_commit()

    # Before the export: a wrong calibration path should not cost a whole export first.
    frames = calibration_frames(calibration, calibration_count, height, width) if int8 else []
    say(
        f"[export] {checkpoint_path} -> {out_path} ({model_cfg['backbone']}, {height}x{width}, "
        f"{'int8' if int8 else 'fp16' if fp16 else 'fp32'}{', dynamic batch' if dynamic_batch else ''})"
    )
    # Export from a copy: .half() is in place and the fp32 net is the parity reference.
    wrapper = net if two_frame else DepthExportWrapper(depth_net_from_checkpoint(ckpt), fp16=fp16).eval()
    example = torch.rand(1, 3, height, width)
    # Two distinct tensors: the dynamo exporter merges an input passed twice into one.
    examples = (example, torch.rand(1, 3, height, width)) if two_frame else example
    card = out_path.with_suffix(".md")
    with atomic_path(out_path) as onnx_file, tempfile.TemporaryDirectory(prefix="depth-export-") as tmp:
        # int8: the fp32 model is an intermediate (the quantizer's input and the reference).
        fp32_file = Path(tmp) / "fp32.onnx" if int8 else onnx_file
        _torch_onnx_export(wrapper, examples, fp32_file, opset, dynamic_batch)

        metadata = _metadata(ckpt, checkpoint_path, out_path, model_cfg, fp16, commit)
        if isinstance(net, TwoFrameDepthNet):
            metadata.update(two_frame_metadata(net))
        elif isinstance(net, GuidedTwoFrameNet):
            metadata.update(guided_metadata(net))
        _write_metadata(fp32_file, out_path, metadata)
        say(
            f"[export] onnx.checker passed; opset {opset}; metadata: "
            f"training_mode={metadata['training_mode']}, scale_is_metric={metadata['scale_is_metric']}"
        )

        parity, left_out = _checked_parity(net, fp32_file, out_path, height, width, fp16, dynamic_batch, say)
        measured = {
            "fp16": fp16,
            "dynamic_batch": dynamic_batch,
            "parameters": sum(p.numel() for p in net.parameters()),
            **count_flops(net, examples),
            "parity": parity,
            "parity_left_out": left_out,
            "opset": opset,
            "commit": commit,
            "cpu": cpu_name(),
        }
        if int8:
            measured.update(
                _quantized(fp32_file, onnx_file, out_path, frames, calibration_method, latency_runs, say)
            )
        else:
            measured["latency_ms"] = measure_latency(onnx_file, height, width, runs=latency_runs)
        info = card_info(ckpt, checkpoint_path, out_path, metadata, model_cfg, measured, metrics)
        # The card goes in place just before the model: a failure before leaves both as they were.
        with atomic_path(card) as card_file:
            write_model_card(card_file, info, config)
    for line in _summary(out_path, info, card):
        say(line)
    return out_path


def _usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the int8 options, in one line (checked before any work), or None."""
    if args.int8 and args.fp16:
        return "--int8 and --fp16 exclude each other (int8 runs on CPUs, fp16 on GPUs)"
    if args.int8 and not args.calibration:
        return "--int8 needs --calibration PATH [PATH ...] (KITTI drives or rosbag2 recordings)"
    if args.calibration and not args.int8:
        return "--calibration is only used with --int8"
    if args.calibration_frames < 1:
        return f"--calibration-frames must be at least 1, got {args.calibration_frames}"
    if args.int8:
        try:
            calibration_sources(args.calibration)
        except (FileNotFoundError, QuantizeError) as exc:
            return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="depth-export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="training checkpoint (.pt) from depth-train")
    parser.add_argument(
        "--out", required=True, help="output .onnx path (a model card .md is written beside it)"
    )
    parser.add_argument("--fp16", action="store_true", help="compute in fp16 inside (float32 input/output)")
    parser.add_argument(
        "--int8",
        action="store_true",
        help="static int8 for CPUs (head and depth in float); needs --calibration",
    )
    parser.add_argument(
        "--calibration",
        nargs="+",
        metavar="PATH",
        help="KITTI drives (or folders of drives) and/or rosbag2 recordings to calibrate int8 on",
    )
    parser.add_argument(
        "--calibration-frames",
        type=int,
        default=DEFAULT_CALIBRATION_FRAMES,
        help="frames to calibrate on, evenly spread",
    )
    parser.add_argument(
        "--calibration-method",
        choices=tuple(CALIBRATION_METHODS),
        default=DEFAULT_CALIBRATION_METHOD,
        help="how int8 activation ranges are set (percentile: 99.999 %%; see training/quantize.py)",
    )
    add_guided_arguments(parser, "--checkpoint")
    parser.add_argument("--dynamic-batch", action="store_true", help="dynamic batch dimension")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--metrics", help="JSON file of evaluation metrics to put into the model card")
    parser.add_argument("--latency-runs", type=int, default=10)
    args = parser.parse_args(argv)
    problem = _usage_error(args)
    if problem:
        print(f"depth-export: error: {problem}", file=sys.stderr)
        return 2
    metrics = None
    if args.metrics:
        metrics = json.loads(Path(args.metrics).read_text())
    try:
        export_onnx(
            args.checkpoint,
            args.out,
            fp16=args.fp16,
            dynamic_batch=args.dynamic_batch,
            opset=args.opset,
            metrics=metrics,
            latency_runs=args.latency_runs,
            int8=args.int8,
            calibration=args.calibration or (),
            calibration_count=args.calibration_frames,
            calibration_method=args.calibration_method,
            guided=args.guided,
            intrinsics=args.intrinsics,
        )
    except (ExportError, QuantizeError, FileNotFoundError, ValueError, KeyError, WriteError) as exc:
        print(f"depth-export: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
