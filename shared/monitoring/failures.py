"""Per-tenant error counts of the model routes, for the operator dashboard.

The HTTP edge counts every request by route and status for Prometheus (process-wide, no
tenant); this decorator adds what a tenant may see: its own failures per model and route,
shared across instances through the monitor's buffered flush.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from shared.edge.errors import api_error_of
from shared.edge.request import edge_request_of
from shared.tenancy import NAME_PATTERN

Handler = Callable[[Request], Awaitable[Response]]


def counts_failures(route: str) -> Callable[[Handler], Handler]:
    """Count the handler's error answers against the request's tenant and model."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def counted(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                _count(request, route, exc)
                raise

        return counted

    return wrap


def _count(request: Request, route: str, exc: Exception) -> None:
    from shared.runtime import current_runtime  # the runtime imports the handlers' modules

    tenant = edge_request_of(request.scope).tenant  # the edge checked its shape
    name = request.path_params.get("model", "")
    if tenant is None or not NAME_PATTERN.match(name) or ".." in name:
        return  # nobody to count it for
    error = api_error_of(exc)  # the status the edge answers (shared/edge/errors.py)
    status = 500 if error is None else error.status
    current_runtime().monitor.failed(tenant, name, route, status)
