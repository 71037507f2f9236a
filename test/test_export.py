"""ONNX export: graph contract, metadata, checker, ONNX Runtime parity (fp32 and fp16), model card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from depth_node.runtime.estimator import REQUIRED_METADATA  # noqa: E402
from training.export import count_flops, export_onnx, main, measure_latencies  # noqa: E402
from training.networks import build_depth_net  # noqa: E402

torch.set_num_threads(2)
H, W = 64, 128


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    config = {
        "data": {"source": "folder", "root": "data/track", "height": H, "width": W, "frame_ids": [0, -1, 1]},
        "model": {"backbone": "stdc1", "weights": "/does/not/exist.tar", "min_depth": 0.1, "max_depth": 80.0},
        "loss": {},
        "train": {"batch_size": 4, "epochs": 1, "lr": 1e-4, "max_steps": 10},
    }
    net = build_depth_net({**config["model"], "weights": None}).eval()
    # Non-trivial BatchNorm statistics so that the exported (folded) graph has something to get wrong.
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("ckpt") / "last.pt"
    state = {
        "config": config,
        "depth_net": net.state_dict(),
        "epoch": 1,
        "step": 10,
        "metrics": {"abs_rel": 0.2},
    }
    torch.save(state, path)
    return path, net


def session_and_meta(path: Path) -> tuple[ort.InferenceSession, dict[str, str]]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session, dict(session.get_modelmeta().custom_metadata_map)


def test_fp32_export_via_cli(checkpoint: tuple[Path, torch.nn.Module], tmp_path: Path, capsys) -> None:
    ckpt_path, net = checkpoint
    out = tmp_path / "models" / "track_stdc1.onnx"
    assert main(["--checkpoint", str(ckpt_path), "--out", str(out), "--latency-runs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "max relative error" in printed

    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    session, meta = session_and_meta(out)
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape) == ("image", "tensor(float)", [1, 3, H, W])
    assert (outp.name, outp.type, outp.shape) == ("depth", "tensor(float)", [1, 1, H, W])
    for key in REQUIRED_METADATA:
        assert key in meta, key
    assert (int(meta["input_height"]), int(meta["input_width"])) == (H, W)
    assert float(meta["min_depth"]) == 0.1 and float(meta["max_depth"]) == 80.0
    assert float(meta["metric_scale"]) == 1.0
    assert meta["backbone"] == "stdc1" and meta["decoder"] == "monodepth2" and meta["name"] == "track_stdc1"
    # An image folder carries no ego-motion: purely self-supervised, scale unknown.
    assert meta["training_mode"] == "self_supervised" and meta["scale_is_metric"] == "false"
    assert json.loads(meta["source"])["checkpoint"] == "last.pt"

    # Independent parity check on a fresh image.
    image = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = net.predict_depth(image).numpy()
    got = session.run(["depth"], {"image": image.numpy()})[0]
    rel = float(np.max(np.abs(got - ref) / ref))
    assert rel < 1e-3, rel
    assert float(got.min()) >= 0.1 - 1e-6 and float(got.max()) <= 80.0 + 1e-3

    card = out.with_suffix(".md").read_text()
    assert "stdc1" in card and "GFLOPs" in card and "ms median" in card and "abs_rel" in card
    assert "| precision | fp32 |" in card and meta["precision"] == "fp32"


def test_fp16_dynamic_batch_export(checkpoint: tuple[Path, torch.nn.Module], tmp_path: Path) -> None:
    ckpt_path, net = checkpoint
    out = export_onnx(
        ckpt_path, tmp_path / "half.onnx", fp16=True, dynamic_batch=True, latency_runs=1, verbose=False
    )
    onnx.checker.check_model(onnx.load(str(out)))
    session, meta = session_and_meta(out)
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    # float32 interface although the weights are half precision.
    assert inp.type == "tensor(float)" and outp.type == "tensor(float)"
    assert not isinstance(inp.shape[0], int) and inp.shape[1:] == [3, H, W]
    initializers = onnx.load(str(out)).graph.initializer
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in initializers)
    image = torch.rand(3, 3, H, W, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ref = net.predict_depth(image).numpy()
    got = session.run(["depth"], {"image": image.numpy()})[0]
    assert got.shape == (3, 1, H, W) and got.dtype == np.float32
    assert float(np.max(np.abs(got - ref) / ref)) < 2e-2
    assert meta["precision"] == "fp16"


def test_flop_counter_matches_analytic_count() -> None:
    conv = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1, groups=4)
    )
    counted = count_flops(conv, torch.rand(1, 3, 10, 12))
    assert counted["macs"] == 10 * 12 * 8 * (3 * 9) + 10 * 12 * 8 * (2 * 9)
    assert counted["flops"] == 2 * counted["macs"]


def test_missing_checkpoint_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    assert main(["--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("depth-export: error:") and "none.pt" in err and "\n" not in err


def test_latencies_of_several_models_are_measured_side_by_side(
    checkpoint: tuple[Path, torch.nn.Module], tmp_path: Path
) -> None:
    out = export_onnx(checkpoint[0], tmp_path / "m.onnx", latency_runs=1, verbose=False)
    latencies = measure_latencies([out, out], H, W, runs=2, threads=1)
    assert len(latencies) == 2 and all(ms > 0 for ms in latencies)


def test_int8_with_fp16_is_refused_by_the_api(
    checkpoint: tuple[Path, torch.nn.Module], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="excludes fp16"):
        export_onnx(checkpoint[0], tmp_path / "x.onnx", fp16=True, int8=True, calibration=[tmp_path])
