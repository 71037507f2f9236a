"""depth_node.runtime.model_file: the checks made on an ONNX file before ONNX Runtime opens it.

The estimator-level errors (each bad file kind, one line) are in test_estimator.py; here, the places
external data can hide that the tiny linear model does not have: Constant nodes deep inside subgraphs,
sparse initializers, an EXTERNAL data_location without a location.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx_models import make_external_data_model

from depth_node.runtime.errors import ModelLoadError
from depth_node.runtime.model_file import ExternalData, check_model_file, scan_model


def _external_tensor(name: str, location: str | None) -> TensorProto:
    tensor = helper.make_tensor(name, TensorProto.FLOAT, [1], np.ones(1, np.float32).tobytes(), raw=True)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    if location is not None:
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", location
    return tensor


def _write(path: Path, graph: onnx.GraphProto) -> Path:
    path.write_bytes(helper.make_model(graph).SerializeToString())
    return path


def _nested_constant_graph(depth: int, location: str) -> onnx.GraphProto:
    """``depth`` If nodes, each in the then-branch of the one above; the innermost branch holds a
    Constant whose tensor keeps its data in ``location``."""
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    constant = helper.make_node("Constant", [], ["y"], value=_external_tensor("hidden", location))
    branch = helper.make_graph([constant], "leaf", [], [out])
    plain = helper.make_graph([helper.make_node("Constant", [], ["y"], value_float=1.0)], "plain", [], [out])
    for level in range(depth):
        node = helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=plain)
        branch = helper.make_graph([node], f"level{level}", [], [out])
    return helper.make_graph(branch.node, "main", [cond], [out])


def test_external_data_deep_in_subgraph_constants_is_found_and_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "nested.onnx", _nested_constant_graph(20, "../../etc/passwd"))
    assert scan_model(path.read_bytes()) == [ExternalData("hidden", "../../etc/passwd")]
    with pytest.raises(
        ModelLoadError, match=r"tensor 'hidden' keeps its data in '../../etc/passwd', outside"
    ):
        check_model_file(path)


def test_external_data_of_sparse_initializers_and_without_location(tmp_path: Path) -> None:
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    sparse = helper.make_sparse_tensor(
        _external_tensor("values", "/abs/values.bin"),
        helper.make_tensor("idx", TensorProto.INT64, [1], [2]),
        [4],
    )
    graph = helper.make_graph([], "sparse", [], [out], sparse_initializer=[sparse])
    with pytest.raises(ModelLoadError, match="an absolute path"):
        check_model_file(_write(tmp_path / "sparse.onnx", graph))

    graph = helper.make_graph([], "no_location", [], [out], initializer=[_external_tensor("w", None)])
    with pytest.raises(ModelLoadError, match="tensor 'w' has external data without a location"):
        check_model_file(_write(tmp_path / "no_location.onnx", graph))


def test_well_formed_files_pass_and_others_are_named(tmp_path: Path) -> None:
    inside = make_external_data_model(tmp_path / "m.onnx", "data/w.bin")
    check_model_file(inside)
    assert scan_model(inside.read_bytes()) == [ExternalData("b", "data/w.bin")]
    for data, reason in (
        (b"\x08\x08", "no graph"),  # a valid protobuf (ir_version 8) that is no model
        (b"\x3a\x05\x0a", "field 7 runs past the end"),  # a graph cut short
        (b"\x3a\x80", "a number runs past the end"),
        (b"\x0f", "wire type 7 in field 1"),
    ):
        path = tmp_path / "bad.onnx"
        path.write_bytes(data)
        with pytest.raises(ModelLoadError, match=f"not a valid ONNX model \\({reason}"):
            check_model_file(path)
