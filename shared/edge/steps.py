"""The edge's checks as small steps, composed once per settings over one `EdgeRequest`.

A step reads and fills the request; it refuses by raising (an ApiError, answered in the
envelope) or answers at once by returning a Response (a CORS preflight); None goes on. Two
steps await I/O (tenant key, rate limit) and say so with `awaits`. `context_steps` never
refuse and run first (the request id and traceparent are needed by every answer and the
span); `check_steps` run inside the request's span, in this order, before routing:

    request id → traceparent → CORS headers → tenant shape → deadline
    → preflight → body size → Idempotency-Key shape → tenant required → admin key
    → tenant key → rate limit

(architecture.md §3). Each value is checked here once; handlers read the results from the
EdgeRequest (`shared.tenancy.tenant_of`, `shared.edge.idempotency.idempotency_of`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import parse_qs

from starlette.responses import Response

from shared.context import choose_request_id, request_id_var, traceparent_var, valid_traceparent
from shared.deadline import deadline_var
from shared.edge.body import limited, too_large
from shared.edge.cors import CorsPolicy
from shared.edge.idempotency import KEY_SHAPE, bad_idempotency_key
from shared.edge.request import LONG_LIVED, PREFLIGHT_REFUSED, TENANT_IN_BODY, EdgeRequest
from shared.errors import ApiError
from shared.ratelimit import rate_limited
from shared.security import check_admin_key
from shared.settings import Settings
from shared.tenancy import TENANT_SHAPE, tenant_error


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


# The runtime, looked up per request: it is built on first use, once per event loop.
Services = Callable[[], EdgeServices]


class Step:
    """A step that does not wait: `__call__` returns None to go on or a Response to answer."""

    awaits = False

    def __call__(self, request: EdgeRequest) -> Response | None:
        raise NotImplementedError


class AwaitingStep:
    """A step that awaits I/O."""

    awaits = True

    def __call__(self, request: EdgeRequest) -> Awaitable[Response | None]:
        raise NotImplementedError


class RequestId(Step):
    """Echo a sane X-Request-ID or mint one; every answer carries it."""

    def __call__(self, request: EdgeRequest) -> None:
        request_id = choose_request_id(request.header(b"x-request-id"))
        request.request_id = request_id
        request_id_var.set(request_id)
        request.response_headers.append((b"x-request-id", request_id.encode()))


class Traceparent(Step):
    """Continue the caller's trace (a malformed traceparent starts a new one)."""

    def __call__(self, request: EdgeRequest) -> None:
        request.traceparent = valid_traceparent(request.header(b"traceparent"))
        traceparent_var.set(request.traceparent)


class CorsHeaders(Step):
    """The CORS response headers; tells the Preflight step whether this is a preflight."""

    def __init__(self, policy: CorsPolicy) -> None:
        self.policy = policy
        self.vary = bool(policy.origins)

    def __call__(self, request: EdgeRequest) -> None:
        if self.vary:  # the answer depends on Origin, with or without one: caches key on it
            request.response_headers.append((b"vary", b"Origin"))
        origin = request.headers.get(b"origin")
        if origin is not None:
            request.preflight = self.policy.headers_for(
                origin, request.method, request.headers, request.response_headers
            )


class TenantShape(Step):
    """X-Tenant-ID checked once: `request.tenant` is the tenant when it has the shape of
    one. Refusing is TenantRequired's (and, outside /api/v1, the handler's tenant_of).

    `query_tenant`: with TENANT_AUTH=none only, a long-lived route (an EventSource, which
    cannot send headers) may name its tenant as `?tenant=` instead; the header wins. With
    tenant keys a `?tenant=` there is refused (TenantNotInQuery)."""

    def __init__(self, query_tenant: bool = False) -> None:
        self.query_tenant = query_tenant

    def __call__(self, request: EdgeRequest) -> None:
        raw = request.headers.get(b"x-tenant-id")
        if raw is None and self.query_tenant and request.path in LONG_LIVED:
            sent = parse_qs(request.scope.get("query_string", b"").decode("latin-1"))
            if "tenant" in sent:
                raw = sent["tenant"][0].encode("latin-1")
        request.tenant_sent = raw is not None
        if raw is not None and TENANT_SHAPE.fullmatch(raw):
            request.tenant = raw.decode()


