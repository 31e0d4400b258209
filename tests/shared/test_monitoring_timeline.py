"""The live chart's history and the label join, without any server: audit rows and ledgers
in, chart points and drift episodes out."""

from __future__ import annotations

import json
import random
import time

from shared.monitoring import audit, timeline
from shared.monitoring.ledger import QUIET, Ledger, iso
from shared.monitoring.outcomes import encode_outcome
from tests.shared.test_monitoring_scoring import outcome


def predict_row(pid: str, prediction: float, at: float, actual: float | None = None) -> str:
    """One audit row as the monitor flushes it (predict, or predict_learn with its y)."""
    answer = {"prediction": prediction, "model_version": 1, "seq": 3, "prediction_id": pid}
    route = "predict" if actual is None else "predict_learn"
    pending = ("acme", "m", route, "r-" + pid, at, 0.5, {"a": 1.0}, answer, False, actual)
    return audit.encode([pending])["acme"][0]


def label_row(pid: str, prediction: float, y: float, at: float) -> str:
    kept = encode_outcome({"prediction": prediction, "model_version": 1}, at - 1)
    answer = {"prediction_id": pid, "outcome": kept}
    pending = ("acme", "m", audit.LABEL, "l-" + pid, at, 0.2, None, answer, False, y)
    return audit.encode([pending])["acme"][0]


def read(raws: list[str], limit: int = 100) -> list[dict[str, object]]:
    """Rows newest first through the join, as Monitor.recent reads them."""
    joined = audit.LabelJoin()
    for raw in reversed(raws):  # raws are oldest first, the store answers newest first
        row = audit.matches(raw, "m")
        assert row is not None
        joined.add(row)
    return joined.rows(limit)


def test_a_label_row_joins_its_prediction() -> None:
    now = time.time()
    raws = [
        predict_row("a", 3.0, now),
        predict_row("b", 5.0, now + 1),
        predict_row("c", 7.0, now + 2, actual=6.5),  # predict_learn: its actual at once
        label_row("a", 3.0, 4.5, now + 3),
    ]
    rows = read(raws)
    assert [r["prediction_id"] for r in rows] == ["c", "b", "a"]  # labels are not listed
    c, b, a = rows
    assert (a["actual"], a["prediction_error"], a["labelled_at"]) == (4.5, 1.5, iso(now + 3))
    assert "prediction_id" not in a["output"]  # a field of the row, not of the output
    assert b.get("actual") is None and b.get("prediction_error") is None
    assert (c["actual"], c["prediction_error"]) == (6.5, 0.5) and "labelled_at" not in c
    # a label flushed before its prediction's row (two instances) still joins
    crossed = read([label_row("x", 1.0, 2.0, now), predict_row("x", 1.0, now + 0.01)])
    assert crossed[0]["actual"] == 2.0 and crossed[0]["prediction_error"] == 1.0
    assert len(read(raws, limit=1)) == 1


def test_a_classifier_label_error_is_zero_or_one() -> None:
    kept = encode_outcome({"prediction": "yes", "proba": {"yes": 0.8}, "model_version": 2}, 1.0)
    pending = (
        "acme",
        "m",
        audit.LABEL,
        "l",
        2.0,
        0.1,
        None,
        {"prediction_id": "p", "outcome": kept},
        False,
        "no",
    )
    row = json.loads(audit.encode([pending])["acme"][0])
    assert (row["version"], row["actual"], row["prediction_error"]) == (2, "no", 1.0)


def test_points_are_oldest_first_with_the_rolling_error() -> None:
    now = time.time()
    rng = random.Random(3)
    raws = []
    for i in range(50):
        prediction, y = rng.uniform(0, 10), rng.uniform(0, 10)
        raws.append(predict_row(f"p{i}", prediction, now + i, actual=None if i % 3 else y))
    raws.append(json.dumps({**json.loads(raws[0]), "output": {"error": {"code": "x"}}}))
    rows = read(raws)
    points = timeline.points(rows)
    assert len(points) == 50  # the failed prediction is no point
    assert [p["prediction_id"] for p in points] == [f"p{i}" for i in range(50)]
    errors: list[float] = []
    for point in points:
        if point["error"] is not None:
            assert point["error"] == abs(point["prediction"] - point["actual"])
            errors.append(point["error"])
        window = errors[-timeline.ROLLING :]
        expected = sum(window) / len(window) if window else None
        assert point["rolling_error"] == expected


def test_episodes_carry_when_they_ended() -> None:
    rng = random.Random(11)
    raws, seq = [], 0
    for level, count in ((0.0, 600), (8.0, 200 + QUIET + 300)):
        for _ in range(count):
            seq += 1
            raws.append(outcome(seq, None, level + rng.gauss(0, 0.2), 0.0))
    ledger = Ledger()
    ledger.apply(raws)
    [episode] = timeline.episodes(ledger)
    assert episode["ended_seq"] is not None and not episode["open"]
    # outcome(seq) happened at 1 + seq
    assert episode["ended_at"] == iso(1.0 + episode["ended_seq"])
    assert episode["started_at"] == iso(1.0 + episode["started_seq"])
    assert timeline.episodes(Ledger()) == []
