"""The seeds' ingestion service (000, 001) over a core series and its source cursor.

`next` hands out the source's next observation through the series' cursor in the state store
(the same cursor `POST /api/v1/series/{s}/pull` advances), without observing it: in the seeds
the ingestion service only streams, and the caller feeds the value to the feature service.
A series used as a stream for the first time gets the seeds' data set (monthly airline
passengers 1949-1960, River's AirlinePassengers); any other source is set with the core's
`PUT /api/v1/series/{s}/source`.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from compat.online.schemas import (
    OnlineStreamObservation,
    OnlineStreamReset,
    OnlineStreamStatus,
    OnlineTickerObservation,
)
from shared.context import request_id_var
from shared.edge.codec import JSON
from shared.errors import ApiError, envelope, unprocessable
from shared.ingest import SOURCE_ADAPTER
from shared.openapi import api
from shared.runtime import current_runtime
from shared.sources import DatasetSource, FileSource, TickerSource
from shared.tenancy import path_name, tenant_of

SEED_STREAM = DatasetSource(kind="dataset", name="AirlinePassengers")
_CRYPTO = re.compile(r"^[A-Za-z0-9]{2,10}$")


async def _source(tenant: str, name: str) -> DatasetSource | FileSource | TickerSource:
    """The stream's source; a series never seen before gets the seeds' data set."""
    ingest = current_runtime().ingest
    config = await ingest.series.get_config(tenant, name)
    if config is None:
        await ingest.set_source(tenant, name, SEED_STREAM)
        config = await ingest.config(tenant, name)
    if not config.get("source"):
        raise unprocessable(
            f"series '{name}' has no source; PUT /api/v1/series/{name}/source first", "no_source"
        )
    return SOURCE_ADAPTER.validate_python(config["source"])


def _stream(request: Request) -> tuple[str, str]:
    return tenant_of(request), path_name(request, "series", "series")


@api("compat", response=OnlineStreamObservation)
async def next_observation(request: Request) -> Response:
    """Ingestion `GET /next`: the stream's next observation; 204 once it is exhausted.

    A ticker source answers its current price instead, as the seeds' coinbase service did."""
    tenant, name = _stream(request)
    runtime = current_runtime()
    source = await _source(tenant, name)
    if isinstance(source, TickerSource):
        return await _ticker_answer(source, source.pair.split("-")[0])
    every = await runtime.ingest.points(tenant, source)
    start, stop = await runtime.ingest.series.claim(tenant, name, 1, len(every))
    if start == stop:
        return Response(status_code=204)
    value, ts = every[start]
    return JSON(
        {"observation_id": stop, "input": ts, "target": value, "remaining": len(every) - stop}
    )


@api("compat", response=OnlineTickerObservation)
async def next_crypto(request: Request) -> Response:
    """Ingestion `GET /next/{crypto}`: the current price of `{crypto}` from the series' ticker
    source (its base URL, timeout, retries, quote currency and invert; set it once with
    `PUT /api/v1/series/{series}/source {"kind": "ticker"}`: Coinbase's API by default).
    Upstream failing after its retries → 502."""
    tenant, name = _stream(request)
    crypto = request.path_params["crypto"]
    if not _CRYPTO.match(crypto):
        raise ApiError(400, "invalid_crypto", "crypto is 2-10 letters or digits, e.g. BTC")
    config = await current_runtime().ingest.series.get_config(tenant, name)
    raw = (config or {}).get("source") or {}
    if raw.get("kind") != "ticker":
        # never an implicit call to the internet: the operator chooses the upstream
        raise unprocessable(
            f"series '{name}' has no ticker source; PUT /api/v1/series/{name}/source "
            '{"kind": "ticker"} first',
            "no_ticker_source",
        )
    source = SOURCE_ADAPTER.validate_python(raw)
    quote = source.pair.split("-")[1]
    pair = f"{crypto.upper()}-{quote}"
    return await _ticker_answer(source.model_copy(update={"pair": pair}), crypto.upper())


async def _ticker_answer(source: TickerSource, series_id: str) -> Response:
    try:
        value, ts = await current_runtime().ingest.ticker(source)
    except ApiError as exc:
        if exc.code != "upstream_unavailable":
            raise
        # The seed's service answered an upstream failure as FastAPI does, `{"detail": ...}`,
        # which its clients read: that field too, beside the envelope. Its status stays 502
        # (a gateway's failure, not ours: the seed's 500 would page as a crash) and its text
        # stays ours, never the upstream's (architecture.md §8, outbound calls).
        body = {"detail": exc.message, **envelope(exc.code, exc.message, request_id_var.get())}
        return JSON(body, status_code=exc.status, headers=exc.headers)
    return JSON({"series_id": series_id, "target": value, "datetime": ts})


@api("compat", response=OnlineStreamReset)
async def reset_stream(request: Request) -> Response:
    """Ingestion `POST /reset`: back to the start of the stream (the series' window too)."""
    tenant, name = _stream(request)
    await _source(tenant, name)
    ingest = current_runtime().ingest
    await ingest.reset(tenant, name)
    status = await ingest.source_status(tenant, name)
    return JSON({"message": "Stream reset to beginning", "total_observations": status.get("total")})


@api("compat", response=OnlineStreamStatus)
async def stream_status(request: Request) -> Response:
    """Ingestion `GET /status`: position, total, remaining and whether it is exhausted."""
    tenant, name = _stream(request)
    await _source(tenant, name)
    status = await current_runtime().ingest.source_status(tenant, name)
    return JSON(
        {
            "current_index": status["cursor"],
            "total_observations": status.get("total"),
            "remaining": status.get("remaining"),
            "completed": bool(status.get("exhausted", False)),
        }
    )
