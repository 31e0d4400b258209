"""Route helpers shared by the compat surfaces: seed paths outside /api/v1, and the ML
service's `{success, ...}` envelope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.context import request_id_var
from shared.edge.codec import JSON
from shared.edge.router import TenantScopedRoute
from shared.errors import ApiError, envelope, unprocessable
from shared.unsupervised import TASKS as UNSUPERVISED_TASKS

Handler = Callable[[Request], Awaitable[Response]]


def mounted(
    path: str,
    handler: Handler,
    methods: list[str],
    *,
    prefixes: Iterable[str],
    root: bool = True,
) -> list[Route]:
    """One seed endpoint under each prefix (e.g. /api/v1, /api/v1/engine) and, with `root`,
    at the seed's bare path. Route names differ so OpenAPI operation ids stay unique."""
    name = handler.__name__
    routes = [
        Route(f"{prefix}{path}", handler, methods=methods, name=f"{name}{prefix.replace('/', '_')}")
        for prefix in prefixes
    ]
    if root:
        # the edge scopes it as it does /api/v1: tenant, tenant key, rate limit
        routes.append(TenantScopedRoute(path, handler, methods=methods, name=f"{name}_root"))
    return routes


def ok(data: object, status: int = 200, message: str | None = None) -> Response:
    """The ML service's success envelope: `{"success": true, ["message",] "data": ...}`."""
    body: dict[str, object] = {"success": True}
    if message is not None:
        body["message"] = message
    body["data"] = data
    return JSON(body, status_code=status)


def ml_service_error(error: ApiError) -> Response:
    """An error as the ML service's clients parse it, `{"success": false, "error": ...}`, with
    the status the core answers: the platform's envelope plus `success`. Registered as the
    renderer of every ML service path (compat/ml_service/handlers.py), so an error the edge
    raises before a handler runs (a bad tenant, a body too large) has the seed's shape too."""
    body = {"success": False, **envelope(error.code, error.message, request_id_var.get())}
    return JSON(body, status_code=error.status, headers=error.headers)


def _unsupported() -> ApiError:
    return unprocessable(
        "this model answers a score or a cluster, which this seed API cannot carry; "
        "use POST /api/v1/models/{model}/predict",
        "unsupported_task",
    )


def require_point_task(task: str) -> None:
    """The seeds' APIs serve point predictions: a detector's score or a clusterer's cluster
    (issue 17) has no seed shape, so such a model is a 422, never a 500. Checked with the
    model's task (`Serving.task`) before the core call, so a refused request has learned
    nothing and kept no prediction."""
    if task in UNSUPERVISED_TASKS:
        raise _unsupported()


def prediction_of(answer: dict[str, Any]) -> Any:
    """The answer's point prediction (a route checked `require_point_task` first; a model
    replaced by another task in between is still a 422 here, never a 500)."""
    if "prediction" not in answer:
        raise _unsupported()
    return answer["prediction"]
