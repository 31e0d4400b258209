"""Delayed labels: prediction ids, the label request's items and their per-item answers
(README: Delayed labels; architecture.md §4).

A predict answers a `prediction_id` (the client's `id`, or one made here) under which its
features and prediction are kept; `POST …/labels` later learns those features with the label
through the learn log (`OnlineModels.learn_labelled`). This module holds what is about ids
and answers, not about models.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from shared.edge.codec import dump_text
from shared.errors import ApiError, conflict
from shared.schemas import PREDICTION_ID_PATTERN

PREDICTION_ID = re.compile(PREDICTION_ID_PATTERN)


def new_prediction_id() -> str:
    return os.urandom(16).hex()  # 32 hex digits, as uuid4().hex, for less per predict


def new_prediction_ids(count: int) -> list[str]:
    """`count` new ids from one read of the OS's random source (a batch's, one per item)."""
    digits = os.urandom(16 * count).hex()
    return [digits[i : i + 32] for i in range(0, 32 * count, 32)]


def prediction_not_found(prediction_id: str) -> ApiError:
    return ApiError(
        404,
        "prediction_not_found",
        f"no kept prediction '{prediction_id}' for this model: unknown, or older than "
        "LABEL_TTL_SECONDS",
    )


def already_labelled(prediction_id: str) -> ApiError:
    return conflict(f"prediction '{prediction_id}' was labelled already", "already_labelled")


@dataclass(frozen=True)
class Label:
    prediction_id: str
    y: Any


def error_item(prediction_id: str, error: ApiError) -> dict[str, Any]:
    return {
        "prediction_id": prediction_id,
        "status": error.status,
        "error": {"code": error.code, "message": error.message},
    }


def answer(
    labels: list[Label], seqs: dict[int, int], errors: dict[int, ApiError]
) -> dict[str, Any]:
    """`{learned, first_seq, last_seq, results}`: one result (its seq) or one error per label,
    in the order sent (first/last_seq are null when nothing was learned)."""
    results = [
        {"prediction_id": label.prediction_id, "seq": seqs[index]}
        if index in seqs
        else error_item(label.prediction_id, errors[index])
        for index, label in enumerate(labels)
    ]
    learned = sorted(seqs.values())
    return {
        "learned": len(learned),
        "first_seq": learned[0] if learned else None,
        "last_seq": learned[-1] if learned else None,
        "results": results,
    }


def features_text(x: Any) -> str:
    """The features a prediction is kept with, as they arrived: a dict keeps its key order
    through JSON, which River's sums depend on. (Only checked features get here: every
    number finite and bounded, learning.check_x.)"""
    return dump_text(x)
