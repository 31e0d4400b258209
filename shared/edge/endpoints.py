"""The operational endpoints every group serves beside its own routes (no tenant needed):
/health, /metrics, /openapi.json and /docs. /ready reads the runtime, so shared/app.py
gives it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from shared.edge.codec import JSON
from shared.metrics_auth import metrics_response
from shared.openapi import docs_page
from shared.settings import get_settings

Handler = Callable[[Request], Awaitable[Response]]


async def health(request: Request) -> Response:
    """Liveness: the process is up (no dependency is checked; that is /ready)."""
    return JSON({"status": "ok"})


async def metrics(request: Request) -> Response:
    """Prometheus exposition (every worker's counters when PROMETHEUS_MULTIPROC_DIR is set),
    behind METRICS_TOKEN (shared/metrics_auth.py)."""
    return metrics_response(request, get_settings())


def operational_routes(ready: Handler, document: dict[str, Any]) -> Sequence[Route]:
    """The common routes, with the group's OpenAPI `document` and its readiness check."""

    async def openapi(request: Request) -> Response:
        return JSON(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(docs_page(document))

    return [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        # the seeds (002/004): "all endpoints are also exposed under /api/v1/*", probes too;
        # not tenant-scoped (shared/edge/request.py UNSCOPED), like the bare ones
        Route("/api/v1/health", health, methods=["GET"], name="health_api_v1"),
        Route("/api/v1/ready", ready, methods=["GET"], name="ready_api_v1"),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
