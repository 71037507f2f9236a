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


def make_two_frame_model(
    path: str | Path,
    height: int = 12,
    width: int = 16,
    a: float = 1.0,
    b: float = 10.0,
    c: float = 50.0,
    metadata: dict[str, str | None] | None = None,
    prev_name: str = "prev_image",
    prev_dims: tuple[int | str, ...] | None = None,
) -> Path:
    """Write a two-frame model, depth = a + b * channel-mean(image) + c * channel-mean(prev_image), with
    metadata ``frames=2`` (``metadata`` overrides it and :data:`DEFAULT_METADATA`; a value of None drops
    a key). ``prev_name`` / ``prev_dims`` (default ["N", 3, height, width]) break the contract for error
    tests. With b and c far apart, one output tells which frame went into which input."""
    path = Path(path)
    dims = ["N", 3, height, width]
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("ReduceMean", [prev_name], ["prev_mean"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["mean", "b"], ["scaled"]),
        helper.make_node("Mul", ["prev_mean", "c"], ["prev_scaled"]),
        helper.make_node("Add", ["scaled", "prev_scaled"], ["sum"]),
        helper.make_node("Add", ["sum", "a"], ["depth"]),
    ]
    initializers = [
        helper.make_tensor(name, TensorProto.FLOAT, [], [value])
        for name, value in (("a", a), ("b", b), ("c", c))
    ]
    graph = helper.make_graph(
        nodes,
        "two_frame_linear_depth",
        [_tensor("image", dims), _tensor(prev_name, list(prev_dims) if prev_dims else dims)],
        [_tensor("depth", ["N", 1, height, width])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="depth_node-tests"
    )
    model.ir_version = IR_VERSION
    props = dict(DEFAULT_METADATA, input_height=str(height), input_width=str(width), frames="2")
    props.update(metadata or {})
    helper.set_model_props(model, {k: v for k, v in props.items() if v is not None})
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


# ------------------------------------------------ bad model files (error tests, the bad-input corpus)


def _save_io_model(path: Path, inputs: list, outputs: list, nodes: list, metadata: dict[str, str]) -> Path:
    """A graph with hand-written I/O (shapes the linear model cannot take), contract metadata."""
    graph = helper.make_graph(nodes, "odd_io", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    helper.set_model_props(model, dict(DEFAULT_METADATA, **metadata))
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _tensor(name: str, dims: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def make_external_data_model(path: str | Path, location: str, data_file: Path | None = None) -> Path:
    """The linear model (a=1, b=10) with initializer ``b`` kept in external data at ``location`` (as
    written into the model); its bytes go to ``data_file`` (default: ``location`` beside the model)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(make_linear_depth_model(path, a=1.0, b=10.0)))
    tensor = next(t for t in model.graph.initializer if t.name == "b")
    target = data_file if data_file is not None else path.parent / location
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(tensor.raw_data)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    path.write_bytes(model.SerializeToString())  # onnx.save would try to resolve the location itself
    return path


def bad_model_files(folder: Path) -> dict[str, Path]:
    """Every kind of bad model file the runtime must refuse with one ModelLoadError line, written into
    ``folder`` (created): name -> path. The bad-input corpus (test/bad_inputs.py) runs these through
    the node and the replay; test_estimator.py checks each one's message."""
    # Long: one short stanza per kind of bad file, in the order DepthEstimator meets them.
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def path_for(name: str) -> Path:
        return folder / f"{name.replace(' ', '_')}.onnx"

    files["empty"] = path_for("empty")
    files["empty"].write_bytes(b"")
    files["directory"] = path_for("directory")
    files["directory"].mkdir(exist_ok=True)
    files["garbage"] = path_for("garbage")
    files["garbage"].write_bytes(np.random.default_rng(0).bytes(4096))
    valid = make_linear_depth_model(path_for("valid")).read_bytes()
    path_for("valid").unlink()
    files["truncated"] = path_for("truncated")
    files["truncated"].write_bytes(valid[: len(valid) // 2])
    # A graph ONNX Runtime refuses while initializing (and would log in its own words first).
    model = onnx.load_from_string(valid)
    model.graph.initializer[1].ClearField("raw_data")  # "b": shape [] says one value, none stored
    files["initializer without data"] = path_for("initializer without data")
    files["initializer without data"].write_bytes(model.SerializeToString())

    # Graph inputs and outputs that break the contract: input image [N,3,H,W], output depth [N,1,H,W].
    mean = helper.make_node("ReduceMean", ["image"], ["depth"], axes=[1], keepdims=1)
    odd_io = {
        "wrong input rank": ([_tensor("image", ["N", 3, 12])], [_tensor("depth", ["N", 1, 12])], [mean]),
        "channels-last input": (
            [_tensor("image", ["N", 12, 16, 3])],
            [_tensor("depth", ["N", 1, 12, 16])],
            [
                helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
                helper.make_node("ReduceMean", ["nchw"], ["depth"], axes=[1], keepdims=1),
            ],
        ),
        "wrong output rank": (
            [_tensor("image", ["N", 3, 12, 16])],
            [_tensor("depth", ["N", 12, 16])],
            [helper.make_node("ReduceMean", ["image"], ["depth"], axes=[1], keepdims=0)],
        ),
        # Declared shapes open (H, W), so only running it shows the depth comes out at half size.
        "half-size depth output": (
            [_tensor("image", ["N", 3, "H", "W"])],
            [_tensor("depth", ["N", 1, "H2", "W2"])],
            [
                helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1),
                helper.make_node("MaxPool", ["mean"], ["depth"], kernel_shape=[2, 2], strides=[2, 2]),
            ],
        ),
    }
    for name, (inputs, outputs, nodes) in odd_io.items():
        files[name] = _save_io_model(path_for(name), inputs, outputs, nodes, {})
    linear_variants: dict[str, dict] = {
        "wrong channel count": {"input_channels": 1},
        "wrong input name": {"input_name": "input"},
        "no depth output": {"output_name": "disp"},
        "no metadata": {"drop_metadata": tuple(DEFAULT_METADATA)},
        "missing metadata keys": {"drop_metadata": ("input_height", "min_depth", "backbone")},
        "bad metadata value": {"metadata": {"max_depth": "far"}},
        "negative metadata value": {"metadata": {"min_depth": "-0.5"}},
        "inconsistent metadata": {"metadata": {"input_height": "24"}},  # the graph says 12
        "min_depth not below max_depth": {"metadata": {"min_depth": "80", "max_depth": "80"}},
        "huge input size": {"metadata": {"input_height": "100000"}, "spatial_dims": ("H", "W")},
    }
    for name, kwargs in linear_variants.items():
        files[name] = make_linear_depth_model(path_for(name), **kwargs)
    # ONNX strings are UTF-8; ORT hands them to Python undecoded (a placeholder swapped for bad bytes).
    files["metadata not UTF-8"] = path_for("metadata not UTF-8")
    data = make_linear_depth_model(files["metadata not UTF-8"], metadata={"backbone": "@@@@"}).read_bytes()
    files["metadata not UTF-8"].write_bytes(data.replace(b"@@@@", b"\xff\xfe\xfd\xfc"))

    # External data that would make ONNX Runtime read a file outside the model's folder.
    secret = folder / "secret.bin"
    secret.write_bytes(np.array([10.0], np.float32).tobytes())
    external = {
        "external data outside its folder": ("../secret.bin", secret),
        "external data at an absolute path": (str(secret.resolve()), secret),
        "external data missing": ("weights.bin", folder / "unused.bin"),
    }
    for name, (location, data_file) in external.items():
        model_path = folder / name.replace(" ", "_") / "model.onnx"
        files[name] = make_external_data_model(model_path, location, data_file=data_file)
    return files
