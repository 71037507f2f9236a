"""int8 export (training/quantize.py, depth-export --int8): QDQ graph with a float head, calibration
frames from drives and bags, the runtime running it, depth close to fp32, CLI errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")

from onnx import TensorProto, helper  # noqa: E402

from depth_node.runtime.estimator import REQUIRED_METADATA, DepthEstimator  # noqa: E402
from training.export import main  # noqa: E402
from training.networks import build_depth_net  # noqa: E402
from training.quantize import (  # noqa: E402
    DEFAULT_CALIBRATION_METHOD,
    QuantizeError,
    calibration_frames,
    float_tail,
    image_batch,
    quantization_name,
    quantize_model,
)

torch.set_num_threads(2)
H, W = 64, 128
CALIBRATION_FRAMES = 6


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    config = {
        "data": {"source": "kitti", "root": "data/kitti", "height": H, "width": W, "frame_ids": [0, -1, 1]},
        "model": {"backbone": "resnet18", "min_depth": 0.1, "max_depth": 80.0},
        "loss": {},
        "train": {"batch_size": 4, "epochs": 1, "lr": 1e-4, "max_steps": 10},
    }
    net = build_depth_net({**config["model"], "weights": None}).eval()
    path = tmp_path_factory.mktemp("ckpt") / "last.pt"
    torch.save({"config": config, "depth_net": net.state_dict(), "epoch": 1, "step": 10}, path)
    return path, net


@pytest.fixture(scope="module")
def int8_export(
    checkpoint: tuple[Path, torch.nn.Module], kitti_drive_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """One ``depth-export --int8`` run: (model path, what it printed)."""
    out = tmp_path_factory.mktemp("int8") / "track_int8.onnx"
    args = ["--checkpoint", str(checkpoint[0]), "--out", str(out), "--int8", "--latency-runs", "2"]
    args += ["--calibration", str(kitti_drive_dir), "--calibration-frames", str(CALIBRATION_FRAMES)]
    assert main(args) == 0
    return out, out.with_suffix(".md").read_text()


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output}


def test_int8_graph_is_quantized_except_the_head(int8_export: tuple[Path, str]) -> None:
    model = onnx.load(str(int8_export[0]))
    made_by = producers(model)
    ops = [node.op_type for node in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    quantized = [
        c for c in convs if made_by.get(c.input[1]) and made_by[c.input[1]].op_type == "DequantizeLinear"
    ]
    float_convs = [c for c in convs if c not in quantized]
    # Every convolution but the disparity head runs on int8 weights and int8 inputs.
    assert len(float_convs) == 1 and len(quantized) == len(convs) - 1
    for conv in quantized:
        assert made_by[conv.input[0]].op_type == "DequantizeLinear"
    # Per-channel weights: one scale per output channel.
    initializers = {t.name: t for t in model.graph.initializer}
    weight_dq = made_by[quantized[0].input[1]]
    scale = onnx.numpy_helper.to_array(initializers[weight_dq.input[1]])
    weight = onnx.numpy_helper.to_array(initializers[weight_dq.input[0]])
    assert weight.dtype == np.int8 and scale.shape == (weight.shape[0],) and weight.shape[0] > 1

    # The head, its sigmoid and disp_to_depth: float, and nothing quantized feeds them.
    tail = set(float_tail(model))
    tail_nodes = [node for node in model.graph.node if node.name in tail]
    assert {"Conv", "Sigmoid", "Reciprocal"} <= {node.op_type for node in tail_nodes}
    assert float_convs[0].name in tail
    for node in tail_nodes:
        assert node.op_type not in ("QuantizeLinear", "DequantizeLinear")
        for name in node.input:
            assert name not in made_by or made_by[name].op_type != "DequantizeLinear", (node.name, name)
    head_weight = initializers[float_convs[0].input[1]]
    assert head_weight.data_type == TensorProto.FLOAT


def test_int8_metadata_and_card(int8_export: tuple[Path, str]) -> None:
    path, card = int8_export
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    for key in REQUIRED_METADATA:
        assert key in meta, key
    assert meta["precision"] == "int8"
    assert meta["quantization"] == quantization_name(DEFAULT_CALIBRATION_METHOD)
    assert DEFAULT_CALIBRATION_METHOD == "percentile" and quantization_name("percentile") in card
    assert (int(meta["input_height"]), int(meta["input_width"])) == (H, W) and meta["name"] == "track_int8"
    assert meta["calibration_frames"] == str(CALIBRATION_FRAMES)
    assert "| precision | int8" in card and "int8 vs fp32" in card
    assert "ms, fp32" in card and "side by side: x" in card


def test_runtime_runs_int8_close_to_fp32(
    int8_export: tuple[Path, str], checkpoint: tuple[Path, torch.nn.Module], kitti_drive_dir: Path
) -> None:
    _, net = checkpoint
    estimator = DepthEstimator(int8_export[0], providers=["cpu"], threads=2)
    assert (estimator.info.input_height, estimator.info.input_width) == (H, W)
    frames = calibration_frames([kitti_drive_dir], 3, H, W)
    batch = np.concatenate([image_batch(frame) for frame in frames])
    depth = np.concatenate([estimator.infer(b[None]) for b in batch])
    with torch.no_grad():
        reference = net.predict_depth(torch.from_numpy(batch)).numpy()
    relative = np.abs(depth - reference) / reference
    assert depth.shape == reference.shape and np.isfinite(depth).all()
    assert float(np.median(relative)) < 0.05 and float(np.percentile(relative, 95)) < 0.2


def test_calibration_frames_from_bags_and_drives(sim_bag: Path, kitti_drive_dir: Path) -> None:
    frames = calibration_frames([sim_bag, kitti_drive_dir.parent], 5, 32, 96)
    assert len(frames) == 5
    assert all(f.shape == (32, 96, 3) and f.dtype == np.uint8 for f in frames)
    # Evenly spread over both sources (bag first): the first frame of each is the same picture.
    assert np.array_equal(frames[0], calibration_frames([kitti_drive_dir], 1, 32, 96)[0])
    with pytest.raises(QuantizeError, match="neither a rosbag2"):
        calibration_frames([kitti_drive_dir / "image_02"], 5, 32, 96)


def _graph(names: dict[str, str], size: int = 8) -> onnx.ModelProto:
    """image [1,3,size,size] -> Conv -> Relu -> Pad -> Conv (head) -> Sigmoid -> Mul (x2) -> depth, nodes
    named ``names`` (the Pad's widths are an int64 side input: not followed back)."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [2, 3, 1, 1], [0.1] * 6)
    head = helper.make_tensor("hw", TensorProto.FLOAT, [1, 2, 3, 3], [0.1] * 18)
    pads = helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    nodes = [
        helper.make_node("Conv", ["image", "w"], ["f"], name=names["conv"]),
        helper.make_node("Relu", ["f"], ["r"], name=names["relu"]),
        helper.make_node("Pad", ["r", "pads"], ["p"], mode="reflect", name=names["pad"]),
        helper.make_node("Conv", ["p", "hw"], ["d"], name=names["head"]),
        helper.make_node("Sigmoid", ["d"], ["s"], name=names["sigmoid"]),
        helper.make_node("Mul", ["s", "two"], ["depth"], name=names["mul"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, size, size])],
        [weight, head, pads, two],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_float_tail_is_found_by_structure_not_names() -> None:
    names = dict(conv="a", relu="b", pad="c", head="d", sigmoid="e", mul="f")
    assert float_tail(_graph(names)) == ["c", "d", "e", "f"]
    renamed = dict(conv="x9", relu="x8", pad="x7", head="x6", sigmoid="x5", mul="x4")
    assert float_tail(_graph(renamed)) == ["x7", "x6", "x5", "x4"]
    no_head = _graph(names)
    for node in no_head.graph.node:  # both convolutions become activations: nothing to keep apart
        if node.op_type == "Conv":
            node.op_type = "Relu"
            del node.input[1]
    with pytest.raises(QuantizeError, match="no convolution between input 'image' and output 'depth'"):
        float_tail(no_head)


def _input_scale(model_path: Path) -> float:
    """The quantization scale of the ``image`` input (its QuantizeLinear's second input)."""
    model = onnx.load(str(model_path))
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    node = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "image")
    return float(initializers[node.input[1]])


