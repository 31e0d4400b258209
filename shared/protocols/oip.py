"""The Open Inference Protocol v2 (KServe / Triton REST) as a pure codec: an infer request
into rows, predictions into an infer response, a model into its metadata (architecture.md §3).

https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/ — with Triton's
binary tensor data extension on input (what `tritonclient` sends by default). Answers are
always JSON: every client also reads JSON outputs.

A tabular model takes one input per feature (shape `[n]` or `[n, 1]`): row i is the object
{input name: its i-th value}, keys in the order the inputs were sent (River sums over a dict
in key order). A text model takes one BYTES input, one text per row.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.errors import ApiError

PREFIX = "/v2"
MODELS_PREFIX = "/v2/models/"  # tenant-scoped like /api/v1 (shared/edge/request.py)
PLATFORM = "river"
SERVER_NAME = "online-ml"
SERVER_VERSION = "0.1.0"  # pyproject.toml's version (a test keeps them equal)
PREDICT, PREDICT_PROBA = "predict", "predict_proba"
# issue 17: a detector answers its score (and a filter's flag), a clusterer its cluster id
SCORE, IS_ANOMALY, CLUSTER = "score", "is_anomaly", "cluster"
UNSUPERVISED_OUTPUTS = {
    "anomaly": {SCORE: "FP64", IS_ANOMALY: "BOOL"},
    "clustering": {CLUSTER: "INT64"},
}
# the request id also names each row's kept prediction ("{id}" or "{id}:{row}"), so it has
# the shape of a prediction id (issue 14 §1)
# A delayed label names a row's prediction "{id}:{row}" (row_ids): with at most 100,000 rows
# (OIP_MAX_ROWS) that adds 6 characters, so 1-120 keeps every row id a valid prediction id
# (1-128 of the same characters, shared/schemas.py)
ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,120}")

# a learned feature's kind (shared/learning.py) as the datatype the metadata declares
DATATYPE_OF_KIND = {"int": "INT64", "float": "FP64", "bool": "BOOL", "str": "BYTES"}
# the datatypes an input may have, with their little-endian layout in binary tensor data
_NUMERIC = {
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
DATATYPES = frozenset({"BOOL", "BYTES", *_NUMERIC})


@dataclass(frozen=True)
class Bounds:
    """How much one infer request may ask (settings OIP_MAX_ROWS, MAX_FEATURES_PER_SAMPLE)."""

    max_rows: int
    max_inputs: int


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    columns: dict[str, list[Any]]  # input name → its n values, in the order sent
    datatypes: dict[str, str]
    rows: int
    outputs: tuple[str, ...] | None  # the outputs asked for; None: all


def bad(message: str, code: str = "invalid_infer_request") -> ApiError:
    return ApiError(400, code, message)


def is_oip_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def error_body(message: str) -> dict[str, str]:
    """OIP's error shape (the request id is in the X-Request-ID header)."""
    return {"error": message}


def error_status(status: int) -> int:
    """OIP answers bad input with 400: our 422 (a valid request we cannot serve: a value
    over a bound, a wrong type for this model) is a bad input here."""
    return 400 if status == 422 else status


# ----- decoding ---------------------------------------------------------------------------


def parse_infer(body: bytes, header_length: str | None, bounds: Bounds) -> InferRequest:
    """An infer request: JSON, or with `Inference-Header-Content-Length` a JSON header
    followed by the inputs' binary tensor data. 400 naming what is wrong."""
    binary = b""
    if header_length is not None:
        if not header_length.isascii() or not header_length.isdigit():
            raise bad("Inference-Header-Content-Length must be a byte count")
        split = int(header_length)
        if split > len(body):
            raise bad("Inference-Header-Content-Length is longer than the body")
        body, binary = body[:split], body[split:]
    try:
        doc = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise bad("the infer request is not valid JSON") from None
    if not isinstance(doc, dict):
        raise bad("the infer request must be a JSON object")
    request_id = doc.get("id")
    if request_id is not None and (
        not isinstance(request_id, str) or not ID_PATTERN.fullmatch(request_id)
    ):
        raise bad("id must be 1-120 characters of A-Z a-z 0-9 _ . : -")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad("inputs must be a non-empty list")
    if len(inputs) > bounds.max_inputs:
        raise bad(
            f"the number of inputs is {len(inputs)}; MAX_FEATURES_PER_SAMPLE is "
            f"{bounds.max_inputs}",
            "too_many_inputs",
        )
    columns: dict[str, list[Any]] = {}
    datatypes: dict[str, str] = {}
    rows: int | None = None
    offset = 0
    for position, tensor in enumerate(inputs):
        name, datatype, n = _header(tensor, position, bounds)
        if name in columns:
            raise bad(f"input '{name}' is sent twice")
        if rows is None:
            rows = n
        elif n != rows:
            raise bad(f"input '{name}' has {n} rows, the first input {rows}: send one per row")
        size = _binary_size(tensor, name)
        if size is None:
            values = _json_values(tensor.get("data"), name, datatype, n)
        else:
            if size > len(binary) - offset:
                raise bad(f"input '{name}': binary_data_size runs past the end of the body")
            values = _binary_values(binary[offset : offset + size], name, datatype, n)
            offset += size
        columns[name], datatypes[name] = values, datatype
    if offset != len(binary):
        raise bad("the body holds binary data that no input's binary_data_size claims")
    assert rows is not None
    return InferRequest(request_id, columns, datatypes, rows, _outputs(doc.get("outputs")))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _header(tensor: Any, position: int, bounds: Bounds) -> tuple[str, str, int]:
    if not isinstance(tensor, dict):
        raise bad(f"inputs[{position}] must be an object")
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise bad(f"inputs[{position}].name must be a non-empty string")
    datatype = tensor.get("datatype")
    if datatype not in DATATYPES:
        raise bad(
            f"input '{name}': datatype must be one of {', '.join(sorted(DATATYPES))}",
            "unsupported_datatype",
        )
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(type(d) is int for d in shape)
        or (len(shape) == 2 and shape[1] != 1)
    ):
        raise bad(f"input '{name}': shape must be [n] or [n, 1]")
    n = shape[0]
    if n < 1:
        raise bad(f"input '{name}': send at least one row")
    if n > bounds.max_rows:
        raise bad(f"the number of rows is {n}; OIP_MAX_ROWS is {bounds.max_rows}", "too_many_rows")
    return name, datatype, n


