"""ML-engine monitoring, per symbol, from the core's monitoring (shared/monitoring).

Freshness, latency and the prediction audit are the monitoring views of each symbol's model.
Drift is the seed's: is the market still like what the active version was trained on? The
core's drift watches the predict_learn stream, which a batch-trained engine model never has;
so here the returns the active version was trained on (its data set, via the version's meta)
are compared with the newest market returns, with the monitoring's own KS test and PSI, and
drift is a KS p-value below DRIFT_THRESHOLD.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from compat.engine.features import TARGET, model_of, symbol_of
from compat.engine.market_data import check_symbol, market_of
from compat.engine.releases import Releases
from compat.settings import compat_settings
from shared.errors import ApiError
from shared.executors import run_in
from shared.monitoring import views
from shared.monitoring.drift import ks, psi
from shared.runtime import Runtime
from shared.training.data import DataError, read_frame

RECENT_DAYS = 60  # the newest returns compared with the training returns


async def symbols(runtime: Runtime, tenant: str, raw: str | None) -> list[str]:
    """`?symbol=` if given, else every symbol this tenant has a model for."""
    if raw:
        return [check_symbol(raw)]
    records = await runtime.lifecycle.records(tenant)
    return sorted(s for r in records if (s := symbol_of(r["name"])) is not None)


async def drift(runtime: Runtime, tenant: str, symbol: str) -> dict[str, Any]:
    model = model_of(symbol)
    version = int((await runtime.lifecycle.record(tenant, model)).get("version") or 0)
    meta = await runtime.registry.get_version(tenant, model, version) if version else None
    uri = ((meta or {}).get("training") or {}).get("uri")
    report: dict[str, Any] = {"symbol": symbol, "model": model, "model_version": version}
    if uri is None:
        return {**report, "drift": False, "reason": "the active version is not trained yet"}
    try:
        frame = await run_in(runtime.executors.io, read_frame, runtime.data.check(tenant, uri))
    except DataError as exc:
        raise ApiError(409, "dataset_unreadable", f"training data of {model}: {exc}") from None
    reference = frame[TARGET].to_numpy(dtype=float)
    market = market_of(runtime)
    recent = np.asarray((await market.returns(symbol, RECENT_DAYS)).values, dtype=float)
    statistic, p_value = ks(reference, recent)
    threshold = compat_settings().drift_threshold
    return {
        **report,
        "drift": p_value < threshold,
        "ks_statistic": statistic,
        "p_value": p_value,
        "psi": psi(reference, recent),
        "threshold": threshold,
        "reference_rows": len(reference),
        "recent_rows": len(recent),
        "reference_mean": float(reference.mean()),
        "recent_mean": float(recent.mean()),
    }


async def history(runtime: Runtime, tenant: str) -> dict[str, Any]:
    releases = Releases(runtime)
    listed = await releases.list(tenant)
    active = await releases.active_label(tenant, listed)
    return {
        "active_version": active,
        "versions": [{**r, "active": r["version"] == active} for r in listed],
    }


async def freshness(runtime: Runtime, tenant: str, symbol: str) -> dict[str, Any]:
    market = market_of(runtime)
    model_view, returns = await asyncio.gather(
        views.freshness(runtime, tenant, model_of(symbol)), market.returns(symbol, 1)
    )
    as_of = returns.dates[-1] if returns.dates else None
    return {"symbol": symbol, **model_view, "data_as_of": as_of, "data_source": market.source}


async def latency(runtime: Runtime, tenant: str, symbol: str) -> dict[str, Any]:
    return {"symbol": symbol, **await views.latencies(runtime, tenant, model_of(symbol))}


async def recent(
    runtime: Runtime, tenant: str, symbol: str | None, limit: int
) -> list[dict[str, Any]]:
    model = model_of(symbol) if symbol else None
    rows = await runtime.monitor.recent(tenant, model, limit)
    return [{**row, "symbol": symbol_of(row.get("model") or "")} for row in rows]
