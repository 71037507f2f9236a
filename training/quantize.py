"""Static int8 quantization of an exported fp32 depth model (issue 14; DESIGN.md, "Precision per provider").

ONNX Runtime's QDQ format: int8 weights, symmetric and per output channel; uint8 activations whose
ranges are calibrated (Percentile, below) on real camera frames, resized to the model's input size. Every node
from the disparity head on (its convolution, the sigmoid, the ``disp_to_depth`` arithmetic) stays
in float: depth is ``1 / disparity``, so 8-bit disparity codes would leave the far range a handful
of depth values. Those nodes are found by walking back from the ``depth`` output (``float_tail``),
whatever the exporter named them.

Why these settings (trained stdc1 / resnet18 models at 320x96, 30 held-out frames, AVX2 CPU):
uint8 activations run on MLAS's u8s8 kernels, which beat fp32, while int8 activations (s8s8) ran
slower than fp32. Without VNNI (AVX2, AVX-512F) the u8s8 kernels add pairs of u8*s8 products in
int16, which saturates: with full 8-bit weights stdc1's depth was off by 46 % at the 95th
percentile. ``reduce_range`` (7-bit weights) avoids it and matched s8s8's error (1.4 % median); a
VNNI CPU loses nothing measurable by it, so one file serves both.

Activation ranges (``CALIBRATION_METHODS``): Percentile (99.999 %, ONNX Runtime's default) unless
asked otherwise. On four trained STDC1 models (320x96 and 640x192, Monodepth2 and slim decoders;
held-out median-scaled abs_rel, int8 / fp32) MinMax gave +2.5, -1.2, +1.6 and -0.1 %, Percentile
+0.3, -0.8, +1.4 and +1.3 %: the same on average, and a worst case of 1.4 % instead of 2.5 %. MinMax
lets a few outlier activations set a tensor's range and spend its 256 codes on them. Entropy gave
MinMax's numbers. Percentile takes about five times as long to calibrate (1.5 min for 64 frames at
640x192).

Calibration frames come from KITTI-layout drives (a drive folder, or a folder holding drives) or
from rosbag2 recordings, evenly spread over all of them (``calibration_frames``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from depth_node.files import atomic_path
from training.datasets.common import resize_image

DEFAULT_CALIBRATION_FRAMES = 64
# How activation ranges are calibrated (``--calibration-method``); see the module doc for the default.
CALIBRATION_METHODS = {
    "percentile": CalibrationMethod.Percentile,
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
}
DEFAULT_CALIBRATION_METHOD = "percentile"


def quantization_name(method: str) -> str:
    """Recorded in the model's metadata (``quantization``) and card: format, weights, activations, ranges."""
    return f"qdq-u8s8-per-channel-reduce-range-{method}"


# Ops whose weights make them "the head": the walk back from ``depth`` stops at the first of these.
_WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
# Pure data movement between the head's convolution and the features it reads (the reflection pad):
# kept float as well, or the quantizer would hand the head an 8-bit (QDQ) input.
_DATA_MOVEMENT_OPS = frozenset({"Pad", "Identity", "Reshape", "Transpose", "Squeeze", "Unsqueeze"})
_FLOAT_TYPES = frozenset({onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16})


class QuantizeError(RuntimeError):
    """A model or calibration source that cannot be quantized (message names it)."""


# ---------------------------------------------------------------------------------------------
# Which nodes stay float


def _tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    graph = onnx.shape_inference.infer_shapes(model).graph
    infos = [*graph.value_info, *graph.input, *graph.output]
    return {info.name: info.type.tensor_type.elem_type for info in infos}


def _head_input_pads(conv: onnx.NodeProto, producers: dict[str, onnx.NodeProto]) -> list[onnx.NodeProto]:
    """The data-movement nodes (the reflection pad) between a head convolution and its features."""
    pads = []
    node = producers.get(conv.input[0])
    while node is not None and node.op_type in _DATA_MOVEMENT_OPS:
        pads.append(node)
        node = producers.get(node.input[0])
    return pads


def float_tail(model: onnx.ModelProto, output: str = "depth") -> list[str]:
    """Names of the nodes from the disparity head(s) to ``output``: everything on a float path back
    from ``output`` down to and including the first weighted op (Conv, ...) and the pads feeding it.

    Integer side inputs (a Pad's pad widths, shapes) are not followed: they lead back into the
    network without carrying its values. ``QuantizeError`` when a path reaches a graph input
    without passing a weighted op (then there is no head to keep apart), or a node has no name.
    """
    producers = {out: node for node in model.graph.node for out in node.output}
    if output not in producers:
        raise QuantizeError(f"model has no output {output!r} produced by a node")
    types = _tensor_types(model)
    graph_inputs = {i.name for i in model.graph.input} - {t.name for t in model.graph.initializer}
    tail: dict[str, onnx.NodeProto] = {}
    stack = [producers[output]]
    while stack:
        node = stack.pop()
        if node.name in tail:
            continue
        if not node.name:
            raise QuantizeError(f"node {node.op_type} -> {list(node.output)} has no name to exclude it by")
        tail[node.name] = node
        if node.op_type in _WEIGHTED_OPS:  # a head: keep its input pads, go no further
            tail.update((pad.name, pad) for pad in _head_input_pads(node, producers))
            continue
        for name in node.input:
            if name in graph_inputs:
                raise QuantizeError(f"no convolution between input {name!r} and output {output!r}")
            if name in producers and types.get(name, onnx.TensorProto.FLOAT) in _FLOAT_TYPES:
                stack.append(producers[name])
    return [node.name for node in model.graph.node if node.name in tail]


