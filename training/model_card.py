"""The model card ``<name>.md`` that ``depth-export`` writes beside each ONNX model.

What the model is (backbone, input/output contract, precision, size, compute), how it was checked
(ONNX Runtime parity, CPU latency), where it came from (checkpoint, commit, command, the full
training configuration) and how well it does (depth-eval's metrics, when recorded).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from depth_node.metrics import METRIC_NAMES


def card_info(
    ckpt: Mapping[str, Any],
    checkpoint_path: Path,
    out_path: Path,
    metadata: Mapping[str, str],
    model_cfg: Mapping[str, Any],
    measured: Mapping[str, Any],
    metrics: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """What the model card shows; ``measured``: fp16, dynamic_batch, parameters, macs, flops,
    parity, latency_ms, opset, commit, and optionally parity_left_out (the share of pixels the parity
    leaves out), precision, cpu and int8 (the quantization, its depth difference to fp32 and fp32's
    latency)."""
    train_cfg = ckpt["config"].get("train") or {}
    command = ckpt.get("command") or train_cfg.get("command") or "not recorded (see the configuration below)"
    return {
        "name": out_path.stem,
        "file": out_path.name,
        "backbone": model_cfg["backbone"],
        "decoder": model_cfg.get("decoder", "monodepth2"),
        "batch": "N" if measured["dynamic_batch"] else 1,
        "height": int(metadata["input_height"]),
        "width": int(metadata["input_width"]),
        "min_depth": model_cfg["min_depth"],
        "max_depth": model_cfg["max_depth"],
        "fp16": measured["fp16"],
        "precision": measured.get("precision") or ("fp16" if measured["fp16"] else "fp32"),
        "int8": measured.get("int8"),
        "cpu": measured.get("cpu"),
        "parameters": measured["parameters"],
        "macs": measured["macs"],
        "flops": measured["flops"],
        "training_mode": metadata["training_mode"],
        "metric_scale": 1.0,
        "scale_is_metric": metadata["scale_is_metric"],
        "parity": measured["parity"],
        "parity_left_out": measured.get("parity_left_out", 0.0),
        "latency_ms": measured["latency_ms"],
        "opset": measured["opset"],
        "commit": measured["commit"],
        **two_frame_info(metadata),
        "checkpoint": checkpoint_path.name,
        "epoch": ckpt.get("epoch"),
        "step": ckpt.get("global_step", ckpt.get("step")),
        "command": " ".join(command) if isinstance(command, list) else command,
        "metrics": dict(metrics) if metrics else ckpt.get("metrics"),
    }


def two_frame_info(metadata: Mapping[str, str]) -> dict[str, Any]:
    """``frames`` (1 or 2) and, for a two-frame model, its cost volume's ``cost_volume_intrinsics``
    (fx/W, fy/H, cx/W, cy/H), ``depth_bins`` (count, binning, min, max), ``student`` (encoder or
    refine), ``matching_source`` (features or image) and, if motion-aware, ``motion_aware``
    (search_radius, threshold_px), from the export's metadata; for a guided model, ``guided`` (its
    search, ``training.export.guided_metadata``) instead of the cost volume's."""
    if metadata.get("frames", "1") != "2":
        return {"frames": 1}
    if "guided" in metadata:  # training.networks.guided: no cost volume
        return {"frames": 2, "guided": json.loads(metadata["guided"])}
    info = {
        "frames": 2,
        "cost_volume_intrinsics": json.loads(metadata["cost_volume_intrinsics"]),
        "depth_bins": json.loads(metadata["depth_bins"]),
    }
    if "motion_aware" in metadata:
        info["motion_aware"] = json.loads(metadata["motion_aware"])
    info["student"] = metadata.get("student", "encoder")
    info["matching_source"] = metadata.get("matching_source", "features")
    return info