def _binary_size(tensor: dict[str, Any], name: str) -> int | None:
    parameters = tensor.get("parameters")
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise bad(f"input '{name}': parameters must be an object")
    if "shared_memory_region" in parameters:
        raise bad(f"input '{name}': shared memory is not supported over this server")
    size = parameters.get("binary_data_size")
    if size is None:
        return None
    if type(size) is not int or size < 0:
        raise bad(f"input '{name}': binary_data_size must be a byte count")
    return size


def _json_values(data: Any, name: str, datatype: str, n: int) -> list[Any]:
    if not isinstance(data, list):
        raise bad(f"input '{name}': data must be a list (or binary_data_size a parameter)")
    flat: list[Any] = []
    for item in data:  # [v, ...] or, for shape [n, 1], [[v], ...]
        if isinstance(item, list):
            flat.extend(item)
        else:
            flat.append(item)
    if len(flat) != n:
        raise bad(f"input '{name}': shape says {n} values, data holds {len(flat)}")
    return [_json_value(v, name, datatype) for v in flat]


def _json_value(value: Any, name: str, datatype: str) -> Any:
    kind = type(value)
    if datatype == "BYTES":
        if kind is str:
            return value
    elif datatype == "BOOL":
        if kind is bool:
            return value
    elif datatype.startswith("FP"):
        if kind is float:
            return value
        if kind is int:
            try:
                return float(value)
            except OverflowError:
                raise bad(f"input '{name}': {str(value)[:32]}… is too large") from None
    elif kind is int:  # INT*, UINT*
        return value
    raise bad(f"input '{name}': {_shown(value)} is not a {datatype} value")


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _binary_values(raw: bytes, name: str, datatype: str, n: int) -> list[Any]:
    if datatype == "BYTES":
        return _binary_strings(raw, name, n)
    if datatype == "BOOL":
        if len(raw) != n:
            raise bad(f"input '{name}': {n} BOOL values are {n} bytes, not {len(raw)}")
        return [byte != 0 for byte in raw]
    layout = np.dtype(_NUMERIC[datatype])
    if len(raw) != n * layout.itemsize:
        raise bad(
            f"input '{name}': {n} {datatype} values are {n * layout.itemsize} bytes, not {len(raw)}"
        )
    values: list[Any] = np.frombuffer(raw, dtype=layout).tolist()
    return values


