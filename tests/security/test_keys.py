"""Tenant API keys (TENANT_AUTH=keys): X-Tenant-ID is no longer taken on its word.

Every tenant-scoped route refuses a request without a key of its tenant (401), with an
unknown or revoked key (401, on every instance), with another tenant's key (403), and changes
nothing when it refuses; the right key is served. Keys are shown once and stored hashed; the
rate limit counts the authenticated tenant; TENANT_AUTH=none keeps the old behaviour.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions.gateway import routes as gateway_routes
from shared import tenant_keys_api
from shared.edge.codec import JSON
from shared.edge.function_app import FunctionApp
from shared.runtime import current_runtime
from shared.settings import ConfigError, load_settings
from shared.tenancy import tenant_of
from tests.edge import edge_client
from tests.security.conftest import assert_envelope, tenant_state
from tests.servers import ROOT, AppProcess, free_port

ADMIN = "k3y-0123456789abcdef"
A = {"X-API-Key": ADMIN}
KEYS_ENV = {"TENANT_AUTH": "keys", "ADMIN_API_KEY": ADMIN}
X = {"a": 1.0, "b": 2.0}
SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
# well formed (so it is looked up) but never issued
UNKNOWN_KEY = f"tk_acme_{'0' * 16}_{'A' * 43}"
KEY_FORMAT = re.compile(r"tk_acme_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


def keys_url(tenant: str = "acme") -> str:
    return f"/api/v1/admin/tenants/{tenant}/keys"


@dataclass(frozen=True)
class Call:
    """One request of a route class, and what the right key gets."""

    name: str
    method: str
    path: str
    body: dict[str, Any] | None
    ok: int


ROUTE_CLASSES = [
    Call("train: create", "POST", "/api/v1/models", {**SPEC, "name": "fresh"}, 201),
    Call("train: learn", "POST", "/api/v1/models/m/learn", {"x": X, "y": 2.0}, 200),
    Call("train: delete", "DELETE", "/api/v1/models/m", None, 204),
    Call("predict: predict_learn", "POST", "/api/v1/models/m/predict_learn", {"x": X, "y": 1}, 200),
    Call("predict: predict", "POST", "/api/v1/models/m/predict", {"x": X}, 200),
    Call("batch: predict", "POST", "/api/v1/models/m/predict/batch", {"instances": [X]}, 200),
    Call("activate: version", "POST", "/api/v1/models/m/versions", {}, 201),
    Call("activate: activate", "POST", "/api/v1/models/m/versions/1/activate", None, 200),
    Call("ingest: observe", "POST", "/api/v1/series/s/observations", {"value": 3.0}, 200),
    Call("ingest: describe", "GET", "/api/v1/series/s", None, 200),
    Call("monitoring: metrics", "GET", "/api/v1/models/m/metrics", None, 200),
    Call("monitoring: overview", "GET", "/api/v1/monitoring/overview", None, 200),
    Call("monitoring: audit", "GET", "/api/v1/predictions/recent", None, 200),
    Call("datasets: list", "GET", "/api/v1/datasets", None, 200),
    Call(
        "compat /api/v1: online train",
        "POST",
        "/api/v1/online/models/m/train",
        {"features": X, "target": 2.0},
        200,
    ),
    Call("compat bare: models", "GET", "/models", None, 200),
    Call("compat bare: history", "GET", "/monitoring/history", None, 200),
    Call("compat bare: features", "GET", "/features?symbol=AAPL", None, 200),
    Call("compat bare: batch", "POST", "/predict/batch", {"symbols": ["AAPL"]}, 200),
]

# (case, which key is sent, status, error code)
REFUSALS = [
    ("no key", None, 401, "missing_tenant_key"),
    ("malformed key", "nope", 401, "invalid_tenant_key"),
    ("unknown key", "unknown", 401, "invalid_tenant_key"),
    ("revoked key", "revoked", 401, "invalid_tenant_key"),
    ("another tenant's key", "other", 403, "tenant_key_mismatch"),
    ("the admin key as tenant key", "admin", 401, "invalid_tenant_key"),
]


@dataclass
class Keys:
    acme: str
    revoked: str
    other: str

    def sent(self, which: str | None) -> dict[str, str]:
        value = {
            None: None,
            "nope": "nope",
            "unknown": UNKNOWN_KEY,
            "revoked": self.revoked,
            "other": self.other,
            "admin": ADMIN,
            "acme": self.acme,
        }[which]
        return {"X-Tenant-ID": "acme"} | ({} if value is None else {"X-Tenant-Key": value})


async def issue(client: httpx.AsyncClient, tenant: str = "acme") -> dict[str, Any]:
    answer = await client.post(keys_url(tenant), headers=A)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def setup_tenants(client: httpx.AsyncClient) -> Keys:
    """acme: a key, a revoked key, a model `m` with samples, a series `s`; other: a key."""
    acme = (await issue(client))["key"]
    revoked = await issue(client)
    gone = await client.delete(f"{keys_url()}/{revoked['key_id']}", headers=A)
    assert gone.status_code == 204
    other = (await issue(client, "other"))["key"]
    h = {"X-Tenant-ID": "acme", "X-Tenant-Key": acme}
    assert (await client.post("/api/v1/models", json=SPEC, headers=h)).status_code == 201
    for y in (1.0, 2.0, 3.0):
        sample = {"x": X, "y": y}
        assert (
            await client.post("/api/v1/models/m/predict_learn", json=sample, headers=h)
        ).is_success
    subscribe = await client.put("/api/v1/series/s/models", json={"models": ["m"]}, headers=h)
    assert subscribe.status_code == 200, subscribe.text
    return Keys(acme, revoked["key"], other)


async def everything(client: httpx.AsyncClient, keys: Keys) -> dict[str, Any]:
    """What "state unchanged" compares: every model with its seq, m's versions, the series
    window, the audit, the data sets and both tenants' key lists."""
    h = {"X-Tenant-ID": "acme", "X-Tenant-Key": keys.acme}

    async def body(path: str) -> Any:
        answer = await client.get(path, headers=h)
        return answer.json() if answer.status_code == 200 else answer.status_code

    return {
        "models": await tenant_state(client, **h),
        "versions": await body("/api/v1/models/m/versions"),
        "series": await body("/api/v1/series/s"),
        "audit": len((await body("/api/v1/predictions/recent?limit=1000"))["predictions"]),
        "datasets": await body("/api/v1/datasets"),
        "keys": [(await client.get(keys_url(t), headers=A)).json() for t in ("acme", "other")],
    }


