"""Audit rows: the input hash by orjson where it writes as `json`, and a batch's rows made
with their shared fields once, are the same text as the row-by-row path."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from shared.monitoring import audit

CANONICAL: list[Any] = [
    {"b": 1.5, "a": -2, "c": True, "d": None, "e": "text"},
    {"tiny": 1e-05, "small": 0.0001, "huge": 1e16, "big": 9999999999999998.0, "zero": -0.0},
    {"big_int": 2**70, "neg": -(2**63)},
    {"del": "a\x7fb", "ctrl": "\n\t\x01", "quote": '"\\/'},
    {"é": 1.0, "name": "naïve", "emoji": "\U0001f600"},
    {"nested": {"z": 1, "a": [1.0, 1e-7]}},
    {"nan": float("nan"), "inf": float("inf")},
    "a text",
    [1, 2.5e-9],
    42,
    None,
]


@pytest.mark.parametrize("x", CANONICAL)
def test_input_hash_is_sha256_of_the_canonical_json(x: Any) -> None:
    text = json.dumps(x, sort_keys=True, separators=(",", ":"), default=str)
    assert audit.input_hash(x) == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("request_id", "seq", "odd_id"),
    [("req-1", 17, "p3"), ('r"é\\n', None, 'id "quoted" \u00e9\n')],
)
def test_a_batch_gives_the_rows_of_its_items_one_by_one(
    request_id: str, seq: int | None, odd_id: str
) -> None:
    xs = [{"a": 1.0}, {"a": "text"}, {"a": 2.0, "b": 1e-9}, "a text"]
    results: list[dict[str, Any]] = [
        {"prediction": 0.5, "prediction_id": "p1"},
        {"error": {"code": "invalid_features", "message": 'no "é"'}},
        {"prediction": None, "degraded": True, "prediction_id": odd_id},
        {"prediction": "spam", "proba": {"spam": 0.5, "ham": 0.5}},
    ]
    answer = {"results": results, "model_version": 3, "seq": seq}
    pending = ("acme", "lin", "predict_batch", request_id, 1_700_000_000.25, 1.23456, xs, answer)
    batch: audit.Pending = (*pending, True, None)
    rows = audit.encode([batch])["acme"]
    expected = [audit._row(batch, x, dict(r), 3, seq) for x, r in zip(xs, results, strict=True)]
    assert rows == expected
    assert [json.loads(row)["route"] for row in rows] == ["predict_batch"] * 4
    assert results[0]["prediction_id"] == "p1"  # the answer itself is left as it was
