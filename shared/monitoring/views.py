"""What the monitoring routes answer, composed from the monitor, the lifecycle and the log.

Every view first reads the model's record through the lifecycle, so an unknown model (or
another tenant's) is a 404 before anything else is read.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.errors import not_found
from shared.monitoring import latency, timeline
from shared.monitoring.ledger import iso

if TYPE_CHECKING:
    from shared.runtime import Runtime


async def metrics(runtime: Runtime, tenant: str, name: str) -> dict[str, Any]:
    record = await runtime.lifecycle.record(tenant, name)
    ledger = await runtime.monitor.ledger(tenant, name)
    return {
        "model": name,
        "task": record.get("task"),
        "active_version": record.get("version"),
        **ledger.metrics(),
    }


async def drift(runtime: Runtime, tenant: str, name: str, version: int | None) -> dict[str, Any]:
    """The drift state of one version (default: the active one)."""
    record = await runtime.lifecycle.record(tenant, name)
    ledger = await runtime.monitor.ledger(tenant, name)
    wanted = version if version is not None else int(record.get("version") or 0)
    track = ledger.versions.get(wanted)
    if track is None and version is not None:
        raise not_found("version", str(version))
    report = track.drift() if track is not None else {"version": wanted, "samples": 0}
    report.setdefault("detected", False)
    return {"model": name, "active_version": record.get("version"), **report}


async def history(runtime: Runtime, tenant: str, name: str, limit: int) -> dict[str, Any]:
    """The model's newest `limit` audited predictions as chart points (oldest first) with
    actuals, errors and the rolling error, and its drift episodes (the live chart's history)."""
    record = await runtime.lifecycle.record(tenant, name)
    rows = await runtime.monitor.recent(tenant, name, limit)
    ledger = await runtime.monitor.ledger(tenant, name)
    return {
        "model": name,
        "active_version": record.get("version"),
        "rolling_window": timeline.ROLLING,
        "points": timeline.points(rows),
        "drift_episodes": timeline.episodes(ledger),
    }


def _age(now: float, ts: float | None) -> float | None:
    return None if ts is None else max(0.0, now - ts)


def _epoch(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


async def freshness(runtime: Runtime, tenant: str, name: str) -> dict[str, Any]:
    record = await runtime.lifecycle.record(tenant, name)
    versions = await runtime.lifecycle.versions(tenant, name)
    seq = await runtime.models.seq_of(tenant, name)
    stats = await runtime.monitor.stats(tenant, name)
    now = time.time()
    metas = {int(m["version"]): m for m in versions["versions"]}
    active = versions.get("active") or record.get("version")
    newest = metas[max(metas)] if metas else None
    active_created = _epoch(metas[active].get("created_at")) if active in metas else None
    last_learn, last_prediction = stats.get("last_learn"), stats.get("last_prediction")
    pending = await runtime.serving.pending_labels(tenant, name)
    return {
        "model": name,
        "seq": seq,
        "last_learn_at": iso(last_learn),
        "seconds_since_last_learn": _age(now, last_learn),
        "last_prediction_at": iso(last_prediction),
        "seconds_since_last_prediction": _age(now, last_prediction),
        "newest_version": newest["version"] if newest else None,
        # the newest version's log position (0 for a created or batch-trained one)
        "samples_since_last_version": seq - int(newest.get("seq") or 0) if newest else seq,
        "active_version": active,
        "active_version_created_at": metas[active].get("created_at") if active in metas else None,
        "active_version_age_seconds": _age(now, active_created),
        # delayed labels: kept predictions still waiting for their label
        "pending_labels": pending.count,
        "oldest_pending_label_age_seconds": _age(now, pending.oldest_at),
    }


async def latencies(runtime: Runtime, tenant: str, name: str) -> dict[str, Any]:
    await runtime.lifecycle.record(tenant, name)
    stats = await runtime.monitor.stats(tenant, name)
    return {
        "model": name,
        "unit": "ms",
        "measured": "model call: lock wait, state round trip and River (not HTTP parsing)",
        "routes": latency.summarize(stats),
    }


async def overview(runtime: Runtime, tenant: str) -> dict[str, Any]:
    """The tenant's models with their counters (the dashboard derives rates from two reads)."""
    models = []
    for record in await runtime.lifecycle.records(tenant):
        name = record["name"]
        stats = await runtime.monitor.stats(tenant, name)
        calls = {
            key.split(":", 1)[1]: int(value)
            for key, value in stats.items()
            if key.startswith("calls:")
        }
        errors = {
            key.split(":", 1)[1]: int(value)
            for key, value in stats.items()
            if key.startswith("errors:")
        }
        models.append(
            {
                "name": name,
                "task": record.get("task"),
                "version": record.get("version"),
                "seq": await runtime.models.seq_of(tenant, name),
                "predictions": int(stats.get("predictions", 0)),
                "learned": int(stats.get("learned", 0)),
                "errors": int(stats.get("errors", 0)),
                "calls": calls,
                "errors_by_route": errors,
                "last_prediction_at": iso(stats.get("last_prediction")),
                "last_learn_at": iso(stats.get("last_learn")),
            }
        )
    return {"tenant": tenant, "at": iso(time.time()), "models": models}