def _input_rows(info: Mapping[str, Any]) -> list[str]:
    """The input row(s): one image, or a two-frame model's two and its cost volume's geometry."""
    shape = f"float32 [{info['batch']},3,{info['height']},{info['width']}] RGB in [0,1]"
    if info.get("frames", 1) != 2:
        return [f"| input | `image` {shape} |"]
    inputs = (
        f"| inputs | `image` {shape}; `prev_image` the same, the previous frame (the current frame again "
        "on the first frame and after a reset) |"
    )
    if "guided" in info:
        return [inputs, *_guided_rows(info["guided"])]
    fx, fy, cx, cy = info["cost_volume_intrinsics"]
    bins = info["depth_bins"]
    rows = [
        inputs,
        f"| cost volume intrinsics | fx/W {fx:.4f}, fy/H {fy:.4f}, cx/W {cx:.4f}, cy/H {cy:.4f} (normalised "
        "by image size; a camera whose normalised intrinsics differ needs its own export) |",
        f"| depth hypotheses | {bins['count']} ({bins['binning']}) from {bins['min']:.3g} to "
        f"{bins['max']:.3g} model units (learnt in training) |",
    ]
    if info.get("matching_source") == "image":
        rows.append(
            "| matching | the frames themselves (normalised RGB), averaged over 4x4-pixel patches at twice "
            "the matching grid's size |"
        )
    if info.get("student") == "refine":
        rows.append(
            "| student | refines its single-frame teacher's disparity from the cost volume; the teacher runs "
            "inside the model |"
        )
    motion = info.get("motion_aware")
    if motion:
        rows.append(
            f"| motion-aware matching | Manydepth2's: pixels whose best match lies more than "
            f"{motion['threshold_px']:g} px off the teacher's static flow (searched within "
            f"{motion['search_radius']} px of the matching grid) are matched where they moved; the teacher "
            "runs inside the model |"
        )
    return rows


def _guided_rows(search: Mapping[str, Any]) -> list[str]:
    """A guided model's search (``training.networks.guided``), from its metadata."""
    fx, fy, cx, cy = search["intrinsics"]
    prior = "its multi-frame student's depth" if search["prior"] == "student" else "the single-frame depth"
    factor = search["search_factor"]
    pooled = f" on frames average-pooled {factor}x, the correction upsampled" if factor > 1 else ""
    return [
        f"| matching | guided: {search['count']} depths per pixel from / {search['ratio']:g} to x "
        f"{search['ratio']:g} {prior}, RGB block matching in a {search['window']}x{search['window']} box"
        f"{pooled}; the output is the geometric mean of the prior and the best match; the prior stays where "
        f"the depths land under {search['min_parallax']:g} px apart"
        f"{' or the previous frame matches better unmoved' if search['automask'] else ''} |",
        f"| matching intrinsics | fx/W {fx:.4f}, fy/H {fy:.4f}, cx/W {cx:.4f}, cy/H {cy:.4f} (normalised "
        "by image size; a camera whose normalised intrinsics differ needs its own export) |",
    ]


def _is_metric_row(value: Any) -> bool:
    return isinstance(value, Mapping) and all(name in value for name in METRIC_NAMES)


