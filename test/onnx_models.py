"""Tiny real ONNX models that follow (or deliberately break) the depth model contract, for tests.

The graph computes depth = a + b * mean(image over channels), so every output is predictable from the
input: a uniform grey image of value g gives depth a + b * g everywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from depth_node.runtime.estimator import DepthEstimator

OPSET = 13  # ReduceMean takes ``axes`` as an attribute up to opset 17
IR_VERSION = 8  # old enough for every onnxruntime this project supports

DEFAULT_METADATA = {
    "input_height": "12",
    "input_width": "16",
    "min_depth": "0.1",
    "max_depth": "100.0",
    "metric_scale": "1.0",
    "scale_is_metric": "true",
    "backbone": "linear-test",
    "training_mode": "test",
    "source": "test/onnx_models.py",
    "name": "linear-test",
}


def expected_depth(batch: np.ndarray, a: float, b: float) -> np.ndarray:
    """What the linear model returns for a float32 [N,3,H,W] batch."""
    return (a + b * batch.mean(axis=1, keepdims=True)).astype(np.float32)


def make_linear_depth_model(
    path: str | Path,
    height: int = 12,
    width: int = 16,
    a: float = 1.0,
    b: float = 10.0,
    metadata: dict[str, str] | None = None,
    drop_metadata: tuple[str, ...] = (),
    batch: int | str = "N",
    fp16: bool = False,
    input_name: str = "image",
    output_name: str = "depth",
    input_channels: int = 3,
    output_channels: int = 1,
    spatial_dims: tuple[int | str, int | str] | None = None,
) -> Path:
    """Write depth = a + b * channel-mean as an ONNX model with metadata_props; return its path.

    ``metadata`` overrides entries of :data:`DEFAULT_METADATA` (whose input size follows
    ``height``/``width``); ``drop_metadata`` removes keys. ``fp16`` computes in float16 inside the
    graph but keeps float32 I/O, as the contract asks of fp16 exports. ``spatial_dims`` sets the
    declared H, W dims (e.g. symbolic names), default the static ``height``/``width``. The other
    arguments build contract-breaking models for error tests.
    """
    path = Path(path)
    h_dim, w_dim = spatial_dims if spatial_dims is not None else (height, width)
    compute = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    np_compute = np.float16 if fp16 else np.float32
    nodes = []
    current = input_name
    if fp16:
        nodes.append(helper.make_node("Cast", [current], ["image16"], to=TensorProto.FLOAT16))
        current = "image16"
    nodes += [
        helper.make_node("ReduceMean", [current], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["mean", "b"], ["scaled"]),
        helper.make_node("Add", ["scaled", "a"], ["depth1"]),
    ]
    last = "depth1"
    if output_channels != 1:
        nodes.append(helper.make_node("Concat", [last] * output_channels, ["depthN"], axis=1))
        last = "depthN"
    nodes.append(
        helper.make_node("Cast", [last], [output_name], to=TensorProto.FLOAT)
        if fp16
        else helper.make_node("Identity", [last], [output_name])
    )
    initializers = [
        helper.make_tensor("a", compute, [], np.array([a], dtype=np_compute).tobytes(), raw=True),
        helper.make_tensor("b", compute, [], np.array([b], dtype=np_compute).tobytes(), raw=True),
    ]
    graph = helper.make_graph(
        nodes,
        "linear_depth",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, input_channels, h_dim, w_dim])],
        [
            helper.make_tensor_value_info(
                output_name, TensorProto.FLOAT, [batch, output_channels, h_dim, w_dim]
            )
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="depth_node-tests"
    )
    model.ir_version = IR_VERSION
    props = dict(DEFAULT_METADATA, input_height=str(height), input_width=str(width))
    props.update(metadata or {})
    for key in drop_metadata:
        props.pop(key, None)
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def write_corrupt_model(path: str | Path) -> Path:
    """A file with a .onnx name that is not an ONNX protobuf."""
    path = Path(path)
    path.write_bytes(b"this is not an onnx model \x00\x01\x02" * 8)
    return path


def linear_estimator(folder: Path, **metadata: str) -> DepthEstimator:
    """A CPU DepthEstimator on depth = 1 + 10 * grey level, valid in [0.5, 8] m (pipeline, messages)."""
    meta = {"min_depth": "0.5", "max_depth": "8.0", **metadata}
    model = make_linear_depth_model(folder / "m.onnx", a=1.0, b=10.0, metadata=meta)
    return DepthEstimator(model, providers=("cpu",))