class Deadline(Step):
    """One deadline for the whole request (shared/deadline.py); the app resets it after."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, request: EdgeRequest) -> None:
        if request.path not in LONG_LIVED:  # a stream is open for as long as it is read
            request.deadline = deadline_var.set(time.monotonic() + self.seconds)


class Preflight(Step):
    """Answer a CORS preflight at once: 204, or 403 for an origin not in CORS_ORIGINS."""

    def __call__(self, request: EdgeRequest) -> Response | None:
        if not request.preflight:
            return None
        if request.preflight == PREFLIGHT_REFUSED:
            raise ApiError(403, "cors_origin_not_allowed", "this Origin is not in CORS_ORIGINS")
        return Response(status_code=204)


class BodyLimit(Step):
    """MAX_BODY_BYTES: by Content-Length at once, and by counting what arrives."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(self, request: EdgeRequest) -> None:
        declared = request.headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            raise too_large(self.limit)
        request.receive = limited(request.receive, self.limit)


class IdempotencyKeyShape(Step):
    """Checked for every route, not only those that store it: a malformed key is refused the
    same way everywhere (the OpenAPI documents it on every write)."""

    def __call__(self, request: EdgeRequest) -> None:
        key = request.headers.get(b"idempotency-key")
        if key is not None:
            if not KEY_SHAPE.fullmatch(key):
                raise bad_idempotency_key()
            request.idempotency_key = key.decode("ascii")


class TenantRequired(Step):
    """architecture.md §3: every /api route is tenant-scoped; an admin route is authorised by
    the admin key and needs X-Tenant-ID only if it acts on the caller's tenant (its handler's
    tenant_of says so), but a malformed one is refused there too."""

    def __call__(self, request: EdgeRequest) -> None:
        missing = request.api and request.tenant is None
        if missing and not request.tenant_sent and request.path in TENANT_IN_BODY:
            return
        if missing and (not request.admin_route or request.tenant_sent):
            raise tenant_error(request.tenant_sent)


class TenantNotInQuery(Step):
    """TENANT_AUTH=keys: a long-lived route sent `?tenant=` is refused with a clear 400 rather
    than the query ignored (the client means the tenant; its key must not go in a URL)."""

    def __call__(self, request: EdgeRequest) -> None:
        if request.path in LONG_LIVED:
            sent = parse_qs(request.scope.get("query_string", b"").decode("latin-1"))
            if "tenant" in sent:
                raise ApiError(
                    400,
                    "tenant_in_query",
                    "with TENANT_AUTH=keys send the tenant as the X-Tenant-ID and X-Tenant-Key "
                    "headers, never as ?tenant=",
                )


class AdminKey(Step):
    """Every admin route of the group: the admin key alone, never a tenant key."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, request: EdgeRequest) -> None:
        if request.admin_route:
            check_admin_key(request.header(b"x-api-key"), self.settings)
            request.admin = True


class TenantKey(AwaitingStep):
    """TENANT_AUTH=keys: X-Tenant-Key of the /api tenant, once, before the rate limit (the
    budget is the authenticated tenant's). Other routes' tenant_of then fails closed."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def __call__(self, request: EdgeRequest) -> None:
        request.keys_required = True
        tenant = request.api_tenant
        if tenant is not None and not request.admin:
            await self.services().tenant_auth.authenticate(tenant, request.header(b"x-tenant-key"))
            request.authenticated = tenant


class RateLimit(AwaitingStep):
    """RATE_LIMIT_PER_MINUTE per /api tenant (shared/ratelimit.py), 429 with Retry-After."""

    def __init__(self, services: Services, per_minute: int) -> None:
        self.services = services
        self.per_minute = per_minute

    async def __call__(self, request: EdgeRequest) -> None:
        tenant = request.api_tenant
        if tenant is not None:
            wait = await self.services().store.rate_limit(tenant, self.per_minute)
            if wait:
                raise rate_limited(self.per_minute, wait)


EdgeStep = Step | AwaitingStep


def context_steps(settings: Settings) -> list[EdgeStep]:
    """What every request gets before anything may refuse it."""
    cors = CorsPolicy(settings)
    steps: list[EdgeStep] = [RequestId(), Traceparent()]
    if cors.enabled:
        steps.append(CorsHeaders(cors))
    steps += [
        TenantShape(query_tenant=settings.tenant_auth == "none"),
        Deadline(settings.request_deadline_seconds),
    ]
    return steps


def check_steps(settings: Settings, services: Services) -> list[EdgeStep]:
    """The checks, in order; a check the settings turn off is not in the list at all."""
    steps: list[EdgeStep] = []
    if CorsPolicy(settings).enabled:
        steps.append(Preflight())
    steps += [
        BodyLimit(settings.max_body_bytes),
        IdempotencyKeyShape(),
    ]
    if settings.tenant_auth == "keys":
        steps.append(TenantNotInQuery())
    steps += [
        TenantRequired(),
        AdminKey(settings),
    ]
    if settings.tenant_auth == "keys":
        steps.append(TenantKey(services))
    if settings.rate_limit_per_minute:
        steps.append(RateLimit(services, settings.rate_limit_per_minute))
    return steps
