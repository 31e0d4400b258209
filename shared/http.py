"""The HTTP edge every function shares: request ids, body limit, JSON in/out, error envelope.

Each function group builds its Starlette router with `build_router`; the functions-framework
entry point forwards the raw ASGI call to that router with `forward`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from starlette._utils import get_route_path  # the path routes match (root_path removed)
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import tracing
from shared.context import choose_request_id, request_id_var, traceparent_var, valid_traceparent
from shared.deadline import deadline_var
from shared.errors import ApiError, envelope
from shared.logs import ACCESS, configure_logging, log_access, trace_id_of
from shared.metrics_auth import metrics_response, warn_if_closed
from shared.monitoring.prometheus import observe_request
from shared.openapi import docs_page, openapi_document
from shared.protocols import oip
from shared.ratelimit import rate_limited
from shared.registry.base import (
    AliasConflict,
    ChecksumMismatch,
    RegistryUnavailable,
    VersionExists,
    VersionNotFound,
)
from shared.security import admin_prefixes, check_admin_key
from shared.settings import Settings, get_settings
from shared.state.base import Idempotency, StateUnavailable
from shared.tenancy import SCOPE_ADMIN, SCOPE_AUTHENTICATED, SCOPE_KEYS_REQUIRED

log = logging.getLogger("ml.http")
ModelT = TypeVar("ModelT", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: a non-finite model output is reported as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dump_json(data: Any) -> bytes:
    try:
        text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_finite(data), allow_nan=False, separators=(",", ":"))
    return text.encode()


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dump_json(content)


def error_response(error: ApiError, path: str = "") -> Response:
    if oip.is_oip_path(path):  # the Open Inference Protocol's clients parse its own shape
        return JSON(
            oip.error_body(error.message),
            status_code=oip.error_status(error.status),
            headers=error.headers,
        )
    return JSON(
        envelope(error.code, error.message, request_id_var.get()),
        status_code=error.status,
        headers=error.headers,
    )


async def read_body(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    body = await request.body()
    if not body.strip():
        raise ApiError(400, "empty_body", "the request body is empty; send a JSON object")
    return body


def _describe(exc: ValidationError) -> ApiError:
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return ApiError(400, "invalid_json", f"the body is not valid JSON: {first['msg']}")
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        parts.append(f"{where or 'body'}: {err['msg']}")
    return ApiError(422, "validation_error", "; ".join(parts))


async def parse_body(request: Request, model: type[ModelT]) -> ModelT:
    """Parse and validate a JSON body; bad JSON → 400, wrong shape → 422 naming the field."""
    body = await read_body(request)
    request.state.raw_body = body
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise _describe(exc) from None


async def optional_body(request: Request, model: type[ModelT]) -> ModelT:
    """Like parse_body, but an empty body means the model's defaults."""
    body = await request.body()
    request.state.raw_body = body
    if not body.strip():
        return model()
    return await parse_body(request, model)


# Headers a browser may send cross-origin (preflight answer) and may read back.
CORS_ALLOW_HEADERS = (
    b"Content-Type, X-Tenant-ID, X-Tenant-Key, X-API-Key, Idempotency-Key, X-Request-ID, "
    b"traceparent, tracestate"
)
CORS_ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
CORS_EXPOSE_HEADERS = b"X-Request-ID, Retry-After"
CORS_MAX_AGE = b"600"
_API_PREFIX = "/api/v1/"
# Tenant-scoped paths (architecture.md §3): the API, and the Open Inference Protocol's model
# routes outside it, which get the same tenant check, tenant key and rate limit here.
_TENANT_PREFIXES = (_API_PREFIX, oip.MODELS_PREFIX)
# An OPTIONS request with Origin and Access-Control-Request-Method is a CORS preflight.
_NOT_PREFLIGHT, _PREFLIGHT, _PREFLIGHT_REFUSED = 0, 1, 2
# shared.tenancy.TENANT_PATTERN on raw header bytes (fullmatch: no trailing newline slips by)
_TENANT = re.compile(rb"[a-z0-9][a-z0-9-]{0,62}")


class _Edge:
    """What the edge derives from one Settings object, once (rebuilt if settings change)."""

    __slots__ = (
        "cors",
        "cors_any",
        "max_body",
        "origins",
        "rate_limit",
        "settings",
        "tenant_keys",
    )

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.max_body = settings.max_body_bytes
        self.rate_limit = settings.rate_limit_per_minute
        self.tenant_keys = settings.tenant_auth == "keys"
        origins = settings.cors_origin_list
        self.cors_any = "*" in origins
        # Browsers send scheme and host in lower case.
        self.origins = frozenset(o.lower().encode() for o in origins if o != "*")
        self.cors = self.cors_any or bool(self.origins)

    def allowed_origin(self, origin: bytes) -> bytes | None:
        """The Access-Control-Allow-Origin value for `origin`, or None if it is not allowed."""
        if origin in self.origins:
            return origin
        return b"*" if self.cors_any else None