@contextlib.asynccontextmanager
async def keys_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, state_url: str, **env: str
) -> AsyncIterator[httpx.AsyncClient]:
    settings = {**KEYS_ENV, "STATE_URL": state_url, **env}
    async with edge_client(monkeypatch, tmp_path, settings, headers={}) as client:
        yield client


@pytest.fixture(params=["memory", "redis"])
def state_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


# ----- every route class, every refusal ------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "which", "status", "code"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
@pytest.mark.parametrize("call", ROUTE_CLASSES, ids=[c.name for c in ROUTE_CLASSES])
async def test_a_route_refuses_without_the_tenants_key(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    call: Call,
    case: str,
    which: str | None,
    status: int,
    code: str,
) -> None:
    async with keys_client(monkeypatch, tmp_path, "memory://") as client:
        keys = await setup_tenants(client)
        before = await everything(client, keys)
        answer = await client.request(
            call.method, call.path, json=call.body, headers=keys.sent(which)
        )
        assert_envelope(answer, status, code)
        assert await everything(client, keys) == before, case


@pytest.mark.parametrize("call", ROUTE_CLASSES, ids=[c.name for c in ROUTE_CLASSES])
async def test_the_right_key_is_served(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, state_url: str, call: Call
) -> None:
    async with keys_client(monkeypatch, tmp_path, state_url) as client:
        keys = await setup_tenants(client)
        answer = await client.request(
            call.method, call.path, json=call.body, headers=keys.sent("acme")
        )
        assert answer.status_code == call.ok, answer.text


