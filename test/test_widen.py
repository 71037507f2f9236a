"""training/widen.py: an fp16 export made to compute in fp32, weights still stored in fp16."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto
from onnx_models import make_linear_depth_model

from depth_node.runtime.estimator import DepthEstimator
from training.widen import main, widen


def _run(path, image):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["depth"], {"image": image})[0]


def test_the_widened_model_computes_in_fp32_with_the_same_depth(tmp_path):
    source = make_linear_depth_model(
        tmp_path / "m.fp16.onnx", a=0.3, b=7.0, fp16=True, metadata={"precision": "fp16"}
    )
    assert main([str(source), str(tmp_path / "m.onnx")]) == 0
    wide = onnx.load(str(tmp_path / "m.onnx"))
    stored = {init.data_type for init in wide.graph.initializer}
    assert stored == {TensorProto.FLOAT16}  # the file keeps its fp16 weights ...
    casts = [n for n in wide.graph.node if n.op_type == "Cast"]
    assert casts and all(a.i == TensorProto.FLOAT for n in casts for a in n.attribute if a.name == "to")
    meta = {p.key: p.value for p in wide.metadata_props}
    assert meta["precision"] == "fp32" and meta["weights_stored"] == "fp16"
    image = np.random.default_rng(0).random((1, 3, 12, 16), dtype=np.float32)
    # ... and computes in float32 with the fp16 weights (a = 0.3 rounds to 0.2998).
    exact = np.float32(np.float16(0.3)) + 7.0 * image.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(_run(tmp_path / "m.onnx", image), exact, rtol=1e-6)
    np.testing.assert_allclose(_run(source, image), exact, rtol=2e-3)


def test_the_runtime_on_cpu_picks_the_widened_model_over_the_fp16_one(tmp_path):
    source = make_linear_depth_model(tmp_path / "m.fp16.onnx", fp16=True, metadata={"precision": "fp16"})
    onnx.save(widen(onnx.load(str(source))), str(tmp_path / "m.onnx"))
    estimator = DepthEstimator(source, providers=["cpu"])
    assert estimator.model_path == tmp_path / "m.onnx" and estimator.precision == "fp32"


def test_a_file_that_is_no_model_is_one_line(tmp_path, capsys):
    (tmp_path / "x.onnx").write_bytes(b"not a model")
    assert main([str(tmp_path / "x.onnx"), str(tmp_path / "y.onnx")]) == 2
    assert "widen: cannot read" in capsys.readouterr().err
