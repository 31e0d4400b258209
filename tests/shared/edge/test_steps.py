"""The edge's step list: composed once from the settings, each step over one EdgeRequest."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from starlette.requests import Request
from starlette.responses import Response

from shared.deadline import deadline_var
from shared.edge.idempotency import idempotency_of
from shared.edge.request import PREFLIGHT, PREFLIGHT_REFUSED, EdgeRequest, edge_request_of
from shared.edge.steps import (
    AdminKey,
    BodyLimit,
    CorsHeaders,
    Deadline,
    EdgeStep,
    IdempotencyKeyShape,
    Preflight,
    RateLimit,
    RequestId,
    TenantKey,
    TenantNotInQuery,
    TenantRequired,
    TenantShape,
    Traceparent,
    check_steps,
    context_steps,
)
from shared.errors import ApiError
from shared.state import MemoryStateStore
from shared.state.tenant_keys import open_key_records
from shared.tenancy import claimed_tenant, tenant_of
from shared.tenant_auth import TenantAuth
from shared.tenant_keys import TenantKeys
from tests.shared.edge.conftest import MakeSettings, no_body, scope_of


@dataclass
class _Services:
    """The two services the edge uses, over a real memory store."""

    store: MemoryStateStore
    tenant_auth: TenantAuth


def _services() -> _Services:
    store = MemoryStateStore()
    return _Services(store, TenantAuth(TenantKeys(open_key_records(store), 5), 0.0, 8))


def _request(path: str = "/api/v1/models", method: str = "GET", **headers: str) -> EdgeRequest:
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    return EdgeRequest(scope_of(path, method, sent), no_body, lambda p: "/admin/" in p)


async def _run(steps: list[EdgeStep], request: EdgeRequest) -> Response | None:
    for step in steps:
        answer = await step(request) if step.awaits else step(request)
        if answer is not None:
            return answer
    return None


def _code(exc: pytest.ExceptionInfo[ApiError]) -> tuple[int, str]:
    return exc.value.status, exc.value.code


def test_the_steps_in_order_and_only_those_the_settings_turn_on(
    make_settings: MakeSettings,
) -> None:
    plain = make_settings()
    assert [type(s) for s in context_steps(plain)] == [
        RequestId,
        Traceparent,
        TenantShape,
        Deadline,
    ]
    assert [type(s) for s in check_steps(plain, _services)] == [
        BodyLimit,
        IdempotencyKeyShape,
        TenantRequired,
        AdminKey,
    ]
    every = make_settings(
        CORS_ORIGINS="https://app.example",
        TENANT_AUTH="keys",
        RATE_LIMIT_PER_MINUTE="2",
        ADMIN_API_KEY="k3y-0123456789abcdef",
    )
    assert [type(s) for s in context_steps(every)] == [
        RequestId,
        Traceparent,
        CorsHeaders,
        TenantShape,
        Deadline,
    ]
    assert [type(s) for s in check_steps(every, _services)] == [
        Preflight,
        BodyLimit,
        IdempotencyKeyShape,
        TenantNotInQuery,
        TenantRequired,
        AdminKey,
        TenantKey,
        RateLimit,
    ]
    assert [s.awaits for s in check_steps(every, _services)][-2:] == [True, True]


async def test_the_context_steps_fill_the_request(make_settings: MakeSettings) -> None:
    settings = make_settings(CORS_ORIGINS="https://app.example")
    request = _request(
        x_request_id="req-1",
        x_tenant_id="acme",
        origin="https://app.example",
        traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
    )
    before = deadline_var.get()
    assert await _run(context_steps(settings), request) is None
    assert request.request_id == "req-1" and request.tenant == "acme"
    assert request.traceparent is not None and request.traceparent.startswith("00-aaaa")
    assert (b"x-request-id", b"req-1") in request.response_headers
    assert (b"access-control-allow-origin", b"https://app.example") in request.response_headers
    assert request.deadline is not None and deadline_var.get() is not None
    deadline_var.reset(request.deadline)
    assert deadline_var.get() == before


@pytest.mark.parametrize(
    ("headers", "tenant", "sent"),
    [
        ({"x_tenant_id": "acme-1"}, "acme-1", True),
        ({"x_tenant_id": "Acme"}, None, True),
        ({}, None, False),
    ],
)
def test_the_tenant_shape_is_checked_once_and_read_by_handlers(
    headers: dict[str, str], tenant: str | None, sent: bool
) -> None:
    request = _request("/seed/path", **headers)
    TenantShape()(request)
    assert (request.tenant, request.tenant_sent) == (tenant, sent)
    as_handler_sees_it = Request(request.scope)
    assert edge_request_of(as_handler_sees_it.scope) is request
    if tenant is not None:
        assert claimed_tenant(as_handler_sees_it) == tenant_of(as_handler_sees_it) == tenant
    else:
        with pytest.raises(ApiError) as refused:
            tenant_of(as_handler_sees_it)
        assert _code(refused) == (400, "invalid_tenant" if sent else "missing_tenant")


@pytest.mark.parametrize(
    ("path", "headers", "answer"),
    [
        ("/api/v1/models", {}, (400, "missing_tenant")),
        ("/api/v1/models", {"x_tenant_id": "a b"}, (400, "invalid_tenant")),
        ("/api/v1/admin/keys", {"x_tenant_id": "A"}, (400, "invalid_tenant")),
        ("/api/v1/admin/keys", {}, None),  # the admin key authorises it
        ("/health", {}, None),  # not tenant-scoped
        ("/api/v1/models", {"x_tenant_id": "acme"}, None),
    ],
)
def test_tenant_required_on_api_paths(
    path: str, headers: dict[str, str], answer: tuple[int, str] | None
) -> None:
    request = _request(path, **headers)
    TenantShape()(request)
    if answer is None:
        TenantRequired()(request)
        return
    with pytest.raises(ApiError) as refused:
        TenantRequired()(request)
    assert _code(refused) == answer


def test_the_idempotency_key_is_checked_once_and_read_by_handlers() -> None:
    request = _request("/api/v1/models/m/learn", "POST", idempotency_key="retry-7")
    IdempotencyKeyShape()(request)
    assert request.idempotency_key == "retry-7"
    request.body = b'{"x":{}}'  # as parse_body keeps it
    key = idempotency_of(Request(request.scope))
    assert key is not None and key.key == "retry-7" and len(key.body_hash) == 64
    request.body = b'{"x":{"a":1}}'  # another body under the same key: another hash
    other = idempotency_of(Request(request.scope))
    assert other is not None and other.body_hash != key.body_hash
    none_sent = _request("/api/v1/models", "POST")
    IdempotencyKeyShape()(none_sent)
    assert idempotency_of(Request(none_sent.scope)) is None
    for bad in ("has space", "x" * 256, "é"):
        with pytest.raises(ApiError) as refused:
            IdempotencyKeyShape()(_request(idempotency_key=bad))
        assert _code(refused) == (400, "invalid_idempotency_key")


async def test_the_body_limit_by_declared_length_and_by_what_arrives() -> None:
    with pytest.raises(ApiError) as refused:
        BodyLimit(10)(_request(content_length="11"))
    assert _code(refused) == (413, "payload_too_large")
    with pytest.raises(ApiError):
        BodyLimit(10)(_request(content_length="-1"))
    request = _request()  # no Content-Length (chunked): counted as it arrives

    async def big() -> dict[str, object]:
        return {"type": "http.request", "body": b"x" * 11, "more_body": False}

    request.receive = big
    BodyLimit(10)(request)
    with pytest.raises(ApiError) as counted:
        await request.receive()
    assert _code(counted) == (413, "payload_too_large")


async def test_preflight_answers_at_once_or_refuses(make_settings: MakeSettings) -> None:
    settings = make_settings(CORS_ORIGINS="https://app.example")
    cors = context_steps(settings)[2]
    asked = {"access_control_request_method": "POST"}
    allowed = _request(method="OPTIONS", origin="https://app.example", **asked)
    cors(allowed)
    assert allowed.preflight == PREFLIGHT
    answer = Preflight()(allowed)
    assert answer is not None and answer.status_code == 204
    other = _request(method="OPTIONS", origin="https://evil.example", **asked)
    cors(other)
    assert other.preflight == PREFLIGHT_REFUSED
    with pytest.raises(ApiError) as refused:
        Preflight()(other)
    assert _code(refused) == (403, "cors_origin_not_allowed")
    assert Preflight()(_request()) is None


def test_the_admin_key_marks_the_request_admin(make_settings: MakeSettings) -> None:
    step = AdminKey(make_settings(ADMIN_API_KEY="k3y-0123456789abcdef"))
    with pytest.raises(ApiError) as refused:
        step(_request("/api/v1/admin/keys"))
    assert _code(refused) == (401, "missing_api_key")
    request = _request("/api/v1/admin/keys", x_api_key="k3y-0123456789abcdef")
    step(request)
    assert request.admin


async def test_tenant_key_then_rate_limit_count_the_authenticated_tenant() -> None:
    services = _services()
    issued = await services.tenant_auth._keys.issue("acme")
    steps: list[EdgeStep] = [
        TenantShape(),
        TenantKey(lambda: services),
        RateLimit(lambda: services, 2),
    ]
    for _ in range(2):
        request = _request(x_tenant_id="acme", x_tenant_key=issued.key)
        assert await _run(steps, request) is None
        assert request.keys_required and request.authenticated == "acme"
        assert tenant_of(Request(request.scope)) == "acme"
    with pytest.raises(ApiError) as limited:
        await _run(steps, _request(x_tenant_id="acme", x_tenant_key=issued.key))
    assert _code(limited) == (429, "rate_limited")
    with pytest.raises(ApiError) as unknown:
        await _run(steps, _request(x_tenant_id="other"))
    assert unknown.value.status == 401
    # outside /api/v1 the edge authenticates nobody, so tenant_of fails closed
    outside = _request("/seed/path", x_tenant_id="acme", x_tenant_key=issued.key)
    await _run(steps, outside)
    with pytest.raises(ApiError) as closed:
        tenant_of(Request(outside.scope))
    assert _code(closed) == (401, "tenant_not_authenticated")


def test_a_request_that_skipped_the_edge_is_a_wiring_bug() -> None:
    with pytest.raises(RuntimeError, match="did not pass the edge"):
        tenant_of(Request(scope_of()))
