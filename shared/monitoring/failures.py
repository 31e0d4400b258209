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

from shared.errors import ApiError
from shared.state.base import StateUnavailable
from shared.tenancy import NAME_PATTERN, TENANT_HEADER, TENANT_PATTERN

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

    tenant = request.headers.get(TENANT_HEADER, "")
    name = request.path_params.get("model", "")
    if not TENANT_PATTERN.match(tenant) or not NAME_PATTERN.match(name) or ".." in name:
        return  # nobody to count it for
    if isinstance(exc, ApiError):
        status = exc.status
    else:
        status = 503 if isinstance(exc, StateUnavailable) else 500
    current_runtime().monitor.failed(tenant, name, route, status)
