"""ingest: series observations → lag features → prequential learning of subscribed models;
sources (data set, CSV, ticker) pulled through a cursor kept in the state store; CloudEvents
pushed by a broker (Knative Eventing, Pub/Sub push) applied exactly once.

Entry point: `functions-framework --asgi --target app --source functions/ingest/main.py`.
"""

from __future__ import annotations

from typing import Any

import functions_framework.aio
from pydantic import RootModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compat.online import features as online_features
from compat.online import ingestion as online_ingestion
from shared.app import build_router
from shared.edge.body import optional_body, parse_body
from shared.edge.bridge import forward
from shared.edge.codec import JSON
from shared.edge.idempotency import idempotency_of
from shared.edge.request import edge_request_of
from shared.errors import ApiError
from shared.openapi import api
from shared.protocols.cloudevents_in import Received, parse_delivery
from shared.push_ingest import PushIngest, TenantCheck
from shared.runtime import current_runtime
from shared.schemas import ObservationsRequest, PullRequest, SeriesRequest, SubscribeRequest
from shared.sources import SourceSpec
from shared.tenancy import path_name, tenant_of


class SourceRequest(RootModel[SourceSpec]):
    """`{"kind": "dataset", "name", "symbol"?}`, `{"kind": "csv", "uri", "column"}` or
    `{"kind": "ticker", "pair", "base_url", "timeout_seconds", "retries", "backoff_seconds"}`."""


def _series(request: Request) -> tuple[str, str]:
    return tenant_of(request), path_name(request, "series", "series")


@api("ingest", body=ObservationsRequest)
async def observe(request: Request) -> Response:
    """Add one `{value, ts?}` or a list; once the window is full every subscribed model
    predicts then learns (x = in_1..in_N, y = value). A failing model fails only its entry."""
    tenant, name = _series(request)
    body = await parse_body(request, ObservationsRequest)
    ingest = current_runtime().ingest
    return JSON(await ingest.observe(tenant, name, body.points(), idempotency_of(request)))


@api("ingest")
async def describe(request: Request) -> Response:
    """The series: window (most recent first), features, count, last timestamp, models."""
    tenant, name = _series(request)
    return JSON(await current_runtime().ingest.describe(tenant, name))


@api("ingest")
async def list_series(request: Request) -> Response:
    """This tenant's series."""
    return JSON({"series": await current_runtime().ingest.list(tenant_of(request))})


@api("ingest", body=SeriesRequest)
async def put_series(request: Request) -> Response:
    """Create a series (or change its window size n_lags)."""
    tenant, name = _series(request)
    body = await optional_body(request, SeriesRequest)
    ingest = current_runtime().ingest
    await ingest.ensure(tenant, name, body.n_lags)
    return JSON(await ingest.describe(tenant, name))


@api("ingest", body=SubscribeRequest)
async def subscribe(request: Request) -> Response:
    """Set the models fed by this series (regressors get lags, forecasters get values)."""
    tenant, name = _series(request)
    body = await parse_body(request, SubscribeRequest)
    return JSON(await current_runtime().ingest.subscribe(tenant, name, body.models, body.n_lags))


@api("ingest", body=SourceRequest)
async def put_source(request: Request) -> Response:
    """Set where pull reads from: a River data set, a CSV/Parquet file or an HTTP ticker."""
    tenant, name = _series(request)
    body = await parse_body(request, SourceRequest)
    return JSON(await current_runtime().ingest.set_source(tenant, name, body.root))


@api("ingest")
async def get_source(request: Request) -> Response:
    """The source and its cursor (position, total, exhausted)."""
    tenant, name = _series(request)
    return JSON(await current_runtime().ingest.source_status(tenant, name))


@api("ingest", body=PullRequest)
async def pull(request: Request) -> Response:
    """Observe the next `count` values of the source (Cloud Scheduler calls this)."""
    tenant, name = _series(request)
    body = await optional_body(request, PullRequest)
    return JSON(await current_runtime().ingest.pull(tenant, name, body.count))


@api("ingest")
async def reset(request: Request) -> Response:
    """Forget the window, the count and the source cursor (subscriptions stay)."""
    tenant, name = _series(request)
    return JSON(await current_runtime().ingest.reset(tenant, name))