async def test_refusals_on_valkey_change_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str
) -> None:
    """The same table on the Valkey key store (one client: the Valkey is flushed per test)."""
    async with keys_client(monkeypatch, tmp_path, redis_url) as client:
        keys = await setup_tenants(client)
        before = await everything(client, keys)
        for call in ROUTE_CLASSES:
            for _, which, status, code in REFUSALS:
                answer = await client.request(
                    call.method, call.path, json=call.body, headers=keys.sent(which)
                )
                assert_envelope(answer, status, code)
        assert await everything(client, keys) == before


def route_table() -> list[tuple[str, str]]:
    """(method, path) of every tenant-scoped route of the gateway, placeholders filled in."""
    found = []
    for route in gateway_routes:
        path = re.sub(r"\{[^}]+\}", "x1", route.path)
        if "/admin/" in route.path or route.path == "/" or route.path.startswith("/ui/"):
            continue
        if route.path.startswith("/v2") and not route.path.startswith("/v2/models/"):
            continue  # the Open Inference Protocol's server routes: health, metadata
        for method in sorted(route.methods - {"HEAD"}):
            found.append((method, path))
    return found


async def test_every_tenant_route_of_the_gateway_needs_a_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Whatever reads X-Tenant-ID (under /api/v1 or a seed's bare path) refuses without a key,
    before its handler runs: the route table, not a list kept by hand."""
    table = route_table()
    bare = [(method, path) for method, path in table if not path.startswith("/api/v1/")]
    assert len(table) > 80 and ("GET", "/features") in bare and ("POST", "/predict/batch") in bare
    async with keys_client(monkeypatch, tmp_path, "memory://") as client:
        for method, path in table:
            answer = await client.request(method, path, headers={"X-Tenant-ID": "acme"})
            if path.startswith("/v2/"):  # refused the same, in the protocol's error shape
                assert answer.status_code == 401 and set(answer.json()) == {"error"}, path
            else:
                assert_envelope(answer, 401, "missing_tenant_key")


async def test_a_route_the_edge_does_not_know_fails_closed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A handler outside /api/v1 that reads the tenant without the compat edge's check is
    still refused: tenant_of serves only a tenant the edge authenticated."""

    async def rogue(request: Request) -> Response:
        return JSON({"tenant": tenant_of(request)})

    routes = [Route("/rogue", rogue, methods=["GET"]), *tenant_keys_api.ROUTES]
    app = FunctionApp("rogue", routes, current_runtime)
    async with edge_client(monkeypatch, tmp_path, KEYS_ENV, app=app, headers={}) as client:
        sent = {"X-Tenant-ID": "acme", "X-Tenant-Key": (await issue(client))["key"]}
        assert_envelope(await client.get("/rogue", headers=sent), 401, "tenant_not_authenticated")
    async with edge_client(monkeypatch, tmp_path, {}, app=app) as client:  # TENANT_AUTH=none
        assert (await client.get("/rogue")).json() == {"tenant": "acme"}


@pytest.mark.parametrize(
    "path", ["/health", "/ready", "/metrics", "/openapi.json", "/docs", "/", "/ui/app.js"]
)
async def test_ops_routes_and_the_dashboard_stay_keyless(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, path: str
) -> None:
    async with keys_client(monkeypatch, tmp_path, "memory://") as client:
        assert (await client.get(path)).status_code == 200


# ----- revocation across instances, the cache window -----------------------------------------


def test_a_revoked_key_stops_on_every_instance(
    redis_url: str, app_factory: Callable[..., AppProcess]
) -> None:
    env = {**KEYS_ENV, "STATE_URL": redis_url, "TENANT_KEY_CACHE_SECONDS": "0"}
    first, second = app_factory(env), app_factory(env)
    with httpx.Client(timeout=30) as http:
        issued = http.post(first.url + keys_url(), headers=A)
        assert issued.status_code == 201, issued.text
        key, key_id = issued.json()["key"], issued.json()["key_id"]
        sent = {"X-Tenant-ID": "acme", "X-Tenant-Key": key}
        for app in (first, second):  # issued on one, valid on both
            assert http.get(app.url + "/api/v1/models", headers=sent).status_code == 200
        gone = http.delete(f"{first.url}{keys_url()}/{key_id}", headers=A)
        assert gone.status_code == 204
        for app in (second, first):
            assert_envelope(
                http.get(app.url + "/api/v1/models", headers=sent), 401, "invalid_tenant_key"
            )
            refused = http.post(app.url + "/api/v1/models", json=SPEC, headers=sent)
            assert_envelope(refused, 401, "invalid_tenant_key")
        # nothing was created by the refused writes (read with a fresh key)
        fresh = http.post(second.url + keys_url(), headers=A).json()["key"]
        listing = http.get(
            first.url + "/api/v1/models", headers={"X-Tenant-ID": "acme", "X-Tenant-Key": fresh}
        )
        assert listing.json()["models"] == []
        assert_envelope(http.delete(f"{second.url}{keys_url()}/{key_id}", headers=A), 404)


def test_within_the_cache_window_only_the_revoking_instance_refuses_at_once(
    redis_url: str, app_factory: Callable[..., AppProcess]
) -> None:
    """The documented window: an instance that verified a key keeps it for
    TENANT_KEY_CACHE_SECONDS (here 300 s, far longer than this test); the instance that
    revoked it forgets its answers at once."""
    env = {**KEYS_ENV, "STATE_URL": redis_url, "TENANT_KEY_CACHE_SECONDS": "300"}
    first, second = app_factory(env), app_factory(env)
    with httpx.Client(timeout=30) as http:
        issued = http.post(first.url + keys_url(), headers=A).json()
        sent = {"X-Tenant-ID": "acme", "X-Tenant-Key": issued["key"]}
        for app in (first, second):
            assert http.get(app.url + "/api/v1/models", headers=sent).status_code == 200
        gone = http.delete(f"{first.url}{keys_url()}/{issued['key_id']}", headers=A)
        assert gone.status_code == 204
        assert_envelope(http.get(first.url + "/api/v1/models", headers=sent), 401)
        assert http.get(second.url + "/api/v1/models", headers=sent).status_code == 200


def lookups(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_hget", {}).get("calls", 0))


@pytest.mark.parametrize(("cache_seconds", "expected"), [("300", 1), ("0", 20)])
@pytest.mark.parametrize("which", ["acme", "unknown", "revoked"])
async def test_answers_are_cached_so_a_repeated_key_costs_one_lookup(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    redis_url: str,
    cache_seconds: str,
    expected: int,
    which: str,
) -> None:
    """Counted on the Valkey itself (commandstats): 20 requests with one key, valid or not,
    make one key lookup while the answer is remembered, 20 with the cache off."""
    env = {"TENANT_KEY_CACHE_SECONDS": cache_seconds}
    async with keys_client(monkeypatch, tmp_path, redis_url, **env) as client:
        acme = (await issue(client))["key"]
        revoked = await issue(client)
        await client.delete(f"{keys_url()}/{revoked['key_id']}", headers=A)
        keys = Keys(acme, revoked["key"], acme)
        valkey = redis.Redis.from_url(redis_url)
        try:
            valkey.config_resetstat()
            for _ in range(20):  # acme has no models: listing them reads no hash
                await client.get("/api/v1/models", headers=keys.sent(which))
            assert lookups(valkey) == expected
            valkey.config_resetstat()
            for _ in range(20):  # malformed keys are refused without a lookup at all
                assert_envelope(await client.get("/api/v1/models", headers=keys.sent("nope")), 401)
            assert lookups(valkey) == 0
        finally:
            valkey.close()


async def test_the_state_store_down_is_a_503_never_a_pass(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    nothing_there = f"redis://127.0.0.1:{free_port()}/0"
    env = {"STATE_TIMEOUT_SECONDS": "0.5"}
    async with keys_client(monkeypatch, tmp_path, nothing_there, **env) as client:
        sent = {"X-Tenant-ID": "acme", "X-Tenant-Key": UNKNOWN_KEY}
        assert_envelope(await client.get("/api/v1/models", headers=sent), 503, "state_unavailable")
        assert (await client.get("/health")).status_code == 200


# ----- issue, list, revoke -------------------------------------------------------------------


async def test_a_key_is_shown_once_and_stored_hashed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str
) -> None:
    async with keys_client(monkeypatch, tmp_path, redis_url) as client:
        answer = await client.post(keys_url(), headers=A)
        assert answer.status_code == 201
        assert answer.headers["cache-control"] == "no-store"
        issued = answer.json()
        assert set(issued) == {"tenant", "key_id", "key", "created_at"}
        match = KEY_FORMAT.fullmatch(issued["key"])
        assert match is not None and match[1] == issued["key_id"]
        secret = match[2]  # token_urlsafe(32): 256 bits
        second = await issue(client)
        assert second["key"] != issued["key"] and second["key_id"] != issued["key_id"]

        listing = await client.get(keys_url(), headers=A)
        assert listing.status_code == 200
        rows = listing.json()["keys"]
        assert [set(row) for row in rows] == [{"key_id", "created_at"}] * 2
        assert {row["key_id"] for row in rows} == {issued["key_id"], second["key_id"]}
        assert secret not in listing.text and "sha256" not in listing.text

        valkey = redis.Redis.from_url(redis_url)
        try:
            stored = valkey.hgetall("ml:{acme}:keys")
            everything_stored = every_value(valkey)
        finally:
            valkey.close()
        assert set(stored) == {issued["key_id"].encode(), second["key_id"].encode()}
        record = stored[issued["key_id"].encode()].decode()
        assert hashlib.sha256(issued["key"].encode()).hexdigest() in record
        assert secret.encode() not in everything_stored  # in no key: not even the events


def every_value(client: redis.Redis) -> bytes:
    """Every key name and value in the Valkey, concatenated (events' outbox included)."""
    out = []
    for name in client.keys("*"):
        kind = client.type(name)
        out.append(name)
        if kind == b"string":
            out.append(client.get(name) or b"")
        elif kind == b"hash":
            out += [b"%s=%s" % item for item in client.hgetall(name).items()]
        elif kind == b"list":
            out += client.lrange(name, 0, -1)
        elif kind == b"set":
            out += sorted(client.smembers(name))
        elif kind == b"zset":
            out += client.zrange(name, 0, -1)
        elif kind == b"stream":
            for _, fields in client.xrange(name):
                out += [b"%s=%s" % item for item in fields.items()]
    return b"\n".join(out)


async def test_admin_key_routes_refuse_bad_input_and_change_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"TENANT_KEYS_MAX": "2"}
    async with keys_client(monkeypatch, tmp_path, "memory://", **env) as client:
        first = await issue(client)
        await issue(client)
        before = (await client.get(keys_url(), headers=A)).json()
        cases = [
            ("POST", keys_url(), 422, "too_many_tenant_keys"),
            ("POST", keys_url("Not-A-Tenant"), 400, "invalid_tenant"),
            ("GET", keys_url("-acme"), 400, "invalid_tenant"),
            ("DELETE", f"{keys_url()}/{'f' * 16}", 404, "tenant_key_not_found"),
            ("DELETE", f"{keys_url()}/not-an-id", 404, "tenant_key_not_found"),
            ("DELETE", f"{keys_url('other')}/{first['key_id']}", 404, "tenant_key_not_found"),
        ]
        for method, path, status, code in cases:
            answer = await client.request(method, path, headers=A)
            assert_envelope(answer, status, code)
            if code == "too_many_tenant_keys":
                assert "TENANT_KEYS_MAX (2)" in answer.json()["error"]["message"]
        assert (await client.get(keys_url(), headers=A)).json() == before
        # rotation: revoke one, then there is room for the next
        assert (
            await client.delete(f"{keys_url()}/{first['key_id']}", headers=A)
        ).status_code == 204
        assert (await client.post(keys_url(), headers=A)).status_code == 201


# ----- admin routes: the admin key, never a tenant key ---------------------------------------

ADMIN_CALLS = [
    ("POST", keys_url()),
    ("GET", keys_url()),
    ("DELETE", f"{keys_url()}/{'0' * 16}"),
    ("POST", "/api/v1/admin/reload"),
    ("DELETE", "/api/v1/admin/audit"),
    ("POST", "/admin/reload"),
    ("DELETE", "/admin/audit/clear"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
async def test_admin_routes_take_the_admin_key_not_a_tenant_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, method: str, path: str
) -> None:
    async with keys_client(monkeypatch, tmp_path, "memory://") as client:
        key = (await issue(client))["key"]
        before = (await client.get(keys_url(), headers=A)).json()
        tenant = {"X-Tenant-ID": "acme", "X-Tenant-Key": key}
        assert_envelope(await client.request(method, path, headers=tenant), 401, "missing_api_key")
        as_admin = {**tenant, "X-API-Key": key}  # a tenant key is no admin key
        assert_envelope(
            await client.request(method, path, headers=as_admin), 403, "invalid_api_key"
        )
        assert (await client.get(keys_url(), headers=A)).json() == before
        # the admin key alone is enough: no tenant key needed
        answer = await client.request(method, path, headers={"X-Tenant-ID": "acme", **A})
        assert answer.status_code < 300 or answer.status_code == 404, answer.text


# ----- the rate limit counts the authenticated tenant ----------------------------------------


async def test_rotating_x_tenant_id_gets_no_fresh_budget(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, state_url: str
) -> None:
    # 3 per minute: a token comes back every 20 s, far longer than this test takes
    async with keys_client(monkeypatch, tmp_path, state_url, RATE_LIMIT_PER_MINUTE="3") as client:
        key = (await issue(client))["key"]
        other = (await issue(client, "other"))["key"]
        statuses = []
        for i in range(6):
            claimed = "acme" if i % 2 == 0 else f"rotated-{i}"
            answer = await client.get(
                "/api/v1/models", headers={"X-Tenant-ID": claimed, "X-Tenant-Key": key}
            )
            statuses.append(answer.status_code)
            if claimed != "acme":
                assert_envelope(answer, 403, "tenant_key_mismatch")
        assert statuses == [200, 403, 200, 403, 200, 403]
        answer = await client.get(
            "/api/v1/models", headers={"X-Tenant-ID": "acme", "X-Tenant-Key": key}
        )
        assert_envelope(answer, 429, "rate_limited")
        # another authenticated tenant has its own budget
        sent = {"X-Tenant-ID": "other", "X-Tenant-Key": other}
        assert (await client.get("/api/v1/models", headers=sent)).status_code == 200


async def test_tenant_auth_none_keeps_the_old_behaviour(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"TENANT_AUTH": "none", "RATE_LIMIT_PER_MINUTE": "1"}
    async with keys_client(monkeypatch, tmp_path, "memory://", **env) as client:
        # no key needed, any key ignored; the limit is per claimed tenant
        for tenant in ("acme", "b", "c"):
            answer = await client.get("/api/v1/models", headers={"X-Tenant-ID": tenant})
            assert answer.status_code == 200
        sent = {"X-Tenant-ID": "d", "X-Tenant-Key": "nope"}
        assert (await client.get("/api/v1/models", headers=sent)).status_code == 200
        assert (await client.get("/models", headers={"X-Tenant-ID": "e"})).status_code == 200
        # keys can be issued ahead of switching TENANT_AUTH to keys
        assert (await client.post(keys_url(), headers=A)).status_code == 201


async def test_dev_and_test_default_to_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for env in ("dev", "test"):
        async with edge_client(monkeypatch, tmp_path, {"ENV": env}) as client:
            assert (await client.get("/api/v1/models")).status_code == 200


# ----- the prod profile ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "tenant_auth"),
    [
        ({"ADMIN_API_KEY": ADMIN}, "keys"),  # the prod default
        ({"ADMIN_API_KEY": ADMIN, "TENANT_AUTH": "none"}, "none"),
        ({"TENANT_AUTH": "none"}, "none"),  # no admin key: fine when keys are off
    ],
)
def test_prod_defaults_to_keys(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], tenant_auth: str
) -> None:
    monkeypatch.delenv("ADMIN_API_KEY", raising=False)
    monkeypatch.delenv("TENANT_AUTH", raising=False)
    monkeypatch.setenv("ENV", "prod")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert load_settings().tenant_auth == tenant_auth


