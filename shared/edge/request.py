"""`EdgeRequest`: one request as the edge sees it, built once per request.

The edge's steps (shared/edge/steps.py) fill it in — request id, the tenant's shape, whether it
was authenticated, the Idempotency-Key — and it rides on the ASGI scope, so a handler reads
the validated values (`shared.tenancy.tenant_of`, `shared.edge.idempotency.idempotency_of`)
instead of checking the headers again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import Token
from dataclasses import dataclass

from starlette._utils import get_route_path  # the path routes match (root_path removed)
from starlette.types import Receive, Scope

API_PREFIX = "/api/v1/"
# Tenant-scoped paths (architecture.md §3): the API, and the Open Inference Protocol's model
# routes outside it (shared/protocols/oip.py MODELS_PREFIX), which get the same tenant check,
# tenant key and rate limit.
TENANT_PREFIXES = (API_PREFIX, "/v2/models/")
# ... except the probes, also served under /api/v1 (shared/edge/endpoints.py)
UNSCOPED = frozenset({"/api/v1/health", "/api/v1/ready"})
# ... and where the tenant may come with the body instead of X-Tenant-ID: pushed CloudEvents
# name theirs in the `tenant` attribute (a broker sets no header). The handler checks that
# tenant as the edge would (shared/push_ingest.py TenantCheck); a malformed X-Tenant-ID is
# still refused here.
TENANT_IN_BODY = frozenset({"/api/v1/events"})
# Long-lived responses (Server-Sent Events, shared/monitoring/sse.py): no request deadline,
# and with TENANT_AUTH=none the tenant may come as `?tenant=` (a browser's EventSource cannot
# send headers; with tenant keys the dashboard streams with fetch and headers instead, so a
# key never travels in a URL).
STREAM_PATH = "/api/v1/stream/events"
LONG_LIVED = frozenset({STREAM_PATH})
# On every ASGI scope the server (shared/connection_guard.py) serves: a `ConnectionControl`,
# with which a long-lived response learns of shutdown and drops a stalled client.
CONNECTION_KEY = "ml.connection"
_SCOPE_KEY = "ml.edge"


@dataclass(frozen=True)
class ConnectionControl:
    """What the server lets a long-lived response do to its connection."""

    shutting_down: asyncio.Event  # set once, when the server begins its graceful shutdown
    abort: Callable[[], None]  # drop the connection now, unsent bytes discarded


# What a CORS request is: not a preflight, a preflight to answer, one to refuse.
NOT_PREFLIGHT, PREFLIGHT, PREFLIGHT_REFUSED = 0, 1, 2


class EdgeRequest:
    __slots__ = (
        "admin",
        "admin_route",
        "api",
        "authenticated",
        "body",
        "deadline",
        "headers",
        "idempotency_key",
        "keys_required",
        "method",
        "path",
        "preflight",
        "receive",
        "request_id",
        "response_headers",
        "scope",
        "tenant",
        "tenant_sent",
        "traceparent",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        is_admin_path: Callable[[str], bool],
        is_scoped_path: Callable[[str], bool] = lambda path: False,
    ) -> None:
        self.scope = scope
        self.receive = receive  # the body limit wraps it
        # The first of a repeated header wins, as in starlette's Request.headers: the rate
        # limit must count the very tenant the handler serves.
        self.headers: dict[bytes, bytes] = dict(reversed(scope["headers"]))
        self.method: str = scope["method"]
        self.path = get_route_path(scope)
        # tenant-scoped (architecture.md §3)
        self.api = (
            self.path.startswith(TENANT_PREFIXES) and self.path not in UNSCOPED
        ) or is_scoped_path(self.path)  # a TenantScopedRoute outside them
        self.admin_route = is_admin_path(self.path)
        self.request_id = ""
        self.traceparent: str | None = None
        self.response_headers: list[tuple[bytes, bytes]] = []  # added to the answer
        self.preflight = NOT_PREFLIGHT
        self.tenant: str | None = None  # X-Tenant-ID when it has the tenant shape
        self.tenant_sent = False  # whether X-Tenant-ID was sent at all
        self.admin = False  # the admin key was verified
        self.keys_required = False  # TENANT_AUTH=keys
        self.authenticated: str | None = None  # the tenant whose X-Tenant-Key was verified
        self.idempotency_key: str | None = None  # well-formed, or None when not sent
        self.deadline: Token[float | None] | None = None  # reset when the request ends
        self.body = b""  # as read by the handler (shared/edge/body.py), for the idempotency hash
        scope[_SCOPE_KEY] = self

    def header(self, name: bytes) -> str | None:
        raw = self.headers.get(name)
        return raw.decode("latin-1") if raw is not None else None

    @property
    def api_tenant(self) -> str | None:
        """The tenant that tenant-scoped requests are authenticated, rate limited and logged as."""
        return self.tenant if self.api else None


def edge_request_of(scope: Scope) -> EdgeRequest:
    """The request's EdgeRequest; a route reached without the edge is a wiring bug."""
    try:
        found: EdgeRequest = scope[_SCOPE_KEY]
    except KeyError:
        raise RuntimeError("this request did not pass the edge (shared/edge)") from None
    return found