@api("ingest")
async def events(request: Request) -> Response:
    """CloudEvents pushed by a broker: binary mode (`ce-*` headers), structured
    (`application/cloudevents+json`), batched (`application/cloudevents-batch+json`) or a
    Pub/Sub push envelope. Types `io.onlineml.observation` `{series, value, ts?}`,
    `io.onlineml.sample` `{model, x, y}`, `io.onlineml.label` `{model, prediction_id, y}`;
    the tenant is X-Tenant-ID or the `tenant` attribute. (source, id) is applied once: a
    redelivery answers 200 and changes nothing. One event: its result, or a 4xx envelope (the
    broker dead-letters it) or 503 (the broker retries). A batch: 200 with one result per
    event (`status`, `result` or `error`), or 503 (429) when any event met an outage (its
    tenant's rate limit): redeliver it whole, the events applied are recognised."""
    runtime = current_runtime()
    settings = runtime.settings
    body = await request.body()
    headers = {name.lower(): value for name, value in request.headers.items()}
    delivery = parse_delivery(headers, body, settings.events_max_per_batch)
    per_minute = settings.rate_limit_per_minute

    async def limit(tenant: str) -> int:
        return await runtime.store.rate_limit(tenant, per_minute)

    tenants = TenantCheck(
        header_tenant=tenant_of(request) if edge_request_of(request.scope).tenant_sent else None,
        tenant_key=headers.get("x-tenant-key"),
        authenticate=runtime.tenant_auth.authenticate if settings.tenant_auth == "keys" else None,
        rate_limit=limit if per_minute else None,
        per_minute=per_minute,
    )
    push = PushIngest(runtime.ingest, runtime.serving)

    async def apply(event: Received | ApiError) -> dict[str, Any]:
        if isinstance(event, ApiError):
            raise event
        return await push.apply(await tenants.tenant_of(event), event)

    if not delivery.batch:
        return JSON(await apply(delivery.events[0]))
    results = []
    for index, event in enumerate(delivery.events):
        named = {"id": event.id, "source": event.source} if isinstance(event, Received) else {}
        try:
            results.append({"index": index, **named, "status": 200, "result": await apply(event)})
        except ApiError as exc:
            if exc.status >= 500 or exc.status == 429:
                raise  # retry later: the broker redelivers the whole batch
            error = {"code": exc.code, "message": exc.message}
            results.append({"index": index, **named, "status": exc.status, "error": error})
    return JSON({"results": results})


ROUTES = [
    Route("/api/v1/events", events, methods=["POST"]),
    Route("/api/v1/series", list_series, methods=["GET"]),
    Route("/api/v1/series/{series}", describe, methods=["GET"]),
    Route("/api/v1/series/{series}", put_series, methods=["PUT"]),
    Route("/api/v1/series/{series}/observations", observe, methods=["POST"]),
    Route("/api/v1/series/{series}/models", subscribe, methods=["PUT"]),
    Route("/api/v1/series/{series}/source", put_source, methods=["PUT"]),
    Route("/api/v1/series/{series}/source", get_source, methods=["GET"]),
    Route("/api/v1/series/{series}/pull", pull, methods=["POST"]),
    Route("/api/v1/series/{series}/reset", reset, methods=["POST"]),
    # compat, online-learning platform (seeds 000, 001): ingestion streams, features
    Route(
        "/api/v1/online/ingestion/{series}/next",
        online_ingestion.next_observation,
        methods=["GET"],
        name="online_ingestion_next_observation",
    ),
    Route(
        "/api/v1/online/ingestion/{series}/next/{crypto}",
        online_ingestion.next_crypto,
        methods=["GET"],
        name="online_ingestion_next_crypto",
    ),
    Route(
        "/api/v1/online/ingestion/{series}/reset",
        online_ingestion.reset_stream,
        methods=["POST"],
        name="online_ingestion_reset_stream",
    ),
    Route(
        "/api/v1/online/ingestion/{series}/status",
        online_ingestion.stream_status,
        methods=["GET"],
        name="online_ingestion_stream_status",
    ),
    Route(
        "/api/v1/online/features/info",
        online_features.info,
        methods=["GET"],
        name="online_features_info",
    ),
    Route(
        "/api/v1/online/features/add",
        online_features.add,
        methods=["POST"],
        name="online_features_add",
    ),
    Route(
        "/api/v1/online/features/series/{series_id}",
        online_features.series,
        methods=["GET"],
        name="online_features_series",
    ),
]
router = build_router("ingest", ROUTES)


@functions_framework.aio.http
async def app(request: Request) -> Response:
    return forward(router, request)
