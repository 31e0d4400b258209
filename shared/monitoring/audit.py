"""Prediction audit rows: buffered on the request path, encoded when flushed.

A row: time, request id, tenant, model, version, route, a hash of the input, the output and
the model-call latency. The input itself is not kept (it may be personal data); its hash
(sha256 of the canonical JSON) lets an operator match a prediction to a request they hold.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from shared.edge.codec import dump_text

MAX_LIMIT = 1000

# (tenant, model, route, request id, epoch seconds, latency ms, x, answer, is a batch,
# the actual y when known at once: predict_learn's, else None)
# A plain tuple: it is built on the request path, where every microsecond counts.
Pending = tuple[str, str, str, str, float, float, Any, dict[str, Any], bool, Any]

_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def _compact(row: dict[str, Any]) -> str:
    return dump_text(row, default=str)


_OUTPUT_KEYS = ("prediction", "proba", "score", "is_anomaly", "cluster", "error")


def input_hash(x: Any) -> str:
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
    return _compact(
        {
            "at": _Clock.iso(p[4]),
            "request_id": p[3],
            "tenant": p[0],
            "model": p[1],
            "version": version,
            "route": p[2],
            "input_hash": input_hash(x),
            "output": output,
            "seq": seq,
            "latency_ms": round(p[5], 3),
            **known,
        }
    )


def encode(pending: list[Pending]) -> dict[str, list[str]]:
    """Rows per tenant, oldest first (a batch gives one row per item)."""
    rows: dict[str, list[str]] = {}
    for p in pending:
        out = rows.setdefault(p[0], [])
        answer = p[7]
        version, seq = answer.get("model_version"), answer.get("seq")
        if not p[8]:
            output = {k: answer[k] for k in _OUTPUT_KEYS if k in answer}
            out.append(_row(p, p[6], output, version, seq))
            continue
        for x, result in zip(p[6], answer["results"], strict=True):
            out.append(_row(p, x, result, version, seq))
    return rows


def matches(raw: str, model: str | None) -> dict[str, Any] | None:
    row: dict[str, Any] = json.loads(raw)
    return row if model is None or row.get("model") == model else None
