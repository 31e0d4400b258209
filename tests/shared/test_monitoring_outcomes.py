"""A batch's outcomes, encoded together, are the text `encode_outcome` gives each."""

from __future__ import annotations

from typing import Any

from shared.monitoring.outcomes import encode_outcome, encode_outcomes


def test_encode_outcomes_equals_encode_outcome_of_each() -> None:
    answers: list[dict[str, Any]] = [
        {"prediction": 1.5, "prediction_id": "a"},
        {"prediction": "spam", "proba": {"spam": 0.75, "ham": 0.25}},
        {"prediction": None, "degraded": True},
        {"score": 0.9, "is_anomaly": True},
        {"cluster": 3},
    ]
    now = 1_700_000_000.123456
    one_by_one = [encode_outcome({**a, "model_version": 4}, now) for a in answers]
    assert encode_outcomes(answers, 4, now) == one_by_one