# ---------------------------------------------------------------------------------------------
# Calibration frames


def model_input_size(model: onnx.ModelProto, where: str = "model") -> tuple[int, int]:
    """(height, width) from the model's ``input_height`` / ``input_width`` metadata."""
    meta = {p.key: p.value for p in model.metadata_props}
    try:
        return int(meta["input_height"]), int(meta["input_width"])
    except (KeyError, ValueError):
        raise QuantizeError(f"{where}: metadata_props lack integer input_height / input_width") from None


def image_batch(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H,W,3) at the model's size -> float32 [1,3,H,W] in [0,1] (the ``image`` input)."""
    return np.ascontiguousarray((rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])


def _as_batch(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """An RGB frame (H,W,3 uint8, any size) or a ready batch ([1,3,H,W] float32) as the input batch."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return image_batch(resize_image(image, width, height))
    if image.shape == (1, 3, height, width):
        return np.ascontiguousarray(image, dtype=np.float32)
    raise QuantizeError(
        f"calibration image {image.shape} {image.dtype}: expected RGB uint8 (h,w,3) or "
        f"float32 [1,3,{height},{width}]"
    )


class FrameReader(CalibrationDataReader):
    """ONNX Runtime's calibration input: ``{"image": [1,3,H,W] float32 in [0,1]}`` per frame."""

    def __init__(self, images: Iterable[np.ndarray], height: int, width: int) -> None:
        self.images = list(images)
        if not self.images:
            raise QuantizeError("no calibration frames")
        self.height, self.width = height, width
        self._next: Iterator[np.ndarray] = iter(self.images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        image = next(self._next, None)
        return None if image is None else {"image": _as_batch(image, self.height, self.width)}

    def rewind(self) -> None:
        self._next = iter(self.images)


def _is_bag(path: Path) -> bool:
    return (path.is_dir() and (path / "metadata.yaml").is_file()) or path.suffix in (".db3", ".mcap")


def _is_drive(path: Path) -> bool:
    return (path / "image_02" / "data").is_dir()


def calibration_sources(paths: Sequence[str | Path]) -> list[tuple[str, Path]]:
    """Each path as ("bag", path) or ("drive", drive folder); a folder of drives (a KITTI root or a
    date folder) gives its drives. One-line errors for a missing path or one that is neither."""
    sources: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"calibration path {path} does not exist")
        if _is_bag(path):
            sources.append(("bag", path))
        elif _is_drive(path):
            sources.append(("drive", path))
        else:
            drives = sorted(d for d in [*path.glob("*"), *path.glob("*/*")] if d.is_dir() and _is_drive(d))
            if not drives:
                raise QuantizeError(
                    f"calibration path {path} is neither a rosbag2 (metadata.yaml, .db3, .mcap), "
                    "a KITTI drive (image_02/data) nor a folder of drives"
                )
            sources += [("drive", d) for d in drives]
    return sources


def _drive_loaders(drive: Path) -> list[Any]:
    from training.evaluate import kitti_frames, split_from_drives

    # Every frame (no neighbours needed, static ones too): calibration wants what the camera sees.
    entries = split_from_drives(drive.parent, [drive.name], frame_ids=[0], static_speed=None)
    return [frame.load_image for frame in kitti_frames(drive.parent, entries, gt="velodyne")]


def _bag_loaders(bag: Path, height: int, width: int) -> list[Any]:
    from training.datasets.bag import BagDataset

    dataset = BagDataset(bag, height, width, (0,), odom_topic=None, static_speed=None, is_train=False)
    return [lambda i=i: dataset.load_color(i, 0) for i in range(len(dataset))]


def calibration_frames(paths: Sequence[str | Path], count: int, height: int, width: int) -> list[np.ndarray]:
    """``count`` frames evenly spread over all ``paths`` (drives, folders of drives, bags), as RGB
    uint8 at the model's size, resized as the runtime does (INTER_AREA)."""
    from training.evaluate import subsample

    loaders: list[Any] = []
    for kind, path in calibration_sources(paths):
        loaders += _drive_loaders(path) if kind == "drive" else _bag_loaders(path, height, width)
    if not loaders:
        raise QuantizeError(f"no frames in calibration paths {[str(p) for p in paths]}")
    return [resize_image(load(), width, height) for load in subsample(loaders, count)]


# ---------------------------------------------------------------------------------------------
# Quantization


def _quantized_metadata(model: onnx.ModelProto, fp32: onnx.ModelProto, frames: int, method: str) -> None:
    """The fp32 model's metadata_props, with ``precision=int8`` and how it was quantized."""
    meta = {p.key: p.value for p in fp32.metadata_props}
    meta.update(precision="int8", quantization=quantization_name(method), calibration_frames=str(frames))
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = fp32.doc_string


def quantize_model(
    fp32_onnx: str | Path,
    out_path: str | Path,
    calibration_images: Iterable[np.ndarray] | CalibrationDataReader,
    *,
    calibration_method: str = DEFAULT_CALIBRATION_METHOD,
    activation_type: QuantType = QuantType.QUInt8,
    reduce_range: bool = True,
) -> Path:
    """Write the int8 (QDQ) version of the fp32 depth model ``fp32_onnx`` to ``out_path``.

    ``calibration_images``: RGB uint8 frames of any size (resized to the model's metadata size), or
    ready [1,3,H,W] float32 batches, or an ONNX Runtime ``CalibrationDataReader``. The float tail
    (``float_tail``) is excluded from quantization. ``out_path`` is replaced only when it all worked.
    ``reduce_range`` (7-bit weights) keeps non-VNNI CPUs' u8s8 kernels from saturating (module doc).
    ``calibration_method``: a key of ``CALIBRATION_METHODS``; where a histogram method cannot bin a
    tensor, MinMax ranges are used and recorded instead (metadata ``quantization``).
    """
    if calibration_method not in CALIBRATION_METHODS:
        raise QuantizeError(
            f"calibration method {calibration_method!r}: expected one of {', '.join(CALIBRATION_METHODS)}"
        )
    fp32_onnx, out_path = Path(fp32_onnx), Path(out_path)
    fp32 = onnx.load(str(fp32_onnx))
    meta = {p.key: p.value for p in fp32.metadata_props}
    if meta.get("precision", "fp32") != "fp32":
        raise QuantizeError(f"{fp32_onnx}: precision {meta['precision']}, expected an fp32 export")
    height, width = model_input_size(fp32, str(fp32_onnx))
    reader = calibration_images
    if not isinstance(reader, CalibrationDataReader):
        reader = FrameReader(reader, height, width)
    with tempfile.TemporaryDirectory(prefix="depth-quantize-") as tmp:
        # Shape inference and constant folding first, as ONNX Runtime recommends: the quantizer
        # then sees every tensor's type and no constant subgraphs (the pads' widths).
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_onnx), str(prepared))
        keep_float = float_tail(onnx.load(str(prepared)))
        quantized = Path(tmp) / "int8.onnx"
        options = dict(
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=activation_type,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=keep_float,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )
        method = calibration_method
        try:
            quantize_static(
                str(prepared), str(quantized), reader, calibrate_method=CALIBRATION_METHODS[method], **options
            )
        except ValueError as error:
            # ONNX Runtime's histograms (Percentile, Entropy) cannot bin a tensor whose values all lie
            # within float32's resolution of zero (numpy: "Too many bins for data range"); MinMax
            # can. The method used is recorded in the metadata, which the export's card shows.
            if method == "minmax" or "bins" not in str(error) or not isinstance(reader, FrameReader):
                raise QuantizeError(f"{fp32_onnx}: {method} calibration failed: {error}") from error
            method = "minmax"
            reader.rewind()
            quantize_static(
                str(prepared), str(quantized), reader, calibrate_method=CALIBRATION_METHODS[method], **options
            )
        model = onnx.load(str(quantized))
    frames = len(reader.images) if isinstance(reader, FrameReader) else 0
    _quantized_metadata(model, fp32, frames, method)
    onnx.checker.check_model(model)
    with atomic_path(out_path) as tmp_out:
        onnx.save(model, str(tmp_out))
    return out_path


def depth_difference(fp32_onnx: str | Path, int8_onnx: str | Path, batches: Iterable[np.ndarray]) -> dict:
    """|int8 - fp32| / fp32 of the ``depth`` output over every pixel of ``batches``:
    {"median": ..., "p95": ..., "frames": n} (ONNX Runtime, CPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    sessions = [
        ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
        for p in (fp32_onnx, int8_onnx)
    ]
    relative = []
    for batch in batches:
        ref, got = (s.run(["depth"], {"image": batch})[0] for s in sessions)
        relative.append((np.abs(got - ref) / ref).ravel())
    if not relative:
        raise QuantizeError("no frames to compare int8 with fp32 on")
    values = np.concatenate(relative)
    return {
        "median": float(np.median(values)),
        "p95": float(np.percentile(values, 95)),
        "frames": len(relative),
    }
