"""EVENTS_REPLICAS=3 on a 3-node JetStream cluster (issue 16 §4): events published through the
outbox while the stream's leader is SIGKILLed are all in the stream exactly once (the relay
resends what was not acknowledged; JetStream drops a resend by its Nats-Msg-Id), and the
subscriber CLI, started before the kill, prints every one of them once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import DeliverPolicy

from shared.events.bus import OutboxRelay
from shared.events.cloudevent import STREAM
from shared.events.jetstream import ensure_stream
from shared.events.outbox import MemoryOutbox
from shared.settings import load_settings
from tests.nats_server import NatsCluster, NatsServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TENANT = "acme"
BEFORE, DURING, AFTER = 60, 60, 60  # events published before, around and after the kill


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nodes = NatsCluster(tmp_path / "nats", size=3).start()
    yield nodes
    nodes.stop()


class Tail:
    """`python -m shared.events tail` in its own process; its stdout lines collected."""

    def __init__(self, nats_url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shared.events", "tail", "--tenant", TENANT, "--from-start"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "NATS_URL": nats_url},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, object]] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.append(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if line.startswith("tailing "):
                self.ready.set()

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            assert self.process.poll() is None, "the subscriber CLI exited"
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


async def stream_leader(url: str) -> tuple[str, int]:
    nc = await nats.connect(url.split(","), connect_timeout=2)
    try:
        info = await nc.jetstream(timeout=5).stream_info(STREAM)
        assert info.cluster is not None
        return str(info.cluster.leader), info.config.num_replicas or 1
    finally:
        await nc.close()


async def stored_ids(url: str) -> list[str]:
    """Every event id in the stream, in stream order, read through a surviving node. Creating
    the reading consumer needs the JetStream meta leader: if the killed node led that group
    and no successor is elected yet, the request goes unanswered (it is not queued), so the
    read is tried again until a deadline."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return await _read_stream(url)
        except NatsTimeout:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _read_stream(url: str) -> list[str]:
    nc = await nats.connect(url.split(","), connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        info = await js.stream_info(STREAM)
        sub = await js.subscribe(
            f"ml.events.{TENANT}.>",
            stream=STREAM,  # named: no stream lookup either
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        ids = [json.loads((await sub.next_msg(timeout=5)).data)["id"]]
        while len(ids) < info.state.messages:
            ids.append(json.loads((await sub.next_msg(timeout=5)).data)["id"])
        return ids
    finally:
        await nc.close()


async def test_r3_stream_loses_and_doubles_nothing_when_its_leader_is_killed(
    cluster: NatsCluster,
) -> None:
    relay = OutboxRelay(
        cluster.url, MemoryOutbox(), replicas=3, publish_timeout=1.0, backoff=(0.1, 0.5)
    )
    published: list[str] = []

    async def publish(count: int, pause: float = 0.0) -> None:
        for _ in range(count):
            event = await relay.publish(TENANT, "model.trained", {"n": len(published)})
            published.append(str(event["id"]))
            await asyncio.sleep(pause)  # the background relay sends as they come

    tail: Tail | None = None
    try:
        await publish(BEFORE)
        assert await relay.flush(timeout=20) == BEFORE  # the stream exists, R3
        leader, replicas = await stream_leader(cluster.url)
        assert replicas == 3
        tail = Tail(cluster.url)
        assert tail.ready.wait(15), "the subscriber CLI did not start"

        await publish(DURING // 2, pause=0.01)
        victim: NatsServer = cluster.by_name(leader)
        victim.kill()  # mid-stream, the stream's leader dies without a word
        survivors = ",".join(s.url for s in cluster.servers if s is not victim)
        await publish(DURING - DURING // 2, pause=0.01)  # during the election
        await publish(AFTER)
        await relay.flush(timeout=30)
        assert await relay.backlog() == 0

        new_leader, _ = await stream_leader(survivors)
        assert new_leader != leader
        ids = await stored_ids(survivors)
        assert len(ids) == len(set(ids)) == len(published)  # nothing doubled ...
        assert set(ids) == set(published)  # ... nothing lost

        tail.wait_for(len(published), timeout=30)
        seen = [str(event["id"]) for event in tail.events]
        assert sorted(seen) == sorted(published)  # the CLI kept reading: each event once
        assert all(event["tenant"] == TENANT for event in tail.events)
    finally:
        if tail is not None:
            tail.stop()
        await relay.close()


async def test_an_existing_stream_is_moved_to_events_replicas(cluster: NatsCluster) -> None:
    nc = await nats.connect(cluster.url.split(","), connect_timeout=2)
    try:
        js = nc.jetstream(timeout=10)
        await ensure_stream(js)  # the subscriber CLI's call: R1
        assert (await js.stream_info(STREAM)).config.num_replicas == 1
        await ensure_stream(js, 3)  # an instance with EVENTS_REPLICAS=3
        assert (await js.stream_info(STREAM)).config.num_replicas == 3
        await ensure_stream(js)  # the CLI never scales it back
        assert (await js.stream_info(STREAM)).config.num_replicas == 3
    finally:
        await nc.close()


async def test_events_replicas_unset_keeps_an_operator_tuned_count(
    cluster: NatsCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVENTS_REPLICAS", raising=False)
    assert load_settings().events_replicas is None  # the default: unset
    nc = await nats.connect(cluster.url.split(","), connect_timeout=2)
    relay = OutboxRelay(cluster.url, MemoryOutbox(), replicas=load_settings().events_replicas)
    try:
        js = nc.jetstream(timeout=10)
        await ensure_stream(js, 3)  # tuned to R3 by an operator
        await relay.publish(TENANT, "model.created", {})
        assert await relay.flush(timeout=20) == 1  # the relay connected and checked the stream
        assert (await js.stream_info(STREAM)).config.num_replicas == 3
    finally:
        await relay.close()
        await nc.close()


async def test_a_single_server_keeps_r1_and_says_why(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    nc = await nats.connect(nats_server.url, connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        await ensure_stream(js)
        await ensure_stream(js, 3)  # a single server cannot hold R3: refused, logged, kept
        assert (await js.stream_info(STREAM)).config.num_replicas == 1
        assert "EVENTS_REPLICAS is 3, but the update was refused" in caplog.text
    finally:
        await nc.close()