@pytest.mark.parametrize("variables", [{}, {"TENANT_AUTH": "keys"}, {"ADMIN_API_KEY": "  "}])
def test_prod_refuses_keys_without_an_admin_key(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    monkeypatch.delenv("ADMIN_API_KEY", raising=False)
    monkeypatch.delenv("TENANT_AUTH", raising=False)
    monkeypatch.setenv("ENV", "prod")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=r"TENANT_AUTH: keys .* needs ADMIN_API_KEY"):
        load_settings()


def test_a_prod_process_without_an_admin_key_exits_naming_tenant_auth() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ENV": "prod"}
    env.pop("ADMIN_API_KEY", None)
    env.pop("TENANT_AUTH", None)
    done = subprocess.run(
        [sys.executable, "-c", "import functions.gateway"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "TENANT_AUTH" in done.stderr and "ADMIN_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("value", ["maybe", "KEYS-ish"])
def test_a_bad_tenant_auth_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TENANT_AUTH", value)
    with pytest.raises(ConfigError, match="TENANT_AUTH"):
        load_settings()


# ----- browsers and clients: CORS, OpenAPI ---------------------------------------------------


async def test_browsers_may_send_the_tenant_key_cross_origin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"CORS_ORIGINS": "https://app.example.com"}
    async with keys_client(monkeypatch, tmp_path, "memory://", **env) as client:
        answer = await client.options(
            "/api/v1/models",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "x-tenant-id, x-tenant-key",
            },
        )
        assert answer.status_code == 204  # preflights carry no credentials: never refused
        allowed = answer.headers["access-control-allow-headers"].lower()
        assert "x-tenant-key" in allowed


async def test_openapi_declares_the_tenant_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with keys_client(monkeypatch, tmp_path, "memory://") as client:
        document = (await client.get("/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["TenantKey"]
    assert scheme == scheme | {"type": "apiKey", "in": "header", "name": "X-Tenant-Key"}
    paths = document["paths"]
    for path, method in [("/api/v1/models", "post"), ("/models", "get"), ("/features", "get")]:
        assert paths[path][method]["security"] == [{"TenantKey": []}], path
    for path, method in [(keys_url("{tenant}"), "post"), ("/api/v1/admin/reload", "post")]:
        assert paths[path][method]["security"] == [{"ApiKey": []}], path
    issue_op = paths[keys_url("{tenant}")]["post"]
    assert "201" in issue_op["responses"]
    tenant_header = next(p for p in issue_op["parameters"] if p["name"] == "X-Tenant-ID")
    assert tenant_header["required"] is False  # the tenant is in the path
