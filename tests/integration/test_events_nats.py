"""The event bus against a real nats-server (JetStream) and, for the Redis outbox, real Valkey."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from shared.events import EVENT_TYPES, OutboxRelay, RedisOutbox, open_event_bus
from shared.events.cloudevent import Envelope, build_event
from shared.events.outbox import LEGACY_OUTBOX_KEY, OUTBOX_KEYS
from tests.nats_server import NatsServer
from tests.servers import ROOT


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    """A plain nats-py client, as any subscriber would use."""
    nc: NATS = await nats.connect(nats_server.url, allow_reconnect=True, connect_timeout=2)
    yield nc.jetstream(timeout=5)
    await nc.close()


async def stream_events(js: JetStreamContext) -> list[dict[str, Any]]:
    """Every message stored in ML_EVENTS, in order."""
    count = (await js.stream_info("ML_EVENTS")).state.messages
    sub = await js.subscribe("ml.events.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    events = [json.loads((await sub.next_msg(timeout=5)).data) for _ in range(count)]
    await sub.unsubscribe()
    return events


async def test_subscriber_gets_its_tenant_events_on_the_right_subjects(
    nats_server: NatsServer, js: JetStreamContext
) -> None:
    bus = open_event_bus(nats_server.url, "memory://")
    first = await bus.publish("acme", "model.created", {"kind": "linear"}, subject="m1")
    assert await bus.flush() == 1

    info = await js.stream_info("ML_EVENTS")  # created by the relay on its first connect
    assert info.config.subjects == ["ml.events.>"]

    sub = await js.subscribe("ml.events.acme.>", deliver_policy=DeliverPolicy.ALL)
    published = [first]
    for event_type in EVENT_TYPES:
        await bus.publish("b", event_type, {"secret": True})
        published.append(await bus.publish("acme", event_type, {"t": event_type}, subject="m1"))
    assert await bus.flush() == 2 * len(EVENT_TYPES)

    for expected in published:
        msg = await sub.next_msg(timeout=5)
        assert msg.subject == f"ml.events.acme.{expected['type']}"
        assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == expected["id"]
        assert json.loads(msg.data) == expected
    with pytest.raises(nats.errors.TimeoutError):  # tenant b's events never arrive here
        await sub.next_msg(timeout=0.3)
    b_info = await js.stream_info("ML_EVENTS", subjects_filter="ml.events.b.>")
    assert sum((b_info.state.subjects or {}).values()) == len(EVENT_TYPES)
    await bus.close()


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_events_published_while_nats_is_down_arrive_once_it_is_back(
    request: pytest.FixtureRequest, nats_server: NatsServer, store: str
) -> None:
    state_url = "memory://" if store == "memory" else request.getfixturevalue("redis_url")
    bus = open_event_bus(nats_server.url, state_url)
    ids = [(await bus.publish("acme", "model.created", {}))["id"]]
    assert await bus.flush() == 1

    nats_server.stop()
    for i in range(20):  # publishing never waits for NATS (tests/shared/test_events.py)
        event = await bus.publish("acme", "model.trained", {"i": i}, subject="m1")
        ids.append(event["id"])
    assert await bus.flush(timeout=0.5) == 0
    assert await bus.backlog() == 20
    if store == "redis":
        valkey = aioredis.Redis.from_url(state_url)
        held = sum([await valkey.xlen(key) for key in OUTBOX_KEYS])
        assert held == 20  # kept in the state store, not the process
        await valkey.aclose()

    nats_server.start()  # same port, same store: the stream survives
    assert await bus.flush(timeout=15) == 20
    assert await bus.backlog() == 0

    nc = await nats.connect(nats_server.url, connect_timeout=2)
    js = nc.jetstream(timeout=5)
    stored = await stream_events(js)
    assert [e["id"] for e in stored] == ids  # all of them, in order, none twice
    assert (await js.stream_info("ML_EVENTS")).state.messages == 21
    await nc.close()
    await bus.close()


async def test_another_instance_relays_what_a_stopped_one_left(
    nats_server: NatsServer, redis_url: str
) -> None:
    nats_server.stop()
    first = OutboxRelay(nats_server.url, RedisOutbox(redis_url), close_timeout=0.2)
    ids = [(await first.publish("acme", "job.started", {"i": i}))["id"] for i in range(5)]
    await first.close()  # NATS still down: the events stay in Redis

    nats_server.start()
    second = open_event_bus(nats_server.url, redis_url)
    await second.start()  # no publish, no flush: its relay drains the shared outbox
    nc = await nats.connect(nats_server.url, connect_timeout=2)
    js = nc.jetstream(timeout=5)
    for _ in range(200):  # at most 10 s
        if not await second.backlog():
            break
        await asyncio.sleep(0.05)
    assert [e["id"] for e in await stream_events(js)] == ids
    await nc.close()
    await second.close()


async def test_events_left_in_the_old_single_outbox_are_relayed_once(
    nats_server: NatsServer, redis_url: str, js: JetStreamContext
) -> None:
    # As the version before the partitions wrote it: one Stream `ml:outbox`.
    old = build_event("acme", "model.created", {"written": "before the upgrade"})
    valkey = aioredis.Redis.from_url(redis_url)
    fields = {"id": old.id, "tenant": old.tenant, "subject": old.subject, "event": old.payload}
    await valkey.xadd(LEGACY_OUTBOX_KEY, fields)  # type: ignore[arg-type]

    bus = open_event_bus(nats_server.url, redis_url)
    assert await bus.backlog() == 1
    new = await bus.publish("acme", "model.trained", {"written": "after"})
    assert await bus.flush() == 2
    assert await bus.backlog() == 0
    assert await valkey.xlen(LEGACY_OUTBOX_KEY) == 0
    assert await bus.flush(timeout=0.5) == 0  # acked: never relayed again
    assert [e["id"] for e in await stream_events(js)] == [old.id, new["id"]]
    assert (await stream_events(js))[0] == json.loads(old.payload)
    await valkey.aclose()
    await bus.close()


async def test_a_resent_event_is_deduplicated_by_jetstream(
    nats_server: NatsServer, redis_url: str, js: JetStreamContext
) -> None:
    bus = open_event_bus(nats_server.url, redis_url)
    assert isinstance(bus, OutboxRelay)
    events = [await bus.publish("acme", "model.activated", {"v": v}) for v in range(3)]
    assert await bus.flush() == 3

    # As if an instance died after the PubAck but before XDEL: the event is in the outbox again.
    again = events[1]
    payload = json.dumps(again).encode()
    await bus.outbox.append(
        Envelope(again["id"], "acme", "ml.events.acme.model.activated", payload)
    )
    assert await bus.flush() == 1
    ack = await js.publish(
        "ml.events.acme.model.activated", payload, headers={"Nats-Msg-Id": again["id"]}
    )
    assert ack.duplicate
    assert (await js.stream_info("ML_EVENTS")).state.messages == 3

    # Two instances relaying one Redis outbox at once still store each event once.
    other = open_event_bus(nats_server.url, redis_url)
    more = [await bus.publish("acme", "model.trained", {"i": i}) for i in range(30)]
    await asyncio.gather(bus.flush(), other.flush())
    assert await bus.backlog() == 0
    stored = [e["id"] for e in await stream_events(js)]
    assert stored == [e["id"] for e in events + more]
    await bus.close()
    await other.close()


async def read_line(stream: asyncio.StreamReader | None, within: float = 10) -> bytes:
    assert stream is not None
    return await asyncio.wait_for(stream.readline(), timeout=within)


async def test_cli_tails_one_tenant_from_nats(nats_server: NatsServer) -> None:
    bus = open_event_bus(nats_server.url, "memory://")
    before = [await bus.publish("acme", "model.created", {"i": i}) for i in range(2)]
    await bus.publish("b", "model.created", {"secret": True})
    await bus.flush()

    env = {**os.environ, "PYTHONPATH": str(ROOT), "NATS_URL": nats_server.url}
    tails = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "shared.events",
            "tail",
            "--tenant",
            "acme",
            *extra,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for extra in (["--from-start"], ["--type", "job.failed"])
    ]
    everything, failures = tails
    try:
        for proc in tails:
            assert b"tailing ml.events.acme." in await read_line(proc.stderr)
        assert [json.loads(await read_line(everything.stdout)) for _ in before] == before
        after = [
            await bus.publish("b", "job.failed", {"secret": True}),
            await bus.publish("acme", "job.started", {}),
            await bus.publish("acme", "job.failed", {"error": "boom"}),
        ]
        await bus.flush()
        assert [json.loads(await read_line(everything.stdout)) for _ in range(2)] == after[1:]
        assert json.loads(await read_line(failures.stdout)) == after[2]
        for proc in tails:  # nothing more: never tenant b
            with pytest.raises(TimeoutError):
                await read_line(proc.stdout, within=0.3)
    finally:
        for proc in tails:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)  # Ctrl-C
        codes = [await asyncio.wait_for(proc.wait(), timeout=10) for proc in tails]
        await bus.close()
    assert codes == [0, 0]
