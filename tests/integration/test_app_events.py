"""Lifecycle events published by the app itself: CloudEvents on NATS JetStream per tenant,
or a JSON-lines log per tenant when NATS_URL is unset."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from shared.events.jetstream import ensure_stream
from shared.settings import reset_settings_cache
from tests.nats_server import NatsServer
from tests.servers import AppProcess

SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
SAMPLE = {"x": {"a": 1.0, "b": 2.0}, "y": 3.0}
LIFECYCLE = ["model.created", "model.version_created", "model.activated", "model.deleted"]


async def run_lifecycle(client: httpx.AsyncClient, tenant: str) -> list[httpx.Response]:
    """create, learn, snapshot (version 2), activate 2, delete: each response in order."""
    headers = {"X-Tenant-ID": tenant, "X-Request-ID": f"req-{tenant}-create"}
    responses = [await client.post("/api/v1/models", json=SPEC, headers=headers)]
    headers = {"X-Tenant-ID": tenant}
    await client.post("/api/v1/models/m/learn", json=SAMPLE, headers=headers)
    responses.append(await client.post("/api/v1/models/m/versions", headers=headers))
    responses.append(await client.post("/api/v1/models/m/versions/2/activate", headers=headers))
    responses.append(await client.delete("/api/v1/models/m", headers=headers))
    assert [r.status_code for r in responses] == [201, 201, 200, 204]
    return responses


def check_cloudevents(events: list[dict[str, Any]], tenant: str) -> None:
    assert [e["type"] for e in events] == LIFECYCLE
    for event in events:
        assert event["specversion"] == "1.0" and event["datacontenttype"] == "application/json"
        assert event["tenant"] == tenant and event["subject"] == "m"
        assert event["id"] and event["time"].endswith("Z") and event["source"]
    created, version, activated, deleted = (e["data"] for e in events)
    assert created["name"] == "m" and created["version"] == 1 and "uid" not in created
    assert (version["version"], version["parent"], version["seq"]) == (2, 1, 1)
    assert activated == {"name": "m", "version": 2, "previous": 1, "seq": 1}
    assert deleted == {"name": "m"}
    assert events[0]["requestid"] == f"req-{tenant}-create"  # traced to the request


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    nc: NATS = await nats.connect(nats_server.url, connect_timeout=2)
    jetstream = nc.jetstream(timeout=5)
    await ensure_stream(jetstream)  # as an operator would, so we can subscribe before the app
    yield jetstream
    await nc.close()


async def test_app_publishes_lifecycle_cloudevents_to_the_tenant_subject(
    nats_server: NatsServer, js: JetStreamContext, app_factory: Callable[..., AppProcess]
) -> None:
    app = app_factory({"STATE_URL": "memory://", "NATS_URL": nats_server.url})
    sub = await js.subscribe("ml.events.acme.>", deliver_policy=DeliverPolicy.NEW)
    async with httpx.AsyncClient(base_url=app.url, timeout=10) as client:
        await run_lifecycle(client, "beta")  # another tenant first, interleaved with acme
        await run_lifecycle(client, "acme")

    messages = [await sub.next_msg(timeout=5) for _ in LIFECYCLE]
    events = [json.loads(msg.data) for msg in messages]
    check_cloudevents(events, "acme")
    for msg, event in zip(messages, events, strict=True):
        assert msg.subject == f"ml.events.acme.{event['type']}"
        assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == event["id"]
    # beta's events were relayed before acme's (one ordered outbox), yet none arrived here
    with pytest.raises(nats.errors.TimeoutError):
        await sub.next_msg(timeout=0.3)
    beta = await js.stream_info("ML_EVENTS", subjects_filter="ml.events.beta.>")
    assert sum((beta.state.subjects or {}).values()) == len(LIFECYCLE)
    await sub.unsubscribe()


async def test_without_nats_url_events_go_to_events_dir_per_tenant(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NATS_URL", raising=False)
    reset_settings_cache()  # the runtime reads it on the first request
    await run_lifecycle(client, "acme")
    await run_lifecycle(client, "beta")

    logs = tmp_path / "events"  # EVENTS_DIR of the `client` fixture
    assert sorted(p.name for p in logs.iterdir()) == ["acme.jsonl", "beta.jsonl"]
    for tenant in ("acme", "beta"):
        lines = (logs / f"{tenant}.jsonl").read_text().splitlines()
        check_cloudevents([json.loads(line) for line in lines], tenant)
