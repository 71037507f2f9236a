"""Turn an fp16 ONNX export into one that computes in fp32, keeping its weights stored in fp16.

CPUs run fp16 slower than fp32 (DESIGN.md, "Precision per provider"). A model whose checkpoint is gone
can still be made a CPU model: each fp16 weight gets a Cast to float32 (ONNX Runtime folds these once
when it opens the model, so every layer then computes in fp32), and the graph's own casts, constants
and tensor types move from float16 to float32. The file stays the fp16 file's size and the depth is the
fp16 model's up to its rounding of activations. With the checkpoint, export fp32 instead.

CLI: ``python -m training.widen models/x.fp16.onnx models/x.onnx``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT16, FLOAT = TensorProto.FLOAT16, TensorProto.FLOAT


def _widened_tensor(tensor: TensorProto) -> TensorProto:
    if tensor.data_type != FLOAT16:
        return tensor
    return numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name)


def _widen_graph(graph: onnx.GraphProto) -> None:
    stored = [init for init in graph.initializer if init.data_type == FLOAT16]
    casts = []
    for init in stored:  # the weight keeps its fp16 bytes under a new name; a Cast gives the old one
        name = init.name
        init.name = f"{name}__fp16"
        casts.append(helper.make_node("Cast", [init.name], [name], to=FLOAT, name=f"{name}__widen"))
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                attribute.t.CopyFrom(_widened_tensor(attribute.t))
            elif attribute.type == onnx.AttributeProto.GRAPH:
                _widen_graph(attribute.g)
            elif attribute.name in ("to", "dtype") and attribute.i == FLOAT16:
                attribute.i = FLOAT
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.type.tensor_type.elem_type == FLOAT16:
            value.type.tensor_type.elem_type = FLOAT


def widen(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` that computes in float32; its float16 weights stay float16 in the file."""
    wide = onnx.ModelProto()
    wide.CopyFrom(model)
    _widen_graph(wide.graph)
    meta = {p.key: p.value for p in wide.metadata_props}
    if meta.get("precision") == "fp16":
        meta.update(precision="fp32", weights_stored="fp16")
        del wide.metadata_props[:]
        for key, value in meta.items():
            wide.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(wide, full_check=True)
    return wide


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.widen", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="fp16 ONNX model")
    parser.add_argument("out", type=Path, help="where to write the fp32-computing model")
    args = parser.parse_args(argv)
    try:
        model = onnx.load(str(args.source))
    except (OSError, onnx.onnx_cpp2py_export.checker.ValidationError, Exception) as exc:
        print(f"widen: cannot read {args.source}: {exc}", file=sys.stderr)
        return 2
    onnx.save(widen(model), str(args.out))
    print(f"widen: {args.source} -> {args.out} (computes in fp32, weights stored in fp16)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
