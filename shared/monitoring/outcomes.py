"""Outcomes: what predict_learn logs about its prediction, next to the sample it learns.

The store logs `[seq, [x, y], outcome]` atomically with the append, so the outcome list is
the prequential stream in seq order: the input every monitoring fold replays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.edge.codec import dump_text


def encode_outcome(answer: dict[str, Any], now: float) -> str:
    """The prediction part of one outcome (the store adds seq and the sample)."""
    return dump_text(
        {
            "v": answer["model_version"],
            "t": round(now, 3),
            "p": answer["prediction"],
            "q": answer.get("proba"),
        }
    )


@dataclass(frozen=True)
class Outcome:
    seq: int
    x: Any
    y: Any
    version: int
    ts: float
    prediction: Any
    proba: dict[str, float] | None

    @classmethod
    def decode(cls, raw: str) -> Outcome:
        seq, (x, y), o = json.loads(raw)
        return cls(seq, x, y, o["v"], o["t"], o["p"], o.get("q"))