def _metrics_markdown(metrics: Mapping[str, Any]) -> list[str]:
    """Markdown for depth-eval's metrics: one table per group of metric rows (model, baselines),
    nested groups (``regions / moving``) named by their path, then every remaining scalar, nested
    ones included (``scale_ratio / median``), in one key/value table."""
    lines: list[str] = []
    scalars: list[tuple[str, Any]] = []

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, Mapping) and value and all(_is_metric_row(row) for row in value.values()):
                lines.extend([f"{name}:", "", "| | " + " | ".join(METRIC_NAMES) + " |"])
                lines.append("| --- " * (len(METRIC_NAMES) + 1) + "|")
                for label, row in value.items():
                    lines.append(f"| {label} | " + " | ".join(f"{row[n]:.4f}" for n in METRIC_NAMES) + " |")
                lines.append("")
            elif isinstance(value, Mapping) and value:
                walk(value, f"{name} / ")
            else:
                scalars.append((name, value))

    walk(metrics, "")
    if scalars:
        lines += ["| entry | value |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in scalars]
    return lines


def _precision_rows(info: Mapping[str, Any]) -> list[str]:
    """Precision, parity and CPU latency rows; an int8 model also shows fp32's latency beside its own."""
    precision = info.get("precision") or ("fp16" if info["fp16"] else "fp32")
    cpu = f" ({info['cpu']})" if info.get("cpu") else ""
    left_out = info.get("parity_left_out") or 0.0
    but = f" (all but the worst {100 * left_out:.2g} % of the pixels: argmins over near-equal costs)"
    parity = f"| ONNX Runtime parity | max relative error {info['parity']:.2e}{but if left_out else ''} |"
    int8 = info.get("int8")
    if precision != "int8" or not int8:
        text = {"fp16": "fp16 inside, float32 interface"}.get(precision, precision)
        latency = f"| CPU latency (ONNX Runtime) | {info['latency_ms']:.1f} ms median, batch 1{cpu} |"
        return [f"| precision | {text} |", parity, latency]
    median, p95 = 100 * int8["median_relative_difference"], 100 * int8["p95_relative_difference"]
    return [
        f"| precision | int8 (`{int8['quantization']}`, calibrated on {int8['calibration_frames']} frames); "
        "disparity head, sigmoid and depth conversion in float; float32 interface |",
        parity.replace("parity |", "parity (fp32 export) |"),
        f"| int8 vs fp32 | relative depth difference median {median:.2f} %, p95 {p95:.2f} % "
        "(calibration frames) |",
        f"| CPU latency (ONNX Runtime) | int8 {info['latency_ms']:.1f} ms, "
        f"fp32 {int8['fp32_latency_ms']:.1f} ms median, batch 1, "
        f"measured side by side: x{int8['speedup']:.2f}{cpu} |",
    ]


def write_model_card(path: Path, info: Mapping[str, Any], config: Mapping[str, Any]) -> Path:
    """Markdown model card beside the ONNX file."""
    metrics = info.get("metrics") or {}
    lines = [
        f"# {info['name']}",
        "",
        f"Monocular depth network exported by `depth-export` (`{info['file']}`).",
        "",
        "| property | value |",
        "| --- | --- |",
        f"| backbone | {info['backbone']} (decoder: {info.get('decoder', 'monodepth2')}) |",
        *_input_rows(info),
        f"| output | `depth` float32 [{info['batch']},1,{info['height']},{info['width']}], "
        f"{info['min_depth']}..{info['max_depth']} model units |",
        f"| parameters | {info['parameters'] / 1e6:.2f} M |",
        f"| compute | {info['macs'] / 1e9:.2f} GMAC ({info['flops'] / 1e9:.2f} GFLOPs), conv + linear |",
        f"| training mode | {info['training_mode']} |",
        f"| metric scale | {info['metric_scale']} (scale is metric: {info['scale_is_metric']}) |",
        *_precision_rows(info),
        f"| opset | {info['opset']} |",
        f"| source commit | {info['commit'] or 'unknown'} |",
        "",
        "## Training",
        "",
        f"- data: {json.dumps((config.get('data') or {}).get('source'))}, root "
        f"`{(config.get('data') or {}).get('root')}`, split `{(config.get('data') or {}).get('split')}`, "
        f"modality {(config.get('data') or {}).get('modality', 'M')} (M: video, S: stereo pairs, MS: both)",
        f"- checkpoint: `{info['checkpoint']}` (epoch {info['epoch']}, step {info['step']})",
        f"- command: `{info['command']}`",
        "",
        "## Metrics",
        "",
    ]
    if metrics:
        lines += _metrics_markdown(metrics)
    else:
        lines.append("No evaluation metrics were recorded with this checkpoint.")
    lines += [
        "",
        "## Full training configuration",
        "",
        "```yaml",
        yaml.safe_dump(dict(config), sort_keys=False).rstrip(),
        "```",
        "",
    ]
    path.write_text("\n".join(lines))
    return path
