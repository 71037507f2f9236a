"""Checks on an ONNX model file made before ONNX Runtime opens it.

ONNX Runtime turns a bad file into a long, private exception at best; and older releases (setup.py
allows 1.17) read a tensor's *external data* from wherever the model's ``location`` entry points,
``../../secret.bin`` and absolute paths included (1.32 refuses those itself). So the file is checked
here first, whatever the installed version: a regular, non-empty file, a well-formed protobuf with a
graph, and every external data file inside the model's folder. The car's runtime does not install the
``onnx`` package (setup.py: training extra only), so the few ModelProto fields needed are read from
the protobuf wire format directly (field numbers from onnx/onnx.proto, stable since IR version 3).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from depth_node.runtime.errors import ModelLoadError

# Sub-messages that can hold a TensorProto, by message kind: field number -> kind of the field's message.
# Tensors sit in graph initializers, Constant/If/Loop node attributes (also inside functions and
# subgraphs), sparse tensors and training graphs; ONNX Runtime loads external data for all of them.
_CHILDREN: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "function": {7: "node", 11: "attribute"},
    "training": {1: "graph", 2: "graph"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {},
}
_MODEL_GRAPH = 7
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_LENGTH_DELIMITED = 2


class _Malformed(ValueError):
    """The bytes are not a well-formed protobuf message."""


@dataclass(frozen=True)
class ExternalData:
    """One tensor whose bytes live in another file (``location`` as written in the model)."""

    tensor: str
    location: str


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _Malformed("a number runs past the end of its message")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Malformed("a number longer than 10 bytes")


def _fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value or sub-message start, sub-message end) of one message."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        value = sub_end = 0
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == _LENGTH_DELIMITED:
            length, pos = _varint(buf, pos, end)
            value, sub_end = pos, pos + length
            pos = sub_end
        else:  # 3/4 are the deprecated groups (never in ONNX), 6/7 do not exist
            raise _Malformed(f"wire type {wire} in field {number}")
        if pos > end:
            raise _Malformed(f"field {number} runs past the end of its message")
        yield number, wire, value, sub_end


def _text(buf: bytes, start: int, end: int) -> str:
    return buf[start:end].decode("utf-8", errors="replace")


def _tensor_external_data(buf: bytes, start: int, end: int) -> ExternalData | None:
    name, location, external = "", None, False
    for number, wire, value, sub_end in _fields(buf, start, end):
        if number == _TENSOR_NAME and wire == _LENGTH_DELIMITED:
            name = _text(buf, value, sub_end)
        elif number == _TENSOR_DATA_LOCATION and wire == 0:
            external = external or value == _EXTERNAL
        elif number == _TENSOR_EXTERNAL_DATA and wire == _LENGTH_DELIMITED:
            external = True
            entry = {
                n: _text(buf, v, e) for n, w, v, e in _fields(buf, value, sub_end) if w == _LENGTH_DELIMITED
            }
            if entry.get(_ENTRY_KEY) == "location":
                location = entry.get(_ENTRY_VALUE, "")
    return ExternalData(name, location or "") if external else None


def scan_model(buf: bytes) -> list[ExternalData]:
    """The external data references of a serialized ModelProto; ValueError if it is not one."""
    found: list[ExternalData] = []
    has_graph = False
    stack = [("model", 0, len(buf))]  # a stack, not recursion: subgraphs may nest deeply
    while stack:
        kind, start, end = stack.pop()
        if kind == "tensor":
            external = _tensor_external_data(buf, start, end)
            if external is not None:
                found.append(external)
            continue
        children = _CHILDREN[kind]
        for number, wire, value, sub_end in _fields(buf, start, end):
            child = children.get(number)
            if child is None:
                continue
            if wire != _LENGTH_DELIMITED:
                raise _Malformed(f"field {number} of a {kind} message is not a message")
            has_graph = has_graph or (kind == "model" and number == _MODEL_GRAPH)
            stack.append((child, value, sub_end))
    if not has_graph:
        raise _Malformed("no graph")
    return found


def _check_external(path: Path, data: ExternalData) -> None:
    where = f"model {path}: tensor {data.tensor!r} keeps its data in {data.location!r}"
    if not data.location:
        raise ModelLoadError(f"model {path}: tensor {data.tensor!r} has external data without a location")
    if "\x00" in data.location:
        raise ModelLoadError(f"{where}: expected a file name without NUL characters")
    if PurePosixPath(data.location).is_absolute() or PureWindowsPath(data.location).is_absolute():
        raise ModelLoadError(f"{where}, an absolute path; expected a path relative to the model's folder")
    folder = path.parent.resolve()
    target = (folder / data.location).resolve()  # resolves ".." and symbolic links alike
    if not target.is_relative_to(folder):
        raise ModelLoadError(f"{where}, outside the model's folder {folder}; expected a file inside it")
    if not target.is_file():
        raise ModelLoadError(f"{where}, which does not exist; expected it next to the model")


def check_model_file(path: Path) -> None:
    """ModelLoadError (one line naming ``path``) unless it is a regular, non-empty ONNX protobuf
    whose external data files all exist inside the model's folder."""
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelLoadError(f"model path {path} is a directory; expected an .onnx file")
    if not path.is_file():  # a FIFO or device would block or never end
        raise ModelLoadError(f"model path {path} is not a regular file; expected an .onnx file")
    try:
        buf = path.read_bytes()
    except OSError as error:
        raise ModelLoadError(f"cannot read model file {path}: {error.strerror or error}") from None
    if not buf:
        raise ModelLoadError(f"model file {path} is empty (0 bytes); expected an ONNX model")
    try:
        external = scan_model(buf)
    except _Malformed as error:
        raise ModelLoadError(
            f"cannot load model {path}: not a valid ONNX model ({error}; truncated, or not an ONNX protobuf)"
        ) from None
    for data in external:
        _check_external(path, data)