def _binary_strings(raw: bytes, name: str, n: int) -> list[str]:
    """Triton's serialised BYTES: each element a 4-byte little-endian length, then its bytes."""
    values, offset = [], 0
    for _ in range(n):
        if offset + 4 > len(raw):
            raise bad(f"input '{name}': the BYTES data ends before its {n} elements")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if length > len(raw) - offset:
            raise bad(f"input '{name}': a BYTES element runs past the end of its data")
        try:
            values.append(raw[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise bad(f"input '{name}': a BYTES element is not UTF-8 text") from None
        offset += length
    if offset != len(raw):
        raise bad(f"input '{name}': the BYTES data holds more than its {n} elements")
    return values


def _outputs(outputs: Any) -> tuple[str, ...] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise bad('outputs must be a list of {"name": ...}')
    if len(outputs) > 2:
        raise bad(f"a model has at most two outputs ({PREDICT}, {PREDICT_PROBA})")
    return tuple(o["name"] for o in outputs)


def rows_of(request: InferRequest, *, text_input: bool) -> list[Any]:
    """The x of each row: a text model's texts, or one {feature: value} object per row."""
    if text_input:
        if len(request.columns) != 1:
            raise bad("this model reads text: send one BYTES input, one text per row")
        [(name, values)] = request.columns.items()
        if request.datatypes[name] != "BYTES":
            raise bad(f"this model reads text: input '{name}' must be BYTES")
        return values
    columns = list(request.columns.items())
    return [{name: values[i] for name, values in columns} for i in range(request.rows)]


def row_ids(request_id: str | None, rows: int) -> list[str] | None:
    """The id each row's prediction is kept under for delayed labels: the request id for one
    row, "{id}:{row}" for several (issue 14 §2); None without an id."""
    if request_id is None:
        return None
    return [request_id] if rows == 1 else [f"{request_id}:{row}" for row in range(rows)]


# ----- encoding ---------------------------------------------------------------------------


def infer_response(
    model_name: str,
    request: InferRequest,
    task: str,
    batch: dict[str, Any],
) -> dict[str, Any]:
    """The answer to `request` from the batch prediction's results (one per row, in order).
    A row the model could not take fails the whole request (400 naming the row): OIP has no
    per-row error."""
    results: list[dict[str, Any]] = batch["results"]
    for row, result in enumerate(results):
        if "error" in result:
            raise bad(f"row {row}: {result['error']['message']}", result["error"]["code"])
    classifier = task == "classification"
    available = [PREDICT, PREDICT_PROBA] if classifier else [PREDICT]
    unsupervised = UNSUPERVISED_OUTPUTS.get(task)
    if unsupervised is not None:
        # is_anomaly only when a filter flags (every row of one model alike)
        available = [o for o in unsupervised if all(o in r for r in results)]
    wanted = list(request.outputs) if request.outputs is not None else available
    for name in wanted:
        if name not in available:
            raise bad(f"output '{name}' does not exist; this model has {', '.join(available)}")
    predictions = [r.get("prediction") for r in results]
    outputs: list[dict[str, Any]] = []
    for name in wanted:
        if unsupervised is not None:
            values = [r[name] for r in results]
            outputs.append(_tensor(name, unsupervised[name], [len(values)], values))
        elif name == PREDICT_PROBA:
            outputs.append(_probabilities(results))
        elif classifier:
            labels = [_label(p) for p in predictions]
            outputs.append(_tensor(PREDICT, "BYTES", [len(labels)], labels))
        else:
            outputs.append(_tensor(PREDICT, "FP64", [len(predictions)], predictions))
    response: dict[str, Any] = {
        "model_name": model_name,
        "model_version": str(batch.get("model_version")),
    }
    if request.id is not None:
        response["id"] = request.id
    parameters: dict[str, Any] = {}
    if batch.get("seq") is not None:
        parameters["seq"] = batch["seq"]  # the live model's state that answered
    if any(r.get("degraded") for r in results):
        parameters["degraded"] = True  # a non-finite output, answered as null
    if all("prediction_id" in r for r in results):
        # what each row is kept under for a delayed label (POST …/labels): the request's id
        # ("{id}" or "{id}:{row}"), or ids the server chose when the request had none
        parameters["prediction_ids"] = json.dumps([r["prediction_id"] for r in results])
    if parameters:
        response["parameters"] = parameters
    response["outputs"] = outputs
    return response


def _tensor(name: str, datatype: str, shape: list[int], data: list[Any]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def _label(prediction: Any) -> str | None:
    # the class as our own answers key probabilities (shared/learning.py label_key)
    if prediction is None or isinstance(prediction, str):
        return prediction
    return json.dumps(prediction)


def _probabilities(results: list[dict[str, Any]]) -> dict[str, Any]:
    """FP64 [n, k], row-major; the classes in the order first met, named in `parameters`.
    A class missing from a row's probabilities (River leaves out what it never saw there)
    is probability 0."""
    classes: dict[str, None] = {}
    for result in results:
        classes.update(dict.fromkeys(result.get("proba") or {}))
    order = list(classes)
    data = [(r.get("proba") or {}).get(c, 0.0) for r in results for c in order]
    tensor = _tensor(PREDICT_PROBA, "FP64", [len(results), len(order)], data)
    tensor["parameters"] = {"classes": json.dumps(order)}  # a parameter is a string, not a list
    return tensor


def model_metadata(name: str, versions: list[int], description: dict[str, Any]) -> dict[str, Any]:
    """OIP model metadata: one input per feature the model has learned (a text model: one
    BYTES input), its outputs, and the registered versions."""
    if description["text_input"]:
        inputs = [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    else:
        inputs = [
            {"name": feature, "datatype": DATATYPE_OF_KIND[kind], "shape": [-1]}
            for feature, kind in description["features"].items()
        ]
    outputs: list[dict[str, Any]] = []
    unsupervised = UNSUPERVISED_OUTPUTS.get(description["task"])
    if unsupervised is not None:
        # is_anomaly is answered only by a filtered detector; metadata lists what may come
        outputs += [{"name": n, "datatype": t, "shape": [-1]} for n, t in unsupervised.items()]
    elif description["task"] == "classification":
        outputs.append({"name": PREDICT, "datatype": "BYTES", "shape": [-1]})
        outputs.append({"name": PREDICT_PROBA, "datatype": "FP64", "shape": [-1, -1]})
    else:
        outputs.append({"name": PREDICT, "datatype": "FP64", "shape": [-1]})
    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": PLATFORM,
        "inputs": inputs,
        "outputs": outputs,
    }


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": ["binary_tensor_data"]}
