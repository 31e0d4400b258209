"""The Open Inference Protocol codec (shared/protocols/oip.py): requests into rows, JSON and
binary tensor data alike; answers and metadata in the protocol's shape; 400 for bad input."""

from __future__ import annotations

import json
import struct
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.errors import ApiError
from shared.protocols import oip

BOUNDS = oip.Bounds(max_rows=10, max_inputs=3)


def parse(doc: dict[str, Any], bounds: oip.Bounds = BOUNDS) -> oip.InferRequest:
    return oip.parse_infer(json.dumps(doc).encode(), None, bounds)


def tensor(name: str, datatype: str, data: list[Any], shape: list[int] | None = None) -> dict:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


def test_tabular_rows_keep_the_inputs_order() -> None:
    request = parse(
        {
            "id": "req-1",
            "inputs": [
                tensor("b", "FP64", [1, 2.5]),
                tensor("a", "INT64", [[3], [4]], [2, 1]),
                tensor("c", "BOOL", [True, False]),
                tensor("d", "BYTES", ["x", "y"]),
            ],
        },
        oip.Bounds(10, 4),
    )
    rows = oip.rows_of(request, text_input=False)
    assert rows == [
        {"b": 1.0, "a": 3, "c": True, "d": "x"},
        {"b": 2.5, "a": 4, "c": False, "d": "y"},
    ]
    assert [list(r) for r in rows] == [["b", "a", "c", "d"]] * 2  # River sums in key order
    assert type(rows[0]["b"]) is float  # an FP64 sent as 1 is the float 1.0
    assert request.id == "req-1" and request.rows == 2 and request.outputs is None


def test_a_text_model_takes_one_bytes_input() -> None:
    request = parse({"inputs": [tensor("text", "BYTES", ["good film", "bad film"])]})
    assert oip.rows_of(request, text_input=True) == ["good film", "bad film"]
    two = parse({"inputs": [tensor("a", "BYTES", ["x"]), tensor("b", "BYTES", ["y"])]})
    with pytest.raises(ApiError, match="one BYTES input"):
        oip.rows_of(two, text_input=True)
    number = parse({"inputs": [tensor("text", "FP64", [1.0])]})
    with pytest.raises(ApiError, match="must be BYTES"):
        oip.rows_of(number, text_input=True)


def binary_request(inputs: list[tuple[dict[str, Any], bytes]]) -> tuple[bytes, str]:
    header = {"inputs": [{**t, "parameters": {"binary_data_size": len(raw)}} for t, raw in inputs]}
    text = json.dumps(header).encode()
    return text + b"".join(raw for _, raw in inputs), str(len(text))


