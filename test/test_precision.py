"""Precision per provider (runtime/precision.py): which sibling file runs where, TensorRT's caches.

The files are real ONNX models opened by real ONNX Runtime sessions; the GPU providers cannot start
here, so their choice is checked on the function that makes it and on the options it would pass.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from onnx_models import make_linear_depth_model

from depth_node.runtime.errors import ModelLoadError
from depth_node.runtime.estimator import DepthEstimator
from depth_node.runtime.parameters import ParameterError, validate_parameters
from depth_node.runtime.precision import (
    CPU,
    CUDA,
    TENSORRT,
    choose_model_file,
    split_precision,
    tensorrt_options,
)


def _variants(folder: Path, *precisions: str) -> dict[str, Path]:
    """The model m at each precision, as depth-export names them; fp32 and fp16 compute differently
    (b = 10 vs 20), so a test can tell from the depth which file ran."""
    paths = {}
    for precision in precisions:
        name = {"fp32": "m.onnx", "fp16": "m.fp16.onnx", "int8": "m.int8.onnx"}[precision]
        paths[precision] = make_linear_depth_model(
            folder / name,
            b={"fp32": 10.0, "fp16": 20.0, "int8": 30.0}[precision],
            fp16=precision == "fp16",
            metadata={"precision": precision},
        )
    return paths


def test_names_carry_the_precision():
    assert split_precision(Path("/m/x.onnx")) == (Path("/m/x"), "fp32")
    assert split_precision(Path("/m/x.fp16.onnx")) == (Path("/m/x"), "fp16")
    assert split_precision(Path("/m/x.int8.onnx")) == (Path("/m/x"), "int8")
    assert split_precision(Path("/m/a.b.onnx")) == (Path("/m/a.b"), "fp32")


def test_auto_runs_fp32_on_cpu_fp16_on_cuda_and_fp32_into_tensorrt(tmp_path):
    paths = _variants(tmp_path, "fp32", "fp16", "int8")
    assert choose_model_file(paths["fp16"], CPU).path == paths["fp32"]
    assert choose_model_file(paths["fp32"], CPU).path == paths["fp32"]
    assert choose_model_file(paths["int8"], CPU).path == paths["int8"]  # int8 is a CPU precision
    assert choose_model_file(paths["fp32"], CUDA).path == paths["fp16"]
    # TensorRT builds its fp16 engine from the fp32 graph (trt_fp16_enable), not from fp16 casts.
    assert choose_model_file(paths["fp16"], TENSORRT).path == paths["fp32"]
    assert choose_model_file(paths["int8"], TENSORRT).path == paths["int8"]


def test_auto_without_a_better_sibling_runs_the_named_file_and_says_why(tmp_path):
    paths = _variants(tmp_path, "fp16")
    choice = choose_model_file(paths["fp16"], CPU)
    assert choice.path == paths["fp16"] and "slower" in choice.reason


def test_an_explicit_precision_runs_its_file_or_says_which_exist(tmp_path):
    paths = _variants(tmp_path, "fp32", "fp16")
    assert choose_model_file(paths["fp32"], CPU, "fp32").path == paths["fp32"]
    assert choose_model_file(paths["fp32"], TENSORRT, "fp16").path == paths["fp16"]
    with pytest.raises(ModelLoadError, match=r"no m\.int8\.onnx next to m\.onnx \(found: fp32, fp16"):
        choose_model_file(paths["fp32"], CPU, "int8")
    with pytest.raises(ModelLoadError, match="fp16 runs on GPU providers only"):
        choose_model_file(paths["fp16"], CPU, "fp16")
    with pytest.raises(ModelLoadError, match="not one of auto, fp32, fp16, int8"):
        choose_model_file(paths["fp32"], CPU, "fp8")


@pytest.fixture
def estimator_log(caplog):
    """caplog on the estimator's own logger: launch_testing's pytest plugin (ROS machines) imports
    launch, whose logger class does not propagate to the root logger caplog listens on."""
    logger = logging.getLogger("depth_node.runtime.estimator")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            yield caplog
    finally:
        logger.removeHandler(caplog.handler)


def test_the_estimator_on_cpu_runs_the_fp32_sibling_of_an_fp16_model(tmp_path, estimator_log):
    paths = _variants(tmp_path, "fp32", "fp16")
    image = np.full((1, 3, 12, 16), 0.5, np.float32)
    estimator = DepthEstimator(paths["fp16"], providers=["cpu"])
    assert estimator.model_path == paths["fp32"] and estimator.precision == "fp32"
    np.testing.assert_allclose(estimator.infer(image), 1.0 + 10.0 * 0.5, rtol=1e-6)  # fp32's b
    assert "running m.onnx instead of m.fp16.onnx" in estimator_log.text


def test_an_fp16_model_alone_on_cpu_runs_with_a_warning(tmp_path, estimator_log):
    paths = _variants(tmp_path, "fp16")
    estimator = DepthEstimator(paths["fp16"], providers=["cpu"])
    assert estimator.model_path == paths["fp16"]
    assert "computes in fp16, which on CPUExecutionProvider runs slower than fp32" in estimator_log.text
    assert "as m.onnx" in estimator_log.text


def test_an_explicit_precision_that_is_missing_fails_before_any_frame(tmp_path):
    paths = _variants(tmp_path, "fp32")
    with pytest.raises(ModelLoadError, match=r"precision int8: no m\.int8\.onnx"):
        DepthEstimator(paths["fp32"], providers=["cpu"], precision="int8")


def test_tensorrt_caches_are_keyed_by_model_and_precision(tmp_path):
    (tmp_path / "models").mkdir()
    paths = _variants(tmp_path / "models", "fp32", "fp16", "int8")
    cache = tmp_path / "cache"
    fp32 = tensorrt_options(choose_model_file(paths["fp32"], TENSORRT), "auto", cache, fp16=True)
    assert fp32["trt_fp16_enable"] is True and fp32["trt_int8_enable"] is False
    assert Path(fp32["trt_engine_cache_path"]).name.endswith("-fp16")
    assert fp32["trt_timing_cache_enable"] is True and fp32["trt_timing_cache_path"] == str(cache)
    exact = tensorrt_options(choose_model_file(paths["fp32"], TENSORRT, "fp32"), "fp32", cache, fp16=True)
    assert exact["trt_fp16_enable"] is False and Path(exact["trt_engine_cache_path"]).name.endswith("-fp32")
    int8 = tensorrt_options(choose_model_file(paths["int8"], TENSORRT), "auto", cache, fp16=True)
    assert int8["trt_int8_enable"] is True and Path(int8["trt_engine_cache_path"]).name.endswith("-int8")
    folders = {fp32["trt_engine_cache_path"], exact["trt_engine_cache_path"], int8["trt_engine_cache_path"]}
    assert len(folders) == 3 and all(Path(f).is_dir() for f in folders)
    # Another model of the same name (retrained) gets its own engines.
    make_linear_depth_model(paths["fp32"], b=11.0, metadata={"precision": "fp32"})
    again = tensorrt_options(choose_model_file(paths["fp32"], TENSORRT), "auto", cache, fp16=True)
    assert again["trt_engine_cache_path"] != fp32["trt_engine_cache_path"]
    assert "trt_engine_cache_enable" not in tensorrt_options(
        choose_model_file(paths["fp32"], TENSORRT), "auto", None, fp16=True
    )


def test_the_precision_parameter_is_checked():
    assert validate_parameters({}).precision == "auto"
    assert validate_parameters({"precision": "int8"}).precision == "int8"
    with pytest.raises(ParameterError, match="precision"):
        validate_parameters({"precision": "fp8"})


@pytest.mark.parametrize("model", sorted(Path(__file__).resolve().parents[1].glob("models/*.onnx")), ids=str)
def test_the_shipped_models_compute_in_a_cpu_precision(model):
    """The node's default provider list ends on the CPU: a shipped fp16 model would run slower there."""
    import onnxruntime as ort

    meta = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_modelmeta()
    assert meta.custom_metadata_map.get("precision") == split_precision(model)[1]
