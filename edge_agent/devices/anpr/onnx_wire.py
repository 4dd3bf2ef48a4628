"""Two edits of an ONNX file done on its protobuf wire format, without the `onnx` package.

An ONNX file is one serialised `ModelProto`. Only two things are needed of it here:

- `with_output(model, name)`: the model with one more graph output, an intermediate
  tensor named `name` (the line reader's per-step features, which the plate reader
  reads). Protobuf merges repeated occurrences of a singular message field, so a
  second `graph` field holding just one `output` entry, appended to the bytes, adds
  that output to the graph; onnxruntime infers its type.
- `initializer(model, name)`: a weight tensor of the model as a numpy array (float32
  raw data only), for training a reader that starts from the model's own weights.

Field numbers are those of onnx.proto: ModelProto.graph = 7; GraphProto.initializer = 5,
GraphProto.output = 12; ValueInfoProto.name = 1; TensorProto.dims = 1, data_type = 2,
name = 8, raw_data = 9.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_MODEL_GRAPH, _GRAPH_INITIALIZER, _GRAPH_OUTPUT, _VALUE_INFO_NAME = 7, 5, 12, 1
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_NAME, _TENSOR_RAW_DATA = 1, 2, 8, 9
_FLOAT = 1  # TensorProto.DataType.FLOAT
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


def with_output(model: bytes, name: str) -> bytes:
    """The model with the tensor `name` as one more graph output."""
    output = _field(_VALUE_INFO_NAME, name.encode())
    return model + _field(_MODEL_GRAPH, _field(_GRAPH_OUTPUT, output))


def initializer(model: bytes, name: str) -> Any:
    """The float32 initializer `name` of the model's graph, shaped by its dims."""
    import numpy as np

    for field, graph in _fields(memoryview(model)):
        if field != _MODEL_GRAPH:
            continue
        for gfield, tensor in _fields(graph):
            if gfield != _GRAPH_INITIALIZER:
                continue
            dims, data_type, tensor_name, raw = [], None, None, None
            for tfield, value in _fields(tensor):
                if tfield == _TENSOR_DIMS:
                    dims.extend(_varints(value) if isinstance(value, memoryview) else [value])
                elif tfield == _TENSOR_DATA_TYPE:
                    data_type = value
                elif tfield == _TENSOR_NAME:
                    tensor_name = bytes(value).decode()
                elif tfield == _TENSOR_RAW_DATA:
                    raw = value
            if tensor_name != name:
                continue
            if data_type != _FLOAT or raw is None:
                raise ValueError(f"initializer {name!r} is not raw float32 data")
            return np.frombuffer(bytes(raw), dtype="<f4").reshape(dims).copy()
    raise KeyError(f"no initializer {name!r} in the model")


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: memoryview, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _varints(data: memoryview) -> list[int]:
    """A packed repeated varint field's values."""
    out, at = [], 0
    while at < len(data):
        value, at = _read_varint(data, at)
        out.append(value)
    return out


def _fields(data: memoryview) -> Iterator[tuple[int, Any]]:
    """(field number, value) of a message: an int for varints and fixed-width fields,
    a view of the bytes for length-delimited ones."""
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, at = _read_varint(data, at)
            yield number, value
        elif wire == _LENGTH_DELIMITED:
            size, at = _read_varint(data, at)
            yield number, data[at:at + size]
            at += size
        elif wire in (_FIXED64, _FIXED32):
            width = 8 if wire == _FIXED64 else 4
            yield number, int.from_bytes(data[at:at + width], "little")
            at += width
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
