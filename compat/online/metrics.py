"""The seeds' `model_metrics` and `/metrics`, read from the core's monitoring (shared/monitoring).

Counts, cumulative and rolling (5/10/20) MAE/MSE/RMSE/MAPE are the monitoring ledger's, which
River computes over every predict_learn of the model in seq order (compat, core and ingest
fan-out alike). The seeds' "last prediction" diagnostics come from the newest audited
predict_learn (the prediction and its seq) and the learn log's sample at that seq (the actual).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from shared.monitoring import views
from shared.state.interfaces import ModelLog, ModelRecords

if TYPE_CHECKING:
    from shared.runtime import Runtime

SERIES = "default"  # the seeds keyed metrics by logical series; one model is one series here
NAMES = ("mae", "mse", "rmse", "mape")
AUDIT_SCAN = 50  # newest audit rows of the model searched for its last predict_learn


async def _last(runtime: Runtime, tenant: str, name: str) -> dict[str, Any]:
    rows = await runtime.monitor.recent(tenant, name, AUDIT_SCAN)
    row = next((r for r in rows if r.get("route") == "predict_learn"), None)
    if row is None or row.get("seq") is None:
        return {"last_prediction": None, "last_actual": None, "last_error": None}
    prediction, seq = row["output"].get("prediction"), int(row["seq"])
    actual = None
    records: ModelRecords = runtime.store
    log: ModelLog = runtime.store  # read only: the actual of the audited seq
    raw = await records.get_record(tenant, name)
    if raw is not None:
        read = await log.read_log(tenant, name, json.loads(raw)["uid"], seq - 1)
        entry = next((e for e in read.entries if e.seq == seq), None)
        actual = json.loads(entry.data)[1] if entry is not None else None  # None: compacted
    error = (
        actual - prediction
        if isinstance(actual, int | float) and isinstance(prediction, int | float)
        else None
    )
    return {"last_prediction": prediction, "last_actual": actual, "last_error": error}


async def seed_metrics(runtime: Runtime, tenant: str, name: str) -> dict[str, Any]:
    """`{"default": {count, mae.., mae_5.., last_*}, "model_info": {...}}` for the current
    version of the model (the seeds had no versions: a new version starts counting again)."""
    ledger = await views.metrics(runtime, tenant, name)
    active = ledger.get("active_version")
    tracks = ledger["versions"]
    track = next((t for t in tracks if t["version"] == active), tracks[-1] if tracks else None)
    series: dict[str, Any] = {"count": track["scored"] if track else 0}
    cumulative = track.get("cumulative", {}) if track else {}
    rolling = track.get("rolling", {}) if track else {}
    series.update({metric: cumulative.get(metric) for metric in NAMES})
    for window in ledger["windows"]:
        values = rolling.get(str(window), {})
        series.update({f"{metric}_{window}": values.get(metric) for metric in NAMES})
    series.update(await _last(runtime, tenant, name))
    return {
        SERIES: series,
        "model_info": {
            "model_name": name,
            "task": ledger.get("task"),
            "model_version": active,
            "samples": track["samples"] if track else 0,
            "last_at": track.get("last_at") if track else None,
        },
    }


def prometheus_text(model: str, summary: dict[str, Any]) -> str:
    """The seeds' gauges: ml_model_mae{model,series} … ml_model_predictions_total."""
    series = summary[SERIES]
    labels = f'{{model="{model}",series="{SERIES}"}}'
    gauges = {
        "ml_model_predictions_total": series["count"],
        **{f"ml_model_{key}": series.get(key) for key in series if key != "count"},
    }
    lines = []
    for metric, value in gauges.items():
        if isinstance(value, int | float) and math.isfinite(value):
            kind = "counter" if metric.endswith("_total") else "gauge"
            lines += [f"# TYPE {metric} {kind}", f"{metric}{labels} {float(value)!r}"]
    return "\n".join(lines) + "\n"
