"""GET /api/v1/stream/events against real servers, read with httpx-sse: over the local event
log (shared EVENTS_DIR) and over a real NATS JetStream, each with two app instances."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from tests.servers import AppProcess

STREAM = "/api/v1/stream/events"
SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
# short intervals: a test waits for events, never for a clock
FAST = {
    "STREAM_HEARTBEAT_SECONDS": "0.2",
    "STREAM_METRICS_SECONDS": "0.3",
    "STREAM_PREDICTION_EVERY": "2",
    "STREAM_POLL_SECONDS": "0.05",
    "STREAM_MAX_CLIENTS": "3",
    "STATE_URL": "memory://",
}
WAIT = 30.0  # seconds an expected event may take on a loaded machine before the test fails


@pytest.fixture(params=["local", "nats"])
def instances(
    request: pytest.FixtureRequest, app_factory: Callable[..., AppProcess]
) -> tuple[AppProcess, AppProcess]:
    """Two app instances sharing the events: one NATS, or one local log directory."""
    env = dict(FAST)
    if request.param == "nats":
        env["NATS_URL"] = request.getfixturevalue("nats_server").url
        env["STATE_URL"] = request.getfixturevalue("redis_url")  # one outbox for both
    return app_factory(env), app_factory(env)


@asynccontextmanager
async def stream(
    url: str, tenant: str = "acme", params: dict[str, str] | None = None, **headers: str
) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(WAIT)) as client:
        sent = {"X-Tenant-ID": tenant, **headers}
        async with aconnect_sse(client, "GET", STREAM, params=params, headers=sent) as source:
            assert source.response.status_code == 200, await source.response.aread()
            assert source.response.headers["content-type"].startswith("text/event-stream")
            yield source.aiter_sse()


async def take(events: AsyncIterator[ServerSentEvent], count: int, **match: Any) -> list[dict]:
    """The next `count` events whose fields equal `match` (type=..., durable=True)."""
    found: list[dict] = []
    async with asyncio.timeout(WAIT):
        async for sse in events:
            if not sse.data:
                continue
            event = json.loads(sse.data)
            event["_sse_id"] = sse.id
            if match.get("type") not in (None, event["type"]):
                continue
            if match.get("durable") and not sse.id:
                continue
            found.append(event)
            if len(found) == count:
                return found
    raise AssertionError("the stream ended early")


async def api(url: str, method: str, path: str, tenant: str = "acme", **kwargs: Any) -> Any:
    async with httpx.AsyncClient(base_url=url, timeout=WAIT) as client:
        response = await client.request(method, path, headers={"X-Tenant-ID": tenant}, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None


async def lifecycle(url: str, tenant: str = "acme", name: str = "m") -> None:
    """model.created, model.version_created, model.activated, model.deleted (in order)."""
    await api(url, "POST", "/api/v1/models", tenant, json={**SPEC, "name": name})
    await api(url, "POST", f"/api/v1/models/{name}/learn", tenant, json={"x": {"a": 1}, "y": 2})
    await api(url, "POST", f"/api/v1/models/{name}/versions", tenant)
    await api(url, "POST", f"/api/v1/models/{name}/versions/2/activate", tenant)
    await api(url, "DELETE", f"/api/v1/models/{name}", tenant)


LIFECYCLE = ["model.created", "model.version_created", "model.activated", "model.deleted"]


async def streams_open(url: str) -> int:
    async with httpx.AsyncClient(base_url=url) as client:
        text = (await client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("ml_sse_streams_open "):
            return int(float(line.split()[1]))
    raise AssertionError("ml_sse_streams_open not exported")


async def until(check: Callable[[], Any], expected: Any) -> None:
    async with asyncio.timeout(WAIT):
        while await check() != expected:  # noqa: ASYNC110 (another process's state)
            await asyncio.sleep(0.05)


async def test_order_resume_and_cross_instance(instances: tuple[AppProcess, AppProcess]) -> None:
    one, two = instances
    lifecycle_only = {"types": ",".join(LIFECYCLE)}
    async with stream(two.url, params=lifecycle_only) as events:
        await lifecycle(one.url)  # published by the other instance
        first = await take(events, 4)
    assert [e["type"] for e in first] == LIFECYCLE
    assert all(e["_sse_id"] == e["id"] for e in first)  # SSE id = the event's id
    assert all(e["tenant"] == "acme" and e["subject"] == "m" for e in first)

    # resume after the second: exactly the last two, then what is new (no gap, no double)
    async with stream(one.url, params=lifecycle_only, **{"Last-Event-ID": first[1]["id"]}) as ev:
        resumed = await take(ev, 2)
        assert [e["id"] for e in resumed] == [e["id"] for e in first[2:]]
        await lifecycle(two.url, name="n")
        newer = await take(ev, 4)
    assert [e["type"] for e in newer] == LIFECYCLE
    assert all(e["subject"] == "n" for e in newer)


async def test_tenant_isolation_and_filters(instances: tuple[AppProcess, AppProcess]) -> None:
    one, two = instances
    async with (
        stream(two.url, tenant="other") as others,
        stream(two.url, params={"types": "model.activated", "model": "n"}) as narrowed,
    ):
        await lifecycle(one.url, name="m")
        await lifecycle(one.url, name="n")
        await lifecycle(one.url, "other", name="mine")
        got = await take(narrowed, 1)
        assert [(e["type"], e["subject"]) for e in got] == [("model.activated", "n")]
        theirs = await take(others, 4, durable=True)
    # another tenant's stream sees its own events and nothing of acme's
    assert [e["type"] for e in theirs] == LIFECYCLE
    assert {(e["tenant"], e["subject"]) for e in theirs} == {("other", "mine")}


async def test_live_predictions_and_metrics(instances: tuple[AppProcess, AppProcess]) -> None:
    one, two = instances
    await api(one.url, "POST", "/api/v1/models", json=SPEC)
    async with stream(two.url, params={"types": "prediction,metrics", "model": "m"}) as events:
        for i in range(6):
            x, y = {"a": float(i)}, 2.0 * i
            await api(one.url, "POST", "/api/v1/models/m/predict_learn", json={"x": x, "y": y})
        prediction = (await take(events, 1, type="prediction"))[0]
        metrics = (await take(events, 1, type="metrics"))[0]
    assert prediction["_sse_id"] is None or prediction["_sse_id"] == ""  # not resumable
    data = prediction["data"]
    assert data["model"] == "m" and data["route"] == "predict_learn"
    assert data["y"] == 2.0 * (data["seq"] - 1) and "prediction" in data
    assert data["error"] == abs(data["prediction"] - data["y"])
    assert metrics["data"]["model"] == "m" and metrics["data"]["samples"] >= 1
    assert "cumulative" in metrics["data"] and "drift" in metrics["data"]


async def test_capacity_and_release(app_factory: Callable[..., AppProcess]) -> None:
    app = app_factory(FAST)
    async with stream(app.url), stream(app.url), stream(app.url) as third:
        await until(lambda: streams_open(app.url), 3)
        async with httpx.AsyncClient(base_url=app.url) as client:
            refused = await client.get(STREAM, headers={"X-Tenant-ID": "acme"})
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert refused.json()["error"]["code"] == "stream_capacity"
        # an idle stream gets heartbeats (comments), which httpx-sse skips: the stream lives on
        async with httpx.AsyncClient(base_url=app.url) as client:
            await api(app.url, "POST", "/api/v1/models", json=SPEC)
        assert (await take(third, 1))[0]["type"] == "model.created"
    await until(lambda: streams_open(app.url), 0)  # disconnects released every stream


async def test_nats_consumers_deleted_on_disconnect(app_factory, nats_server, redis_url) -> None:
    import nats

    from shared.events.cloudevent import STREAM as JS_STREAM

    app = app_factory({**FAST, "NATS_URL": nats_server.url, "STATE_URL": redis_url})
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()

        async def consumers() -> int:
            return len(await js.consumers_info(JS_STREAM))

        async with stream(app.url), stream(app.url):
            await until(consumers, 2)
        await until(consumers, 0)
    finally:
        await nc.close()


BAD = [
    ({"types": "model.created,bogus"}, {}, "invalid_types"),
    ({"types": ","}, {}, "invalid_types"),
    ({"types": "x" * 600}, {}, "query_too_long"),
    ({"model": "x" * 600}, {}, "query_too_long"),
    ({"model": "../etc"}, {}, "invalid_model_name"),
    ({}, {"Last-Event-ID": "not-an-id"}, "invalid_last_event_id"),
    ({}, {"Last-Event-ID": "a" * 200}, "invalid_last_event_id"),
    # a UUIDv7 whose time is far in the future: no instance minted it (was a 503)
    ({}, {"Last-Event-ID": "ffffffffffff7000a000000000000000"}, "invalid_last_event_id"),
    ({}, {"Last-Event-ID": "7fffffffffff7000a000000000000000"}, "invalid_last_event_id"),
]


async def test_bad_input_is_400_in_the_envelope(app_factory: Callable[..., AppProcess]) -> None:
    app = app_factory(FAST)
    async with httpx.AsyncClient(base_url=app.url) as client:
        for params, headers, code in BAD:
            sent = {"X-Tenant-ID": "acme", **headers}
            answer = await client.get(STREAM, params=params, headers=sent)
            assert answer.status_code == 400, (params, headers, answer.text)
            assert answer.json()["error"]["code"] == code
        await until(lambda: streams_open(app.url), 0)  # none was left open


async def test_tenant_in_query_only_without_tenant_keys(
    app_factory: Callable[..., AppProcess],
) -> None:
    keyless = app_factory(FAST)
    async with httpx.AsyncClient(base_url=keyless.url, timeout=WAIT) as client:
        async with aconnect_sse(client, "GET", STREAM, params={"tenant": "acme"}) as source:
            assert source.response.status_code == 200
        refused = await client.get("/api/v1/predictions/recent", params={"tenant": "acme"})
        assert refused.status_code == 400  # only the stream takes it from the query
    keyed = app_factory({**FAST, "TENANT_AUTH": "keys", "ADMIN_API_KEY": "k" * 20})
    async with httpx.AsyncClient(base_url=keyed.url) as client:
        for headers in ({}, {"X-Tenant-ID": "acme"}):  # refused, not ignored
            refused = await client.get(STREAM, params={"tenant": "acme"}, headers=headers)
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"]["code"] == "tenant_in_query"


async def test_shutdown_ends_open_streams(app_factory: Callable[..., AppProcess]) -> None:
    """SIGTERM with a stream open: the client sees the stream end cleanly (the last chunk,
    not a reset) and the process exits instead of waiting for the connection forever."""
    app = app_factory(FAST)
    assert app.process is not None
    async with stream(app.url) as events:
        await until(lambda: streams_open(app.url), 1)
        os.killpg(app.process.pid, signal.SIGTERM)
        async with asyncio.timeout(WAIT):
            left = [sse async for sse in events]  # ends; a cut connection would raise
    assert all(not sse.data for sse in left)
    # it exits (uvicorn re-raises the SIGTERM it caught once its graceful shutdown is done)
    code = await asyncio.to_thread(app.process.wait, WAIT)
    assert code in (0, -signal.SIGTERM)


async def issue_keys(url: str, *tenants: str) -> dict[str, dict[str, str]]:
    async with httpx.AsyncClient(base_url=url, timeout=WAIT) as client:
        keys = {}
        for tenant in tenants:
            issued = await client.post(f"/api/v1/admin/tenants/{tenant}/keys", headers=ADMIN)
            assert issued.status_code == 201, issued.text
            keys[tenant] = issued.json()
    return keys


ADMIN = {"X-API-Key": "k" * 20}
KEYED = {**FAST, "TENANT_AUTH": "keys", "ADMIN_API_KEY": "k" * 20}


async def test_one_tenant_cannot_take_every_place(app_factory: Callable[..., AppProcess]) -> None:
    app = app_factory({**KEYED, "STREAM_MAX_CLIENTS_PER_TENANT": "1"})
    keys = await issue_keys(app.url, "acme", "other")
    acme = {"X-Tenant-Key": keys["acme"]["key"]}
    async with stream(app.url, **acme):
        async with httpx.AsyncClient(base_url=app.url, timeout=WAIT) as client:
            second = await client.get(STREAM, headers={"X-Tenant-ID": "acme", **acme})
        assert second.status_code == 429, second.text
        assert second.json()["error"]["code"] == "stream_tenant_capacity"
        assert second.headers["retry-after"]
        # another tenant still gets a place
        async with stream(app.url, "other", **{"X-Tenant-Key": keys["other"]["key"]}):
            await until(lambda: streams_open(app.url), 2)
    await until(lambda: streams_open(app.url), 0)


async def test_stream_lifetime_and_key_checked_again(
    app_factory: Callable[..., AppProcess],
) -> None:
    """After STREAM_MAX_SECONDS a stream ends cleanly; the reconnect passes the edge again,
    so a key revoked meanwhile is refused."""
    app = app_factory({**KEYED, "STREAM_MAX_SECONDS": "1"})
    keys = await issue_keys(app.url, "acme")
    acme = {"X-Tenant-Key": keys["acme"]["key"]}
    async with stream(app.url, **acme) as events:
        async with httpx.AsyncClient(base_url=app.url, timeout=WAIT) as client:
            revoked = await client.delete(
                f"/api/v1/admin/tenants/acme/keys/{keys['acme']['key_id']}", headers=ADMIN
            )
            assert revoked.status_code == 204
        async with asyncio.timeout(WAIT):
            async for _ in events:  # it ends (a cut connection would raise)
                pass
    await until(lambda: streams_open(app.url), 0)
    async with httpx.AsyncClient(base_url=app.url, timeout=WAIT) as client:
        again = await client.get(STREAM, headers={"X-Tenant-ID": "acme", **acme})
    assert again.status_code in (401, 403), again.text


@pytest.mark.parametrize("bus", ["local", "nats"])
async def test_resume_scan_is_bounded(
    bus: str, request: pytest.FixtureRequest, app_factory: Callable[..., AppProcess]
) -> None:
    """An id of time 0 or of unknown time (v4) scans only the window, at most
    STREAM_RESUME_MAX_EVENTS events (never the whole history): past that, from now."""
    env = {**FAST, "STREAM_RESUME_MAX_EVENTS": "2"}
    if bus == "nats":
        env["NATS_URL"] = request.getfixturevalue("nats_server").url
        env["STATE_URL"] = request.getfixturevalue("redis_url")
    app = app_factory(env)
    lifecycle_only = {"types": ",".join(LIFECYCLE)}
    async with stream(app.url, params=lifecycle_only) as events:
        await lifecycle(app.url, name="a")
        await take(events, 4)  # four events in the window: more than the cap
    for name, after in (("b", "00000000000070008000000000000000"), ("c", "0" * 32)):
        async with stream(app.url, params=lifecycle_only, **{"Last-Event-ID": after}) as ev:
            await lifecycle(app.url, name=name)
            got = await take(ev, 4)
        assert [(e["type"], e["subject"]) for e in got] == [(t, name) for t in LIFECYCLE]
