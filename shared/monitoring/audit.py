"""Prediction audit rows: buffered on the request path, encoded when flushed.

A row: time, request id, tenant, model, version, route, a hash of the input, the output and
the model-call latency. The input itself is not kept (it may be personal data); its hash
(sha256 of the canonical JSON) lets an operator match a prediction to a request they hold.

Delayed labels: a predict's row carries its `prediction_id`; a label that arrives later
writes a row of route "label" (the id, the actual, the error of the kept prediction), and a
read joins it to the prediction's row (`join_labels`), so the audit is still only appended
to, in the same buffered flush, and bounded by AUDIT_MAX_ROWS like every row.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import orjson

from shared.edge.codec import dump_text

MAX_LIMIT = 1000
LABEL = "label"  # the route of a delayed label's row

# (tenant, model, route, request id, epoch seconds, latency ms, x, answer, is a batch,
# the actual y when known at once: predict_learn's, else None)
# A plain tuple: it is built on the request path, where every microsecond counts.
# A label's: route LABEL, x None, answer {"prediction_id", "outcome": the kept prediction's
# outcome as stored (decoded only when flushed)}, y the label.
Pending = tuple[str, str, str, str, float, float, Any, dict[str, Any], bool, Any]

_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def _compact(row: dict[str, Any]) -> str:
    return dump_text(row, default=str)


_OUTPUT_KEYS = ("prediction", "proba", "score", "is_anomaly", "cluster", "error")


def _orjson_writes_as_json(x: Any) -> bool:
    """True when orjson (keys sorted) writes `x` byte for byte as `_canonical` does: a flat
    object of strings, ints, bools, nulls and floats that Python writes without an exponent
    (orjson's exponents differ: 1e-5 against 1e-05); its text must then be ASCII, no DEL
    (which json escapes). Ints past 64 bits make orjson raise: the caller falls back."""
    if type(x) is not dict:
        return False
    for value in x.values():
        kind = type(value)
        if kind is float:
            if not (1e-4 <= abs(value) < 1e16 or value == 0.0):  # NaN fails both
                return False
        elif kind is not int and kind is not str and kind is not bool and value is not None:
            return False
    return True


def input_hash(x: Any) -> str:
    """sha256 of the canonical JSON (json.dumps, keys sorted, compact, ASCII): orjson writes
    the usual row (a flat object of numbers) the same, several times faster."""
    if _orjson_writes_as_json(x):
        try:
            text = orjson.dumps(x, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # an int past 64 bits
            text = b""
        if text and text.isascii() and b"\x7f" not in text:
            return hashlib.sha256(text).hexdigest()
    return hashlib.sha256(_canonical(x).encode()).hexdigest()


class _Clock:
    """ISO-8601 UTC with milliseconds; the date part is formatted once per second."""

    second = -1
    prefix = ""

    @classmethod
    def iso(cls, ts: float) -> str:
        second = int(ts)
        if second != cls.second:
            cls.second, cls.prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{cls.prefix}.{int((ts - second) * 1000):03d}+00:00"


def prediction_error(prediction: Any, actual: Any) -> float | None:
    """|prediction - actual| for numbers, 0/1 for labels, None without a prediction."""
    if prediction is None:
        return None
    numeric = all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in (prediction, actual)
    )
    return abs(float(prediction) - float(actual)) if numeric else float(prediction != actual)


def _row(p: Pending, x: Any, output: dict[str, Any], version: Any, seq: Any) -> str:
    known: dict[str, Any] = {}
    if p[9] is not None:  # the actual beside the prediction, and the error it made
        known = {
            "actual": p[9],
            "prediction_error": prediction_error(output.get("prediction"), p[9]),
        }
    prediction_id = output.pop("prediction_id", None)
    if prediction_id is not None:
        known["prediction_id"] = prediction_id
    return _compact(
        {
            **_leading_fields(p, version),
            "input_hash": input_hash(x),
            "output": output,
            "seq": seq,
            "latency_ms": round(p[5], 3),
            **known,
        }
    )


def _label_row(p: Pending) -> str:
    """A delayed label: the actual of an earlier prediction and the error it made."""
    kept = json.loads(p[7]["outcome"])  # encode_outcome's body: v, t, p (and k if unscored)
    prediction = kept.get("p")
    error = prediction_error(prediction, p[9]) if kept.get("k") is None else None
    return _compact(
        {
            "at": _Clock.iso(p[4]),
            "request_id": p[3],
            "tenant": p[0],
            "model": p[1],
            "version": kept.get("v"),
            "route": LABEL,
            "prediction_id": p[7]["prediction_id"],
            "actual": p[9],
            "prediction_error": error,
        }
    )


def encode(pending: list[Pending]) -> dict[str, list[str]]:
    """Rows per tenant, oldest first (a batch gives one row per item)."""
    rows: dict[str, list[str]] = {}
    for p in pending:
        out = rows.setdefault(p[0], [])
        answer = p[7]
        if p[2] == LABEL:
            out.append(_label_row(p))
            continue
        version, seq = answer.get("model_version"), answer.get("seq")
        if not p[8]:
            output = {k: answer[k] for k in _OUTPUT_KEYS if k in answer}
            if "prediction_id" in answer:
                output["prediction_id"] = answer["prediction_id"]
            out.append(_row(p, p[6], output, version, seq))
            continue
        if p[9] is None:
            out.extend(_batch_rows(p, version, seq))
            continue
        for x, result in zip(p[6], answer["results"], strict=True):
            out.append(_row(p, x, dict(result), version, seq))
    return rows


def _leading_fields(p: Pending, version: Any) -> dict[str, Any]:
    """A row's first fields, in their order: when, which request, whose model, which route."""
    return {
        "at": _Clock.iso(p[4]),
        "request_id": p[3],
        "tenant": p[0],
        "model": p[1],
        "version": version,
        "route": p[2],
    }


def _batch_rows(p: Pending, version: Any, seq: Any) -> list[str]:
    """`_row` of each item of a batch without actuals (a batch predict's): the same text, the
    fields the items share (time, request, model, seq, latency) written once and each item's
    own parts (hash, output, id) spliced in between, as orjson writes a compact object."""
    head = _compact(_leading_fields(p, version))[:-1]
    tail = _compact({"seq": seq, "latency_ms": round(p[5], 3)})[1:-1]
    rows = []
    for x, result in zip(p[6], p[7]["results"], strict=True):
        output = dict(result)
        prediction_id = output.pop("prediction_id", None)
        row = f'{head},"input_hash":"{input_hash(x)}","output":{_compact(output)},{tail}'
        if prediction_id is not None:
            row += f',"prediction_id":{_compact(prediction_id)}'
        rows.append(row + "}")
    return rows


def matches(raw: str, model: str | None) -> dict[str, Any] | None:
    row: dict[str, Any] = json.loads(raw)
    return row if model is None or row.get("model") == model else None


class LabelJoin:
    """Rows read newest first, labels set aside and joined to their predictions' rows.

    A label is newer than its prediction, so it is usually read first; one read earlier (two
    instances' flushes crossing) is still joined when both are among the rows read."""

    def __init__(self) -> None:
        self.predictions: list[dict[str, Any]] = []
        self.labels: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, row: dict[str, Any]) -> None:
        if row.get("route") == LABEL:
            self.labels.setdefault((row["model"], row["prediction_id"]), row)
        else:
            self.predictions.append(row)

    def rows(self, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` predictions, each labelled one with its actual and error."""
        out = self.predictions[:limit]
        for row in out:
            pid = row.get("prediction_id")
            label = self.labels.get((row["model"], pid)) if pid is not None else None
            if label is not None and row.get("actual") is None:
                row["actual"] = label["actual"]
                row["prediction_error"] = label["prediction_error"]
                row["labelled_at"] = label["at"]
        return out
