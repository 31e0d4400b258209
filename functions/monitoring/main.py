"""monitoring: prequential metrics, drift, freshness, latency, prediction audit, dashboard.

Entry point: `functions-framework --asgi --target app --source functions/monitoring/main.py`.
The operator dashboard is a static page at `/` (files under static/, no build step) that
reads the JSON routes below with the tenant, its key and the admin key the operator types in.
"""

from __future__ import annotations

from pathlib import Path

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compat.engine import routes as engine
from compat.online import models as online_models
from shared.app import build_router
from shared.edge.bridge import forward
from shared.edge.codec import JSON
from shared.errors import ApiError
from shared.lifecycle import parse_version
from shared.limits import query_int
from shared.monitoring import views
from shared.monitoring.audit import MAX_LIMIT
from shared.monitoring.schemas import (
    AuditCleared,
    DriftOut,
    FreshnessOut,
    LatencyOut,
    MetricsOut,
    OverviewOut,
    RecentOut,
    TimelineOut,
)
from shared.monitoring.sse import STREAM_PATH, parse_filter, parse_last_event_id
from shared.openapi import api
from shared.runtime import current_runtime
from shared.security import require_admin
from shared.tenancy import check_name, path_name, tenant_of

STATIC = Path(__file__).parent / "static"
TIMELINE_LIMIT = 300  # the timeline's default ?limit= (the live chart keeps as many points)
# Read once: the page is a handful of small files, served from memory.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
FILES = {name: (STATIC / name).read_bytes() for name in ASSETS}
# The page only talks to this origin (or the API base the operator enters) and never runs
# inline script, so data shown from the API cannot execute.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src *; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@api("monitoring", response=MetricsOut)
async def model_metrics(request: Request) -> Response:
    """Prequential metrics per version: cumulative and rolling 5/10/20, and their history.

    Regressors: MAE, MSE, RMSE, MAPE. Classifiers: accuracy, F1, log-loss (+ ROC AUC when
    binary). Computed by River over every predict_learn's prediction and y, in seq order."""
    tenant, name = tenant_of(request), path_name(request)
    return JSON(await views.metrics(current_runtime(), tenant, name))


@api("monitoring", response=DriftOut)
async def model_drift(request: Request) -> Response:
    """Drift of a version (`?version=N`, default the active one): ADWIN on the error, and
    PSI / KS per numeric feature between the version's first and latest samples."""
    tenant, name = tenant_of(request), path_name(request)
    raw = request.query_params.get("version")
    version = parse_version(raw) if raw is not None else None
    return JSON(await views.drift(current_runtime(), tenant, name, version))


@api("monitoring", response=FreshnessOut)
async def model_freshness(request: Request) -> Response:
    """Last learn, last prediction, samples since the newest version, active version age."""
    tenant, name = tenant_of(request), path_name(request)
    return JSON(await views.freshness(current_runtime(), tenant, name))


@api("monitoring", response=LatencyOut)
async def model_latency(request: Request) -> Response:
    """p50 / p95 / p99 of the model calls per route, over every instance."""
    tenant, name = tenant_of(request), path_name(request)
    return JSON(await views.latencies(current_runtime(), tenant, name))


@api("monitoring", response=TimelineOut)
async def model_timeline(request: Request) -> Response:
    """The live chart's history: the model's newest audited predictions (`?limit=`, 300, up
    to TIMELINE_MAX_POINTS), oldest first, each with its actual and error once known (a
    predict_learn's, or a delayed label's) and the rolling error; and its drift episodes."""
    runtime = current_runtime()
    tenant, name = tenant_of(request), path_name(request)
    most = runtime.settings.timeline_max_points
    raw = request.query_params.get("limit", str(min(TIMELINE_LIMIT, most)))
    limit = query_int(raw, "limit", 1, most)
    return JSON(await views.history(runtime, tenant, name, limit))


@api("monitoring", response=RecentOut)
async def recent_predictions(request: Request) -> Response:
    """The tenant's newest audited predictions (`?model=` to filter, `?limit=` up to 1000)."""
    tenant = tenant_of(request)
    model = request.query_params.get("model") or None
    if model is not None:
        check_name(model)
    limit = query_int(request.query_params.get("limit", "50"), "limit", 1, MAX_LIMIT)
    rows = await current_runtime().monitor.recent(tenant, model, limit)
    return JSON({"predictions": rows})