def test_binary_tensor_data_decodes_as_json_would() -> None:
    strings = b"".join(struct.pack("<I", len(s)) + s for s in (b"abc", "é".encode()))
    body, split = binary_request(
        [
            ({"name": "f", "datatype": "FP32", "shape": [2]}, np.array([0.5, 2], "<f4").tobytes()),
            (
                {"name": "i", "datatype": "INT8", "shape": [2, 1]},
                np.array([-1, 7], "<i1").tobytes(),
            ),
            ({"name": "s", "datatype": "BYTES", "shape": [2]}, strings),
        ]
    )
    request = oip.parse_infer(body, split, BOUNDS)
    assert request.columns == {"f": [0.5, 2.0], "i": [-1, 7], "s": ["abc", "é"]}
    flag, split = binary_request([({"name": "b", "datatype": "BOOL", "shape": [2]}, b"\x01\x00")])
    assert oip.parse_infer(flag, split, BOUNDS).columns == {"b": [True, False]}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "inputs must be a non-empty list"),
        ({"inputs": []}, "inputs must be a non-empty list"),
        ({"inputs": [tensor("a", "FP64", [1.0])], "id": ""}, "id must be"),
        ({"inputs": [tensor("a", "FP64", [1.0])], "id": "a b"}, "id must be"),
        ({"inputs": [tensor("a", "FP64", [1.0])], "id": 5}, "id must be"),
        ({"inputs": ["a"]}, "must be an object"),
        ({"inputs": [tensor("", "FP64", [1.0])]}, "name must be a non-empty string"),
        ({"inputs": [tensor("a", "BF16", [1.0])]}, "datatype must be one of"),
        ({"inputs": [tensor("a", "FP64", [1.0], [1, 2])]}, r"shape must be \[n\] or \[n, 1\]"),
        ({"inputs": [tensor("a", "FP64", [1.0], [1, 1, 1])]}, "shape must be"),
        ({"inputs": [tensor("a", "FP64", [1.0], [True])]}, "shape must be"),
        ({"inputs": [tensor("a", "FP64", [], [0])]}, "at least one row"),
        ({"inputs": [tensor("a", "FP64", [1.0], [11])]}, "OIP_MAX_ROWS is 10"),
        ({"inputs": [tensor("a", "FP64", [1.0, 2.0], [1])]}, "shape says 1 values, data holds 2"),
        ({"inputs": [tensor("a", "FP64", [[[1.0]]], [1])]}, "is not a FP64 value"),
        ({"inputs": [tensor("a", "FP64", ["1"])]}, "is not a FP64 value"),
        ({"inputs": [tensor("a", "FP64", [True])]}, "is not a FP64 value"),
        ({"inputs": [tensor("a", "FP64", [None])]}, "is not a FP64 value"),
        ({"inputs": [tensor("a", "FP64", [10**400])]}, "too large"),
        ({"inputs": [tensor("a", "INT64", [1.5])]}, "is not a INT64 value"),
        ({"inputs": [tensor("a", "INT64", [False])]}, "is not a INT64 value"),
        ({"inputs": [tensor("a", "BOOL", [1])]}, "is not a BOOL value"),
        ({"inputs": [tensor("a", "BYTES", [1])]}, "is not a BYTES value"),
        ({"inputs": [{"name": "a", "datatype": "FP64", "shape": [1]}]}, "data must be a list"),
        (
            {"inputs": [tensor("a", "FP64", [1.0]), tensor("a", "FP64", [2.0])]},
            "'a' is sent twice",
        ),
        (
            {"inputs": [tensor("a", "FP64", [1.0]), tensor("b", "FP64", [1.0, 2.0])]},
            "'b' has 2 rows, the first input 1",
        ),
        ({"inputs": [tensor(c, "FP64", [1.0]) for c in "abcd"]}, "MAX_FEATURES_PER_SAMPLE is 3"),
        ({"inputs": [tensor("a", "FP64", [1.0])], "outputs": "predict"}, "outputs must be"),
        ({"inputs": [tensor("a", "FP64", [1.0])], "outputs": [{}]}, "outputs must be"),
        (
            {
                "inputs": [
                    {**tensor("a", "FP64", [1.0]), "parameters": {"shared_memory_region": "r"}}
                ]
            },
            "shared memory",
        ),
    ],
)
def test_bad_requests_are_400_naming_the_problem(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiError, match=message) as raised:
        parse(doc)
    assert raised.value.status == 400


_JSON_ONE = b'{"inputs": [{"name": "a", "datatype": "FP64", "shape": [1], "data": [1]}]}'


@pytest.mark.parametrize(
    ("body", "split", "message"),
    [
        (b"{", None, "not valid JSON"),
        (b'{"inputs": NaN}', None, "not valid JSON"),
        (b"[1]", None, "must be a JSON object"),
        (b"{}", "x", "byte count"),
        (b"{}", "99", "longer than the body"),
        (_JSON_ONE + b"\0", str(len(_JSON_ONE)), "no input's binary_data_size claims"),
    ],
)
def test_bad_bodies_are_400(body: bytes, split: str | None, message: str) -> None:
    with pytest.raises(ApiError, match=message) as raised:
        oip.parse_infer(body, split, BOUNDS)
    assert raised.value.status == 400


@pytest.mark.parametrize(
    ("datatype", "raw", "message"),
    [
        ("FP64", b"\0" * 7, "are 8 bytes, not 7"),
        ("BOOL", b"\0\0", "are 1 bytes, not 2"),
        ("BYTES", b"\1\0\0", "ends before"),
        ("BYTES", b"\5\0\0\0ab", "runs past the end"),
        ("BYTES", b"\1\0\0\0\xff", "not UTF-8"),
        ("BYTES", b"\1\0\0\0ab", "holds more than"),
    ],
)
def test_bad_binary_data_is_400(datatype: str, raw: bytes, message: str) -> None:
    body, split = binary_request([({"name": "a", "datatype": datatype, "shape": [1]}, raw)])
    with pytest.raises(ApiError, match=message):
        oip.parse_infer(body, split, BOUNDS)
    short = {"name": "a", "datatype": "FP64", "shape": [1], "parameters": {"binary_data_size": 9}}
    text = json.dumps({"inputs": [short]}).encode()
    with pytest.raises(ApiError, match="runs past the end of the body"):
        oip.parse_infer(text + b"\0" * 8, str(len(text)), BOUNDS)


def test_row_ids_name_each_kept_prediction() -> None:
    assert oip.row_ids(None, 3) is None
    assert oip.row_ids("q", 1) == ["q"]
    assert oip.row_ids("q", 3) == ["q:0", "q:1", "q:2"]


