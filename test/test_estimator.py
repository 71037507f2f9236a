"""DepthEstimator on tiny real ONNX models (real onnxruntime sessions, no mocks)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from onnx_models import (
    bad_model_files,
    expected_depth,
    make_external_data_model,
    make_linear_depth_model,
    write_corrupt_model,
)

from depth_node.runtime.errors import InputShapeError, ModelLoadError
from depth_node.runtime.estimator import (
    DepthEstimator,
    parse_model_info,
    resolve_providers,
)


def _assert_one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(error.value)
    assert text and "\n" not in text
    return text


def test_reads_sizes_and_metadata_from_the_model(tmp_path: Path) -> None:
    path = make_linear_depth_model(
        tmp_path / "m.onnx",
        height=8,
        width=24,
        metadata={
            "min_depth": "0.5",
            "max_depth": "40",
            "metric_scale": "2.5",
            "backbone": "stdc1",
            "training_mode": "mono",
            "source": "cfg@abc123",
            "name": "tiny",
            "scale_is_metric": "false",
        },
    )
    estimator = DepthEstimator(path, providers=("cpu",), threads=1)
    info = estimator.info
    assert (info.input_height, info.input_width) == (8, 24)
    assert (info.min_depth, info.max_depth, info.metric_scale) == (0.5, 40.0, 2.5)
    assert (info.backbone, info.training_mode, info.source, info.name) == (
        "stdc1",
        "mono",
        "cfg@abc123",
        "tiny",
    )
    assert info.scale_is_metric is False
    assert estimator.provider == "CPUExecutionProvider"


def test_infer_matches_the_graph(tmp_path: Path) -> None:
    estimator = DepthEstimator(make_linear_depth_model(tmp_path / "m.onnx", a=0.5, b=4.0), providers=("cpu",))
    batch = np.random.default_rng(0).random((2, 3, 12, 16), dtype=np.float32)
    out = estimator.infer(batch)
    assert out.shape == (2, 1, 12, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected_depth(batch, 0.5, 4.0), rtol=1e-6)


@pytest.mark.parametrize("io_binding", [False, True])
def test_fp16_model_keeps_float32_io(tmp_path: Path, io_binding: bool) -> None:
    path = make_linear_depth_model(tmp_path / "m16.onnx", fp16=True, a=1.0, b=2.0)
    estimator = DepthEstimator(path, providers=("cpu",), io_binding=io_binding)
    batch = np.full((1, 3, 12, 16), 0.25, dtype=np.float32)
    out = estimator.infer(batch)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 1.5, rtol=1e-3)
    # results are the caller's: the next run (reusing bound buffers) must not change them
    second = estimator.infer(np.zeros((1, 3, 12, 16), np.float32))
    np.testing.assert_allclose(out, 1.5, rtol=1e-3)
    np.testing.assert_allclose(second, 1.0, rtol=1e-3)
    assert estimator.infer(np.zeros((3, 3, 12, 16), np.float32)).shape == (3, 1, 12, 16)  # batch change


def test_provider_priority_skips_unavailable_ones(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # launch_testing's pytest plugin (ROS machines) imports launch, whose logger class does not
    # propagate to the root logger caplog listens on: listen on the estimator's logger itself.
    logger = logging.getLogger("depth_node.runtime.estimator")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            estimator = DepthEstimator(
                make_linear_depth_model(tmp_path / "m.onnx"),
                providers=("tensorrt", "cuda", "cpu"),
                trt_cache_dir=tmp_path / "trt",
            )
    finally:
        logger.removeHandler(caplog.handler)
    available = set(__import__("onnxruntime").get_available_providers())
    assert estimator.provider == estimator.session.get_providers()[0]
    if "CUDAExecutionProvider" not in available:
        assert estimator.provider == "CPUExecutionProvider"
        assert "cuda" in caplog.text and "not available" in caplog.text
    assert resolve_providers(["TRT-unknown", "cpu", "CPUExecutionProvider"], ["CPUExecutionProvider"]) == [
        "CPUExecutionProvider"
    ]


def test_no_available_provider(tmp_path: Path) -> None:
    path = make_linear_depth_model(tmp_path / "m.onnx")
    with pytest.raises(ModelLoadError) as error:
        DepthEstimator(path, providers=("definitely-not-a-provider",))
    assert "available" in _assert_one_line(error)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as error:
        DepthEstimator(tmp_path / "nope.onnx")
    assert "not found" in _assert_one_line(error)
    with pytest.raises(ModelLoadError) as error:
        DepthEstimator(write_corrupt_model(tmp_path / "bad.onnx"))
    assert "not a valid ONNX model" in _assert_one_line(error)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_name": "input"}, "input named 'image'"),
        ({"output_name": "disp"}, "output named 'depth'"),
        ({"output_channels": 2}, "expected [N,1,H,W]"),
        ({"input_channels": 1}, "expected [N,3,H,W]"),
        ({"metadata": {"input_width": "32"}}, "metadata says 32x12"),
        ({"drop_metadata": ("max_depth", "source")}, "lack max_depth, source"),
        ({"metadata": {"min_depth": "abc"}}, "bad numeric"),
        ({"metadata": {"min_depth": "50", "max_depth": "10"}}, "min_depth < max_depth"),
    ],
)
def test_contract_violations_are_one_line_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    path = make_linear_depth_model(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(ModelLoadError) as error:
        DepthEstimator(path, providers=("cpu",))
    assert message in _assert_one_line(error)


def test_dynamic_spatial_dims_take_the_size_from_metadata(tmp_path: Path) -> None:
    path = make_linear_depth_model(tmp_path / "dyn.onnx", height=10, width=20, spatial_dims=("H", "W"))
    estimator = DepthEstimator(path, providers=("cpu",))
    assert (estimator.info.input_height, estimator.info.input_width) == (10, 20)
    assert estimator.infer(np.zeros((1, 3, 10, 20), np.float32)).shape == (1, 1, 10, 20)


def test_bad_batches(tmp_path: Path) -> None:
    estimator = DepthEstimator(make_linear_depth_model(tmp_path / "m.onnx", batch=1), providers=("cpu",))
    with pytest.raises(InputShapeError) as error:
        estimator.infer(np.zeros((1, 3, 13, 16), np.float32))
    assert "[N,3,12,16]" in _assert_one_line(error)
    with pytest.raises(InputShapeError, match="fixed batch size 1"):
        estimator.infer(np.zeros((2, 3, 12, 16), np.float32))
    # float64 input is converted, not rejected
    assert estimator.infer(np.zeros((1, 3, 12, 16))).dtype == np.float32


def test_scale_is_metric_fallback_from_training_mode() -> None:
    base = {k: "1" for k in ("input_height", "input_width", "metric_scale")}
    base.update(min_depth="0.1", max_depth="80", backbone="resnet18", source="x")
    assert parse_model_info(dict(base, training_mode="self_supervised+velocity"), "m").scale_is_metric
    assert parse_model_info(dict(base, training_mode="supervised"), "m").scale_is_metric
    assert not parse_model_info(dict(base, training_mode="self_supervised"), "m").scale_is_metric
    assert not parse_model_info(dict(base, training_mode="mono"), "m").scale_is_metric
    assert parse_model_info(dict(base, training_mode="mono", metric_scale="31.2"), "m").scale_is_metric
    assert parse_model_info(dict(base, training_mode="mono"), "fallback-name").name == "fallback-name"


# ------------------------------------------------ bad model files: one line each, before any frame

# What each kind of bad file must be told apart by (test/onnx_models.py: bad_model_files).
BAD_MODEL_MESSAGES = {
    "empty": "is empty (0 bytes); expected an ONNX model",
    "directory": "is a directory; expected an .onnx file",
    "garbage": "not a valid ONNX model (",
    "truncated": "not a valid ONNX model (field 7 runs past the end of its message",
    "initializer without data": "not a valid ONNX model ([ONNXRuntimeError]",  # ORT's words follow
    "wrong input rank": "image has shape ['N', 3, 12], expected [N,3,H,W]",
    "channels-last input": "image has shape ['N', 12, 16, 3], expected [N,3,H,W]",
    "wrong output rank": "depth has shape ['N', 12, 16], expected [N,1,H,W]",
    "half-size depth output": "depth output is [1, 1, 6, 8] for a [1,3,12,16] input, expected [1,1,12,16]",
    "wrong channel count": "image has shape ['N', 1, 12, 16], expected [N,3,H,W]",
    "wrong input name": "expected one input named 'image' [N,3,H,W], got inputs ['input']",
    "no depth output": "expected an output named 'depth' [N,1,H,W], got outputs ['disp']",
    "no metadata": "metadata_props lack input_height, input_width, min_depth, max_depth, metric_scale",
    "missing metadata keys": "metadata_props lack input_height, min_depth, backbone (required: ",
    "bad metadata value": "bad numeric metadata_props value max_depth='far', expected a number",
    "negative metadata value": "need 0 < min_depth < max_depth < inf, got -0.5 and 100.0",
    "inconsistent metadata": "image is 16x12 but metadata says 16x24",
    "min_depth not below max_depth": "need 0 < min_depth < max_depth < inf, got 80.0 and 80.0",
    "huge input size": "input size 16x100000 (input_width x input_height) must be between 1 and 8192",
    "metadata not UTF-8": "metadata_props or tensor names are not UTF-8 text",
    "external data outside its folder": "keeps its data in '../secret.bin', outside the model's folder",
    "external data at an absolute path": "an absolute path; expected a path relative to the model's folder",
    "external data missing": "keeps its data in 'weights.bin', which does not exist",
}


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return bad_model_files(tmp_path_factory.mktemp("bad_models"))


def test_every_bad_model_kind_has_a_message(bad_models: dict[str, Path]) -> None:
    assert set(bad_models) == set(BAD_MODEL_MESSAGES)


@pytest.mark.parametrize("kind", sorted(BAD_MODEL_MESSAGES))
def test_bad_model_files_are_one_line_errors_naming_the_file(bad_models: dict[str, Path], kind: str) -> None:
    path = bad_models[kind]
    with pytest.raises(ModelLoadError) as error:
        DepthEstimator(path, providers=("cpu",), threads=1)
    text = _assert_one_line(error)
    assert BAD_MODEL_MESSAGES[kind] in text
    assert path.name in text and len(text) < 400


def test_external_data_inside_the_models_folder_loads(tmp_path: Path) -> None:
    batch = np.full((1, 3, 12, 16), 0.5, np.float32)
    for location in ("weights.bin", "data/b.bin", "data/../weights2.bin"):
        path = make_external_data_model(tmp_path / f"m{len(location)}.onnx", location)
        estimator = DepthEstimator(path, providers=("cpu",), threads=1)
        np.testing.assert_allclose(estimator.infer(batch), expected_depth(batch, 1.0, 10.0), rtol=1e-6)


def test_external_data_through_a_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.array([10.0], np.float32).tobytes())
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").symlink_to(secret)
    path = make_external_data_model(tmp_path / "model" / "m.onnx", "weights.bin", data_file=secret)
    with pytest.raises(ModelLoadError) as error:
        DepthEstimator(path, providers=("cpu",))
    assert "outside the model's folder" in _assert_one_line(error)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    with pytest.raises(ModelLoadError) as error:
        DepthEstimator(fifo, providers=("cpu",))
    assert "not a regular file" in _assert_one_line(error)


def test_every_cut_and_many_byte_flips_of_a_model_load_or_fail_in_one_line(tmp_path: Path) -> None:
    """Truncated at every byte, or with random bytes changed: a ModelLoadError or a working model,
    never another exception (nor a crash or a hang of the test process)."""
    valid = make_linear_depth_model(tmp_path / "valid.onnx").read_bytes()
    rng = np.random.default_rng(7)
    variants = [valid[:cut] for cut in range(len(valid))]
    for _ in range(300):
        flipped = bytearray(valid)
        for at in rng.integers(0, len(valid), size=rng.integers(1, 4)):
            flipped[at] = int(rng.integers(0, 256))
        variants.append(bytes(flipped))
    path = tmp_path / "variant.onnx"
    loaded = refused = 0
    for data in variants:
        path.write_bytes(data)
        try:
            DepthEstimator(path, providers=("cpu",), threads=1)
            loaded += 1
        except ModelLoadError as error:
            assert str(error) and "\n" not in str(error)
            refused += 1
    assert refused >= len(valid)  # every strict prefix lacks the metadata at the end, at least
    assert loaded + refused == len(variants)