class _Exchange:
    """One request's response side: appends the edge's headers and remembers the status."""

    __slots__ = ("extra", "send", "status")

    def __init__(self, send: Send, extra: list[tuple[bytes, bytes]]) -> None:
        self.send = send
        self.extra = extra
        self.status = 0  # 0 until the response has started

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message["headers"] = [*message.get("headers", []), *self.extra]
        await self.send(message)


class Authenticator(Protocol):
    async def authenticate(self, tenant: str, sent: str | None) -> None:
        """Return if `sent` is a valid key of `tenant`, else raise 401/403."""


class RateLimiter(Protocol):
    async def rate_limit(self, tenant: str, per_minute: int) -> int:
        """0 if the tenant may go on, else the microseconds to wait."""


class EdgeServices(Protocol):
    """What the edge needs of the process runtime. A Protocol, not the runtime itself: the
    runtime builds every layer, so importing it here would close an import circle."""

    @property
    def tenant_auth(self) -> Authenticator: ...

    @property
    def store(self) -> RateLimiter: ...


class FunctionApp:
    """One function group as plain ASGI: request id, traceparent, CORS, body-size limit, admin
    key, tenant key, per-tenant rate limit, routing, the error envelope and one access-log line.
    (Starlette's app stack is skipped on purpose: it costs more per request than a predict.)"""

    def __init__(
        self, group: str, routes: Sequence[Route], services: Callable[[], EdgeServices]
    ) -> None:
        self.group = group
        self.routes = list(routes)
        self.admin_prefixes = admin_prefixes(r.path for r in self.routes)
        # called per request: the runtime is built on first use, once per event loop
        self._runtime = services
        self._edge: _Edge | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return
        began = time.perf_counter()
        settings = get_settings()
        edge = self._edge
        if edge is None or edge.settings is not settings:  # start-up, or tests swapped settings
            _configure_process(settings)
            edge = self._edge = _Edge(settings)
        # The first of a repeated header wins, as in starlette's Request.headers: the rate
        # limit must count the very tenant the handler serves.
        headers = dict(reversed(scope["headers"]))
        request_id = choose_request_id(_decode(headers.get(b"x-request-id")))
        request_id_var.set(request_id)
        traceparent = valid_traceparent(_decode(headers.get(b"traceparent")))
        traceparent_var.set(traceparent)
        exchange = _Exchange(send, [(b"x-request-id", request_id.encode())])
        preflight = _NOT_PREFLIGHT
        if edge.cors:
            if edge.origins:  # the answer depends on Origin, with or without one: caches key on it
                exchange.extra.append((b"vary", b"Origin"))
            origin = headers.get(b"origin")
            if origin is not None:
                preflight = _cors(edge, origin, scope["method"], headers, exchange.extra)
        path = get_route_path(scope)
        tenant: str | None = None
        if path.startswith(_TENANT_PREFIXES):
            raw = headers.get(b"x-tenant-id")
            if raw is not None and _TENANT.fullmatch(raw):
                tenant = raw.decode()
        tracer = tracing.TRACER
        # one deadline for the whole request (shared/deadline.py); reset after, since an
        # in-process client (tests) runs the app in its own context
        deadline = deadline_var.set(time.monotonic() + settings.request_deadline_seconds)
        try:
            if tracer is None:
                await self._serve(scope, receive, exchange, edge, headers, path, tenant, preflight)
            else:
                traceparent = await self._traced(
                    tracer, scope, receive, exchange, edge, headers, path, tenant, preflight
                )
        finally:
            deadline_var.reset(deadline)
        route = scope.get("ml.route")
        elapsed = time.perf_counter() - began
        observe_request(
            route.path if route is not None else "unmatched",
            scope["method"],
            exchange.status,
            elapsed,
        )
        if ACCESS.isEnabledFor(logging.INFO):
            log_access(
                request_id,
                tenant,
                scope["method"],
                route.path if route is not None else None,
                scope["path"],
                exchange.status,
                elapsed * 1000,
                trace_id_of(traceparent),
            )

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        exchange: _Exchange,
        edge: _Edge,
        headers: dict[bytes, bytes],
        path: str,
        tenant: str | None,
        preflight: int,
    ) -> None:
        """Everything after the request id; any failure leaves in the envelope."""
        limit = edge.max_body
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
            return message

        try:
            if preflight != _NOT_PREFLIGHT:
                if preflight == _PREFLIGHT_REFUSED:
                    raise ApiError(
                        403, "cors_origin_not_allowed", "this Origin is not in CORS_ORIGINS"
                    )
                await Response(status_code=204)(scope, receive, exchange)
                return
            declared = headers.get(b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                raise _too_large(limit)
            key = headers.get(b"idempotency-key")
            if key is not None and not _IDEMPOTENCY_KEY_BYTES.fullmatch(key):
                # checked here for every route, not only those that store it: a malformed key
                # is refused the same way everywhere (the OpenAPI documents it on every write)
                raise _bad_idempotency_key()
            admin = path.startswith(self.admin_prefixes)  # every admin route of the group
            if path.startswith(_TENANT_PREFIXES) and tenant is None:
                raw_tenant = headers.get(b"x-tenant-id")
                # architecture.md §3: every /api route is tenant-scoped; an admin route is authorised
                # by the admin key and needs X-Tenant-ID only if it acts on the caller's
                # tenant (its handler's tenant_of says so)
                if not admin or raw_tenant is not None:
                    raise _tenant_error(raw_tenant)
            if edge.tenant_keys:
                scope[SCOPE_KEYS_REQUIRED] = True  # tenant_of fails closed on any other route
            if admin:  # the admin key alone, never a tenant key
                check_admin_key(_decode(headers.get(b"x-api-key")), edge.settings)
                scope[SCOPE_ADMIN] = True
            elif edge.tenant_keys and tenant is not None:
                # once, before the rate limit: the budget below is the authenticated tenant's
                await self._runtime().tenant_auth.authenticate(
                    tenant, _decode(headers.get(b"x-tenant-key"))
                )
                scope[SCOPE_AUTHENTICATED] = tenant
            if edge.rate_limit and tenant is not None:  # tenant: tenant-scoped paths only
                wait = await self._runtime().store.rate_limit(tenant, edge.rate_limit)
                if wait:
                    raise rate_limited(edge.rate_limit, wait)
            await self._dispatch(scope, limited_receive, exchange)
        except Exception as exc:  # every failure leaves in the envelope, never a stack trace
            if not exchange.status:
                answer = error_response(_as_api_error(exc, scope), path)
                await answer(scope, receive, exchange)
            else:  # the response is already on its way: all that is left is to say so
                log.error("failed after the response started", exc_info=exc)

    async def _traced(
        self,
        tracer: Any,
        scope: Scope,
        receive: Receive,
        exchange: _Exchange,
        edge: _Edge,
        headers: dict[bytes, bytes],
        path: str,
        tenant: str | None,
        preflight: int,
    ) -> str:
        """_serve inside one SERVER span that continues the caller's traceparent; returns the
        span's own traceparent (for the access log)."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        method = scope["method"]
        context = tracing.parent_context(traceparent_var.get())
        with tracer.start_as_current_span(method, context=context, kind=SpanKind.SERVER) as span:
            own = tracing.traceparent_of(span)
            traceparent_var.set(own)  # events and logs downstream carry this span
            await self._serve(scope, receive, exchange, edge, headers, path, tenant, preflight)
            route = scope.get("ml.route")
            if route is not None:
                span.update_name(f"{method} {route.path}")
                span.set_attribute("http.route", route.path)
            span.set_attribute("http.request.method", method)
            span.set_attribute("url.path", scope["path"])
            span.set_attribute("http.response.status_code", exchange.status)
            span.set_attribute("ml.request_id", request_id_var.get())
            if tenant is not None:
                span.set_attribute("ml.tenant", tenant)
            if exchange.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        return own

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        allowed: Route | None = None
        for route in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                scope["ml.route"] = route  # for the access log and the span
                # call the endpoint directly: errors propagate to _serve (the envelope)
                response = await route.endpoint(Request(scope, receive))
                await response(scope, receive, send)
                return
            if match is Match.PARTIAL and allowed is None:
                allowed = route
        method, path = scope["method"], scope["path"]
        if allowed is not None:
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}")
        raise ApiError(404, "route_not_found", f"no route {method} {path}")


def _cors(
    edge: _Edge,
    origin: bytes,
    method: str,
    headers: dict[bytes, bytes],
    extra: list[tuple[bytes, bytes]],
) -> int:
    """Add the CORS response headers for `origin`; tell whether this is a preflight."""
    allowed = edge.allowed_origin(origin)
    preflight = _NOT_PREFLIGHT
    if method == "OPTIONS" and b"access-control-request-method" in headers:
        preflight = _PREFLIGHT_REFUSED if allowed is None else _PREFLIGHT
    if allowed is not None:
        extra.append((b"access-control-allow-origin", allowed))
        if preflight == _PREFLIGHT:
            extra += _PREFLIGHT_HEADERS
        else:
            extra.append((b"access-control-expose-headers", CORS_EXPOSE_HEADERS))
    return preflight


_PREFLIGHT_HEADERS = [
    (b"access-control-allow-methods", CORS_ALLOW_METHODS),
    (b"access-control-allow-headers", CORS_ALLOW_HEADERS),
    (b"access-control-max-age", CORS_MAX_AGE),
]


def _as_api_error(exc: Exception, scope: Scope) -> ApiError:
    error = api_error_of(exc)
    if error is not None:
        return error
    log.error("unhandled error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
    return ApiError(500, "internal_error", "internal error; quote the request id")


def api_error_of(exc: Exception) -> ApiError | None:
    """The one mapping of exceptions to answers (statuses, codes, Retry-After), shared with
    the compat error shapes (compat/edge.py); None for an exception nobody expected."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ClientDisconnect):
        # the client left mid-body, or its body stalled and the server answered 408 already
        # (shared.connection_guard): nobody reads this answer, and it is not our failure
        return ApiError(408, "request_timeout", "the request body did not arrive in full")
    if isinstance(exc, ChecksumMismatch):
        log.error("registry artifact failed its checksum: %s", exc)
        return ApiError(409, "checksum_mismatch", f"the stored artifact is corrupt: {exc}")
    if isinstance(exc, VersionExists | AliasConflict):
        # a race another writer won (shared/lifecycle.py serialises its own; this is the rest)
        log.warning("registry conflict: %s", exc)
        return ApiError(409, "registry_conflict", "the model changed concurrently; retry")
    if isinstance(exc, VersionNotFound):
        return ApiError(404, "version_not_found", "that version does not exist for this model")
    if isinstance(exc, RegistryUnavailable):
        log.warning("registry unavailable: %s", exc)
        return ApiError(
            503,
            "registry_unavailable",
            "the model registry is unreachable; retry",
            {"Retry-After": "2"},
        )
    if isinstance(exc, StateUnavailable):
        log.warning("state store unavailable: %s", exc)
        return ApiError(
            503, "state_unavailable", "the state store is unreachable; retry", {"Retry-After": "1"}
        )
    return None


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _tenant_error(raw: bytes | None) -> ApiError:
    """The same answers as shared.tenancy.tenant_of, given before any handler runs."""
    if raw is None:
        return ApiError(400, "missing_tenant", "send the X-Tenant-ID header")
    return ApiError(
        400,
        "invalid_tenant",
        "X-Tenant-ID must match ^[a-z0-9][a-z0-9-]{0,62}$ (lower-case letters, digits, '-')",
    )


def _decode(raw: bytes | None) -> str | None:
    return raw.decode("latin-1") if raw is not None else None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the body exceeds MAX_BODY_BYTES ({limit} bytes)")


async def health(request: Request) -> Response:
    """Liveness: the process is up (no dependency is checked; that is /ready)."""
    return JSON({"status": "ok"})


async def metrics(request: Request) -> Response:
    """Prometheus exposition (every worker's counters when PROMETHEUS_MULTIPROC_DIR is set),
    behind METRICS_TOKEN (shared/metrics_auth.py)."""
    return metrics_response(request, get_settings())


_configured_for: Settings | None = None


def _configure_process(settings: Settings) -> None:
    """Logging and tracing, once per process (the gateway builds one router per group)."""
    global _configured_for
    if _configured_for is not settings:
        _configured_for = settings
        configure_logging(settings.log_level)
        tracing.configure_tracing(settings)
        warn_if_closed(settings)


def build_router(
    group: str,
    routes: Sequence[Route],
    *,
    services: Callable[[], EdgeServices],
    ready: Callable[[Request], Awaitable[Response]],
) -> FunctionApp:
    """One function group's ASGI app: its routes plus /health, /ready, /metrics, OpenAPI.
    `services` and `ready` come from the runtime (shared/app.py joins the two)."""
    settings = get_settings()  # validate the configuration at start-up, not on first request
    _configure_process(settings)
    document = openapi_document(routes, f"online-ml {group}")

    async def openapi(request: Request) -> Response:
        return JSON(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(docs_page(document))

    common = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    return FunctionApp(group, [*routes, *common], services)


class _Forward(Response):
    """A response that hands the whole ASGI call on to a router (functions-framework bridge)."""

    def __init__(self, router: ASGIApp) -> None:
        self.router = router
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router(scope, receive, send)


def forward(router: ASGIApp, request: Request) -> Response:
    """functions-framework gives us a Request; let our router answer the raw ASGI call."""
    return _Forward(router)


_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_IDEMPOTENCY_KEY_BYTES = re.compile(rb"[\x21-\x7e]{1,255}")  # fullmatch on raw header bytes


def _bad_idempotency_key() -> ApiError:
    return ApiError(
        400, "invalid_idempotency_key", "Idempotency-Key is 1-255 visible ASCII characters"
    )


def idempotency_of(request: Request) -> Idempotency | None:
    """The request's Idempotency-Key with a hash of what it asks (call after parse_body)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise _bad_idempotency_key()
    body: bytes = getattr(request.state, "raw_body", b"")
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode() + body).hexdigest()
    return Idempotency(key, digest)