def request_of(rows: int, outputs: list[str] | None = None, id: str | None = "r") -> Any:
    doc: dict[str, Any] = {"inputs": [tensor("a", "FP64", [1.0] * rows)]}
    if outputs is not None:
        doc["outputs"] = [{"name": n} for n in outputs]
    if id is not None:
        doc["id"] = id
    return parse(doc)


def test_a_regressor_answers_fp64() -> None:
    batch = {"results": [{"prediction": 1.5}, {"prediction": 2}], "model_version": 3, "seq": 9}
    answer = oip.infer_response("m", request_of(2), "regression", batch)
    assert answer == {
        "model_name": "m",
        "model_version": "3",
        "id": "r",
        "parameters": {"seq": 9},
        "outputs": [{"name": "predict", "datatype": "FP64", "shape": [2], "data": [1.5, 2]}],
    }


def test_a_classifier_answers_labels_and_probabilities_in_a_named_order() -> None:
    batch = {
        "results": [
            {"prediction": True, "proba": {"false": 0.25, "true": 0.75}},
            {"prediction": False, "proba": {"false": 0.5}},  # River left "true" out: 0
            {"prediction": "x", "proba": {"true": 0.1, "x": 0.9}},
        ],
        "model_version": 1,
        "seq": None,
    }
    answer = oip.infer_response("m", request_of(3, id=None), "classification", batch)
    assert "id" not in answer and "parameters" not in answer  # a pinned version has no seq
    labels, proba = answer["outputs"]
    assert labels == {
        "name": "predict",
        "datatype": "BYTES",
        "shape": [3],
        "data": ["true", "false", "x"],
    }
    assert proba["shape"] == [3, 3] and proba["datatype"] == "FP64"
    assert json.loads(proba["parameters"]["classes"]) == ["false", "true", "x"]
    assert proba["data"] == [0.25, 0.75, 0.0, 0.5, 0.0, 0.0, 0.0, 0.1, 0.9]
    only = oip.infer_response("m", request_of(3, ["predict_proba"]), "classification", batch)
    assert [o["name"] for o in only["outputs"]] == ["predict_proba"]


def test_answers_fail_whole_on_a_bad_row_or_an_unknown_output() -> None:
    batch = {
        "results": [{"prediction": 1.0}, {"error": {"code": "invalid_features", "message": "no"}}],
        "model_version": 1,
        "seq": 2,
    }
    with pytest.raises(ApiError, match="row 1: no") as raised:
        oip.infer_response("m", request_of(2), "regression", batch)
    assert raised.value.status == 400
    fine = {"results": [{"prediction": 1.0}], "model_version": 1, "seq": 2}
    with pytest.raises(ApiError, match="output 'predict_proba' does not exist"):
        oip.infer_response("m", request_of(1, ["predict_proba"]), "regression", fine)


def test_a_degraded_row_is_null_and_flagged() -> None:
    batch = {"results": [{"prediction": None, "degraded": True}], "model_version": 1, "seq": 4}
    answer = oip.infer_response("m", request_of(1), "regression", batch)
    assert answer["parameters"] == {"seq": 4, "degraded": True}
    assert answer["outputs"][0]["data"] == [None]


def test_model_metadata_declares_one_input_per_learned_feature() -> None:
    described = {
        "task": "classification",
        "text_input": False,
        "features": {"b": "float", "a": "int", "c": "bool", "d": "str"},
    }
    assert oip.model_metadata("m", [1, 2], described) == {
        "name": "m",
        "versions": ["1", "2"],
        "platform": "river",
        "inputs": [
            {"name": "b", "datatype": "FP64", "shape": [-1]},
            {"name": "a", "datatype": "INT64", "shape": [-1]},
            {"name": "c", "datatype": "BOOL", "shape": [-1]},
            {"name": "d", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [
            {"name": "predict", "datatype": "BYTES", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, -1]},
        ],
    }
    text = oip.model_metadata("t", [1], {"task": "regression", "text_input": True, "features": {}})
    assert text["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert text["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]


def test_errors_and_paths() -> None:
    assert oip.error_body("no") == {"error": "no"}
    assert [oip.error_status(s) for s in (400, 404, 413, 422, 503)] == [400, 404, 413, 400, 503]
    assert oip.is_oip_path("/v2") and oip.is_oip_path("/v2/models/m")
    assert not oip.is_oip_path("/v2x") and not oip.is_oip_path("/api/v1/models")


def test_the_server_version_is_the_projects() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    assert oip.server_metadata()["version"] == pyproject["project"]["version"]
