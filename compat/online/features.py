"""The seeds' feature service (000, 001) over core series: `add` is one core observation.

The core builds the lags atomically in the state store and, for a series with subscribed
models, also runs their prequential step; the seed's answer is the core's entry with the
features made dense (in_1..in_N, 0.0 where the window is not full yet), as seed 001 did "to
keep the schema stable for downstream models".
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from compat.online.schemas import (
    OnlineAddIn,
    OnlineAddOut,
    OnlineFeatureInfo,
    OnlineSeriesInfo,
)
from shared.edge.body import parse_body
from shared.edge.codec import JSON
from shared.edge.idempotency import idempotency_of
from shared.openapi import api
from shared.runtime import current_runtime
from shared.tenancy import path_name, tenant_of

MAX_SERIES_LISTED = 100


def dense(features: dict[str, float], n_lags: int) -> dict[str, float]:
    return {f"in_{i}": float(features.get(f"in_{i}", 0.0)) for i in range(1, n_lags + 1)}


def _without_id(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k != "series_id"}


async def _series_info(tenant: str, name: str) -> dict[str, Any]:
    described = await current_runtime().ingest.describe(tenant, name)
    window = described["window"]
    return {
        "series_id": name,
        "length": described["count"],
        "latest_value": window[0] if window else None,
        "available_lags": min(len(window), described["n_lags"]),
    }


@api("compat", response=OnlineFeatureInfo)
async def info(request: Request) -> Response:
    """Feature service `GET /info`: max_lags (N_LAGS), the output schema and each series."""
    tenant = tenant_of(request)
    runtime = current_runtime()
    names = (await runtime.ingest.list(tenant))[:MAX_SERIES_LISTED]
    infos = await asyncio.gather(*(_series_info(tenant, n) for n in names))
    n_lags = runtime.settings.n_lags
    return JSON(
        {
            "service": "feature_service",
            "max_lags": n_lags,
            "output_format": f"model_ready_in_1_to_in_{n_lags}",
            "series_info": {i["series_id"]: _without_id(i) for i in infos},
        }
    )


@api("compat", body=OnlineAddIn, response=OnlineAddOut)
async def add(request: Request) -> Response:
    """Feature service `POST /add` `{series_id, value}`: the lag features before this value,
    the value as target and how many lags were available. Creates the series if needed."""
    tenant = tenant_of(request)
    body = await parse_body(request, OnlineAddIn)
    ingest = current_runtime().ingest
    config = await ingest.ensure(tenant, body.series_id)
    observed = await ingest.observe(
        tenant, body.series_id, [(body.value, None)], idempotency_of(request)
    )
    [entry] = observed["observations"]
    return JSON(
        {
            "series_id": body.series_id,
            "features": dense(entry["features"], config["n_lags"]),
            "target": entry["target"],
            "available_lags": entry["available_lags"],
        }
    )


@api("compat", response=OnlineSeriesInfo)
async def series(request: Request) -> Response:
    """Feature service `GET /series/{series_id}`: length, latest value, lags available; 404
    for a series never seen."""
    tenant = tenant_of(request)
    name = path_name(request, "series_id", "series")
    return JSON(await _series_info(tenant, name))