def test_percentile_ranges_ignore_an_outlier_that_sets_minmax(tmp_path: Path) -> None:
    fp32 = _graph(dict(conv="a", relu="b", pad="c", head="d", sigmoid="e", mul="f"), size=64)
    for key, value in {"input_height": "64", "input_width": "64", "precision": "fp32"}.items():
        fp32.metadata_props.add(key=key, value=value)
    onnx.save(fp32, str(tmp_path / "fp32.onnx"))
    rng = np.random.default_rng(0)
    batches = [rng.random((1, 3, 64, 64), dtype=np.float32) for _ in range(16)]
    batches[3][0, 0, 0, 0] = 50.0  # one value in 196,608: above the 99.999th percentile
    scales = {}
    for method in ("minmax", "percentile"):
        out = tmp_path / f"{method}.onnx"
        quantize_model(tmp_path / "fp32.onnx", out, batches, calibration_method=method)
        meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert meta["quantization"] == quantization_name(method)
        scales[method] = _input_scale(out)
    assert scales["minmax"] == pytest.approx(50.0 / 255, rel=0.01)  # uint8 codes spread up to the outlier
    assert scales["percentile"] < 0.2 * scales["minmax"]
    with pytest.raises(QuantizeError, match="calibration method 'median'"):
        quantize_model(tmp_path / "fp32.onnx", tmp_path / "x.onnx", batches, calibration_method="median")

    # Values within float32's resolution of zero: ONNX Runtime's histogram cannot bin them, so the
    # ranges are MinMax's, and the metadata says so.
    tiny = [1e-41 * batch for batch in batches]
    out = quantize_model(tmp_path / "fp32.onnx", tmp_path / "tiny.onnx", tiny)  # Percentile asked
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["quantization"] == quantization_name("minmax")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--int8"], "--int8 needs --calibration"),
        (["--int8", "--fp16", "--calibration", "CAL"], "--int8 and --fp16 exclude each other"),
        (["--int8", "--calibration", "MISSING"], "calibration path MISSING does not exist"),
        (["--calibration", "CAL"], "--calibration is only used with --int8"),
    ],
)
def test_int8_cli_errors_are_one_line(
    extra: list[str], expected: str, kitti_drive_dir: Path, tmp_path: Path, capsys
) -> None:
    missing = tmp_path / "nowhere"
    extra = [str(kitti_drive_dir) if a == "CAL" else str(missing) if a == "MISSING" else a for a in extra]
    expected = expected.replace("MISSING", str(missing))
    out = tmp_path / "x.onnx"
    assert main(["--checkpoint", str(tmp_path / "none.pt"), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("depth-export: error:") and expected in err and "\n" not in err
    assert not out.exists()


def test_int8_far_from_fp32_fails_and_writes_nothing(
    checkpoint: tuple[Path, torch.nn.Module], kitti_drive_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr("training.export.INT8_MEDIAN_TOLERANCE", -1.0)  # nothing passes
    out = tmp_path / "x.onnx"
    args = ["--checkpoint", str(checkpoint[0]), "--out", str(out), "--int8", "--latency-runs", "1"]
    assert main([*args, "--calibration", str(kitti_drive_dir), "--calibration-frames", "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert "int8 depth differs from fp32 by" in err and "x.onnx" in err and "\n" not in err
    assert not out.exists() and not out.with_suffix(".md").exists()
