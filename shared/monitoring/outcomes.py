"""Outcomes: what predict_learn logs about its prediction, next to the sample it learns.

The store logs `[seq, [x, y], outcome]` atomically with the append, so the outcome list is
the prequential stream in seq order: the input every monitoring fold replays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.edge.codec import dump_text


def encode_outcome(answer: dict[str, Any], now: float, paired: dict[str, Any] | None = None) -> str:
    """The prediction part of one outcome (the store adds seq and the sample). A detector's
    score and flag, or a clusterer's cluster, is logged as its prediction with its task
    ("k"): the fold scores it as such (shared/monitoring/scoring.py). `paired`: on a
    challenger's shadow, the champion's answer to the same sample and the shadow's lineage
    ("c"), so one fold of the shadow's outcomes compares both sides in one order
    (shared/monitoring/comparison.py)."""
    return dump_text(_outcome(answer, answer["model_version"], round(now, 3), paired))


def encode_outcomes(answers: list[dict[str, Any]], version: int, now: float) -> list[str]:
    """`encode_outcome` of each answer of one batch (one model version, one time), the same
    text; the time is rounded once (round(x, 3) costs about a microsecond a call)."""
    rounded = round(now, 3)
    return [dump_text(_outcome(answer, version, rounded, None)) for answer in answers]


def _outcome(
    answer: dict[str, Any], version: Any, rounded: float, paired: dict[str, Any] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"v": version, "t": rounded}
    if paired is not None:
        body["c"] = paired
    if "score" in answer:
        body.update(k="anomaly", p=answer["score"], a=answer.get("is_anomaly"))
    elif "cluster" in answer:
        body.update(k="clustering", p=answer["cluster"])
    else:
        body["p"], body["q"] = answer.get("prediction"), answer.get("proba")
    return body


@dataclass(frozen=True)
class Outcome:
    seq: int
    x: Any
    y: Any
    version: int
    ts: float
    prediction: Any
    proba: dict[str, float] | None
    task: str | None = None  # "anomaly" or "clustering"; None: decided by y and proba
    is_anomaly: bool | None = None  # a filtered detector's flag
    paired: dict[str, Any] | None = None  # a shadow's: the champion's answer, the lineage

    @classmethod
    def decode(cls, raw: str) -> Outcome:
        seq, (x, y), o = json.loads(raw)
        return cls(
            seq, x, y, o["v"], o["t"], o["p"], o.get("q"), o.get("k"), o.get("a"), o.get("c")
        )
