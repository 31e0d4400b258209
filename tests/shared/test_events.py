"""The event bus without NATS: CloudEvents shape, the local log, the outboxes and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cloudevents.conversion import to_dict
from cloudevents.http import from_dict, from_json

from shared.context import request_id_var, traceparent_var
from shared.events import (
    EVENT_TYPES,
    LocalEventLog,
    MemoryOutbox,
    OutboxRelay,
    RedisOutbox,
    build_event,
    mirrors,
    nats_subject,
    open_event_bus,
)
from shared.events.mirrors import register_mirror
from shared.events.outbox import Outbox
from tests.servers import ROOT, free_port

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_event_types_and_subjects() -> None:
    assert EVENT_TYPES == (
        "model.created",
        "model.trained",
        "model.version_created",
        "model.activated",
        "model.deleted",
        "drift.detected",
        "model.degraded",
        "job.started",
        "job.succeeded",
        "job.failed",
        "series.observed",
        "tenant.key_issued",
        "tenant.key_revoked",
        "state.lost",
    )
    assert nats_subject("acme", "model.created") == "ml.events.acme.model.created"
    assert nats_subject("acme") == "ml.events.acme.>"


async def test_event_is_a_cloudevent_1_0(tmp_path: Path) -> None:
    bus = LocalEventLog(tmp_path)
    trace, request = traceparent_var.set(TRACEPARENT), request_id_var.set("req-42")
    try:
        event = await bus.publish(
            "acme", "model.trained", {"n": 3, "loss": 0.25}, subject="m1", source="/online-ml/train"
        )
    finally:
        traceparent_var.reset(trace)
        request_id_var.reset(request)

    parsed = from_json(json.dumps(event))  # the SDK accepts it as structured JSON
    assert parsed["specversion"] == "1.0"
    assert re.fullmatch(r"[0-9a-f]{32}", parsed["id"])
    assert parsed["source"] == "/online-ml/train"
    assert parsed["type"] == "model.trained"
    assert parsed["subject"] == "m1"
    assert parsed["datacontenttype"] == "application/json"
    assert datetime.fromisoformat(parsed["time"]).tzinfo is not None
    assert parsed["tenant"] == "acme"
    assert parsed["traceparent"] == TRACEPARENT
    assert parsed["requestid"] == "req-42"
    assert parsed.get_data() == {"n": 3, "loss": 0.25}
    assert to_dict(from_dict(event)) == event
    assert read_log(tmp_path / "acme.jsonl") == [event]


async def test_without_request_context_the_optional_attributes_are_absent(tmp_path: Path) -> None:
    event = await LocalEventLog(tmp_path).publish("acme", "job.started", {})
    assert event["source"] == "/online-ml"
    assert not {"subject", "traceparent", "requestid"} & event.keys()
    assert from_dict(event)["type"] == "job.started"


@pytest.mark.parametrize(
    ("tenant", "event_type", "data"),
    [
        ("acme", "model.exploded", {}),
        ("acme", "", {}),
        ("Acme", "model.created", {}),
        ("a.b", "model.created", {}),
        ("../etc", "model.created", {}),
        ("acme", "model.created", {"x": float("nan")}),
        ("acme", "model.created", {"when": datetime.now()}),
        ("acme", "model.created", ["not", "an", "object"]),
    ],
)
async def test_bad_events_raise_value_error(
    tmp_path: Path, tenant: str, event_type: str, data: Any
) -> None:
    local = LocalEventLog(tmp_path)
    relay = OutboxRelay(f"nats://127.0.0.1:{free_port()}", MemoryOutbox())
    for bus in (local, relay):
        with pytest.raises(ValueError):
            await bus.publish(tenant, event_type, data)
    assert await relay.backlog() == 0
    assert not os.listdir(tmp_path)
    await relay.close()


async def test_local_log_keeps_tenants_apart(tmp_path: Path) -> None:
    bus = open_event_bus(None, "memory://", events_dir=str(tmp_path / "events"))
    assert isinstance(bus, LocalEventLog)
    published = await asyncio.gather(
        *(
            bus.publish(tenant, EVENT_TYPES[i % len(EVENT_TYPES)], {"i": i}, subject=f"m{i}")
            for i in range(40)
            for tenant in ("acme", "b")
        )
    )
    for tenant in ("acme", "b"):
        lines = read_log(tmp_path / "events" / f"{tenant}.jsonl")
        assert {e["tenant"] for e in lines} == {tenant}
        assert sorted(e["id"] for e in lines) == sorted(
            e["id"] for e in published if e["tenant"] == tenant
        )
    assert sorted(p.name for p in (tmp_path / "events").iterdir()) == ["acme.jsonl", "b.jsonl"]


def test_open_event_bus_picks_the_backend() -> None:
    # No I/O here: the runtime builds the bus synchronously.
    assert isinstance(open_event_bus("", "memory://"), LocalEventLog)
    memory = open_event_bus("nats://127.0.0.1:4222", "memory://")
    assert isinstance(memory, OutboxRelay) and isinstance(memory.outbox, MemoryOutbox)
    redis = open_event_bus("nats://127.0.0.1:4222", "redis://127.0.0.1:1/0")
    assert isinstance(redis, OutboxRelay) and isinstance(redis.outbox, RedisOutbox)


@pytest.fixture(params=["memory", "redis", "cluster"])
async def outbox(request: pytest.FixtureRequest) -> AsyncIterator[Outbox]:
    box: Outbox = MemoryOutbox()
    if request.param != "memory":
        url = request.getfixturevalue("redis_url" if request.param == "redis" else "cluster_url")
        box = RedisOutbox(url)
    yield box
    await box.close()


async def test_outbox_keeps_order_until_acked(outbox: Outbox) -> None:
    envelopes = [build_event("acme", "model.trained", {"i": i}) for i in range(5)]
    for envelope in envelopes:
        await outbox.append(envelope)
    assert await outbox.backlog() == 5
    first = await outbox.pending(3)
    assert [p.envelope for p in first] == envelopes[:3]
    await outbox.ack([p.key for p in first[:2]])
    await outbox.ack([first[0].key])  # acking twice is harmless
    assert [p.envelope for p in await outbox.pending(10)] == envelopes[2:]
    assert await outbox.backlog() == 3


async def test_publish_never_raises_while_nats_is_down() -> None:
    # A "NATS" that accepts the connection and never answers, with an hour's connect timeout:
    # a publish that waited for NATS would never return (wait_for only guards the test run).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        bus = OutboxRelay(
            f"nats://127.0.0.1:{port}", MemoryOutbox(), connect_timeout=3600, close_timeout=0.2
        )
        publishes = [bus.publish("acme", "model.created", {"i": i}) for i in range(5)]
        events = await asyncio.wait_for(asyncio.gather(*publishes), timeout=60)
        assert len({e["id"] for e in events}) == 5
        assert await bus.flush(timeout=0.3) == 0
        assert await bus.backlog() == 5  # kept, not dropped
        await asyncio.wait_for(bus.close(), timeout=30)
    with pytest.raises(RuntimeError):
        await bus.publish("acme", "model.created", {})


async def start_tail(*args: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL"}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.events",
        "tail",
        *args,
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_events(proc: asyncio.subprocess.Process, n: int) -> list[dict[str, Any]]:
    assert proc.stdout is not None
    return [
        json.loads(await asyncio.wait_for(proc.stdout.readline(), timeout=10)) for _ in range(n)
    ]


async def stop_tail(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.wait(), timeout=10)


async def test_cli_follows_the_local_log(tmp_path: Path) -> None:
    bus = LocalEventLog(tmp_path)
    before = [await bus.publish("acme", "model.created", {"i": i}) for i in range(3)]
    await bus.publish("b", "model.created", {"secret": True})
    proc = await start_tail("--tenant", "acme", "--events-dir", str(tmp_path), "--from-start")
    try:
        assert await read_events(proc, 3) == before
        after = [
            await bus.publish("b", "model.trained", {"secret": True}),
            await bus.publish("acme", "model.trained", {"i": 3}),
            await bus.publish("acme", "job.failed", {"i": 4}),
        ]
        assert await read_events(proc, 2) == after[1:]
        assert proc.stdout is not None
        with pytest.raises(TimeoutError):  # nothing else, and never tenant b
            await asyncio.wait_for(proc.stdout.readline(), timeout=0.5)
    finally:
        assert await stop_tail(proc) == 0


async def test_cli_filters_by_type_and_waits_for_the_file(tmp_path: Path) -> None:
    proc = await start_tail(
        "--tenant", "acme", "--type", "job.failed", "--events-dir", str(tmp_path)
    )
    try:
        assert proc.stderr is not None
        await asyncio.wait_for(proc.stderr.readline(), timeout=10)  # "tailing ..."
        bus = LocalEventLog(tmp_path)  # the log does not exist until now
        await bus.publish("acme", "job.started", {})
        failed = await bus.publish("acme", "job.failed", {"error": "boom"})
        assert await read_events(proc, 1) == [failed]
    finally:
        assert await stop_tail(proc) == 0


async def test_cli_rejects_a_bad_tenant() -> None:
    proc = await start_tail("--tenant", "../acme")
    assert await asyncio.wait_for(proc.wait(), timeout=10) == 2


async def test_a_mirror_adds_its_message_to_the_outbox_beside_the_event() -> None:
    def shout(tenant: str, event_type: str, data: dict[str, Any]) -> Any:
        if data.get("mirror") == "own":
            return f"ml.events.{tenant}", {"said": event_type}
        if data.get("mirror") == "other":
            return "ml.events.globex", {"said": event_type}  # another tenant's subject
        return None

    register_mirror(shout)
    try:
        relay = OutboxRelay(  # NATS is down: what was published waits in the outbox
            f"nats://127.0.0.1:{free_port()}",
            MemoryOutbox(),
            connect_timeout=0.2,
            close_timeout=0.2,
        )
        await relay.publish("acme", "model.created", {"mirror": "none"})
        event = await relay.publish("acme", "model.created", {"mirror": "own"})
        with pytest.raises(ValueError, match="globex"):
            await relay.publish("acme", "model.created", {"mirror": "other"})
        kept = [item.envelope for item in await relay.outbox.pending(10)]
        assert [e.subject for e in kept] == [
            "ml.events.acme.model.created",
            "ml.events.acme.model.created",
            "ml.events.acme",
        ]
        assert kept[2].id.startswith(event["id"]) and json.loads(kept[2].payload) == {
            "said": "model.created"
        }
        await relay.close()
    finally:
        mirrors._MIRRORS.remove(shout)