@api("admin", response=AuditCleared)
async def clear_audit(request: Request) -> Response:
    """Delete the tenant's prediction audit (admin key)."""
    runtime = current_runtime()
    require_admin(request, runtime.settings)
    tenant = tenant_of(request)
    return JSON({"deleted": await runtime.monitor.clear_audit(tenant)})


@api("monitoring", response=OverviewOut)
async def overview(request: Request) -> Response:
    """The tenant's models with versions and counters, for the dashboard."""
    return JSON(await views.overview(current_runtime(), tenant_of(request)))


@api("monitoring", media_type="text/event-stream")
async def stream_events(request: Request) -> Response:
    """The tenant's events as Server-Sent Events (`text/event-stream`), as they are published.

    Lifecycle events (with `id:`, resumable by `Last-Event-ID`), sampled `prediction`s and a
    `metrics` event per learning model every STREAM_METRICS_SECONDS (without `id:`).
    `?types=a,b` keeps those types, `?model=` one model's. A `: heartbeat` comment every
    STREAM_HEARTBEAT_SECONDS; at most STREAM_MAX_CLIENTS streams per instance (then 503) and
    STREAM_MAX_CLIENTS_PER_TENANT per tenant (then 429); it ends after STREAM_MAX_SECONDS.
    With TENANT_AUTH=none the tenant may be sent as `?tenant=` (EventSource sends no header)."""
    runtime = current_runtime()
    tenant = tenant_of(request)
    query = request.query_params
    where = parse_filter(
        query.get("types"), query.get("model"), runtime.settings.stream_max_filter_chars
    )
    after = parse_last_event_id(
        request.headers.get("last-event-id"), runtime.settings.stream_resume_window_seconds
    )
    return await runtime.streams.open(tenant, after, where)  # type: ignore[return-value]


async def dashboard(request: Request) -> Response:
    """The operator dashboard (static page over the JSON API)."""
    return Response(FILES["index.html"], media_type=ASSETS["index.html"], headers=PAGE_HEADERS)


async def asset(request: Request) -> Response:
    name = request.path_params["asset"]
    if name not in FILES or name == "index.html":
        raise ApiError(404, "asset_not_found", f"no dashboard file '{name}'")
    return Response(FILES[name], media_type=ASSETS[name], headers=PAGE_HEADERS)


ROUTES = [
    Route("/api/v1/models/{model}/metrics", model_metrics, methods=["GET"]),
    Route("/api/v1/models/{model}/drift", model_drift, methods=["GET"]),
    Route("/api/v1/models/{model}/freshness", model_freshness, methods=["GET"]),
    Route("/api/v1/models/{model}/latency", model_latency, methods=["GET"]),
    Route("/api/v1/models/{model}/timeline", model_timeline, methods=["GET"]),
    Route("/api/v1/predictions/recent", recent_predictions, methods=["GET"]),
    Route("/api/v1/monitoring/overview", overview, methods=["GET"]),
    Route("/api/v1/admin/audit", clear_audit, methods=["DELETE"]),
    Route(STREAM_PATH, stream_events, methods=["GET"]),
    Route("/", dashboard, methods=["GET"]),
    Route("/ui/{asset}", asset, methods=["GET"]),
    # compat, online-learning platform (seeds 000, 001)
    Route(
        "/api/v1/online/models/{model}/model_metrics",
        online_models.model_metrics,
        methods=["GET"],
        name="online_model_model_metrics",
    ),
    Route(
        "/api/v1/online/models/{model}/metrics",
        online_models.metrics,
        methods=["GET"],
        name="online_model_metrics",
    ),
    # compat, ML engine (seeds 002, 004): each `engine.mount(path, ...)` serves
    # /api/v1/engine<path>, the bare <path> and /api/v1<path> unless the core owns it
    *engine.mount("/monitoring/drift", engine.drift, "GET"),
    *engine.mount("/monitoring/history", engine.history, "GET"),
    *engine.mount("/monitoring/freshness", engine.freshness, "GET"),
    *engine.mount("/monitoring/latency", engine.latency, "GET"),
    *engine.mount("/predictions/recent", engine.predictions_recent, "GET"),
    *engine.mount("/admin/audit/clear", engine.admin_audit_clear, "DELETE"),
]
router = build_router("monitoring", ROUTES)


@functions_framework.aio.http
async def app(request: Request) -> Response:
    return forward(router, request)
