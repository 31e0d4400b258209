"""A model's recent history for the dashboard's live chart: its audited predictions against
their actuals over time, the rolling error, and its drift episodes on the same time axis.

Composed from what is kept anyway: the prediction audit (a predict_learn's row carries its
actual; a predict's gets one when its delayed label arrives, audit.LabelJoin) and the
ledger's drift episodes. Nothing is written for it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from shared.monitoring.ledger import EPISODES_KEPT, Ledger, iso

ROLLING = 20  # points of the rolling error (the dashboard's live chart uses the same)


def points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit rows (newest first) → chart points, oldest first: each prediction with its
    actual and error once known, and the mean error of the last ROLLING known errors."""
    out: list[dict[str, Any]] = []
    recent: deque[float] = deque(maxlen=ROLLING)
    for row in reversed(rows):
        output = row.get("output") or {}
        if "prediction" not in output:  # an error, or a detector's score / a cluster
            continue
        error = row.get("prediction_error")
        if isinstance(error, int | float):
            recent.append(float(error))
        point: dict[str, Any] = {
            "at": row["at"],
            "route": row["route"],
            "version": row.get("version"),
            "seq": row.get("seq"),
            "prediction_id": row.get("prediction_id"),
            "prediction": output["prediction"],
            "actual": row.get("actual"),
            "error": error,
            "rolling_error": sum(recent) / len(recent) if recent else None,
        }
        out.append(point)
    return out


def episodes(ledger: Ledger) -> list[dict[str, Any]]:
    """The newest EPISODES_KEPT drift episodes over every version, oldest first, each with
    the time it closed (null while open)."""
    every = [e for track in ledger.versions.values() for e in track.episodes]
    every.sort(key=lambda e: e.started_seq)
    return [{**e.as_dict(), "ended_at": iso(e.ended_ts)} for e in every[-EPISODES_KEPT:]]
