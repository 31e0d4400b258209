"""One SSE stream's bounds, in process over the local event log: the tenant's share of the
places, a client that stops reading, the server's shutdown, the Last-Event-ID's time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from shared.edge.request import CONNECTION_KEY, ConnectionControl
from shared.errors import ApiError
from shared.events.feed import LocalFeed
from shared.events.live import LocalLive
from shared.monitoring.sse import StreamFilter, StreamHub, parse_last_event_id

WAIT = 30.0  # a guard against a hang, never a measured bound
EVERYTHING = StreamFilter(None, None)


def hub(tmp_path: Path, **bounds: Any) -> StreamHub:
    settings = {
        "max_clients": 3,
        "max_clients_per_tenant": 2,
        "heartbeat_seconds": 0.01,
        "queue_events": 10,
        "send_timeout_seconds": 0.05,
        "max_seconds": 3600.0,
        **bounds,
    }
    feed = LocalFeed(str(tmp_path), 0.01, 60.0, max_scan=100, executor=None)
    return StreamHub(feed, LocalLive(tmp_path, 4096, None), **settings)


async def test_places_per_tenant_and_per_instance(tmp_path: Path) -> None:
    streams = hub(tmp_path)
    opened = []
    steps = [
        # (tenant, the refusal's status and code, or None when it opens)
        ("acme", None),
        ("acme", None),
        ("acme", (429, "stream_tenant_capacity")),  # its share is full, others are not
        ("other", None),
        ("third", (503, "stream_capacity")),  # the instance is full
    ]
    for tenant, refusal in steps:
        if refusal is None:
            opened.append(await streams.open(tenant, None, EVERYTHING))
            continue
        with pytest.raises(ApiError) as refused:
            await streams.open(tenant, None, EVERYTHING)
        assert (refused.value.status, refused.value.code) == refusal
    assert streams.per_tenant == {"acme": 2, "other": 1}
    for stream in opened:
        await stream.subscription.close()
        streams.released(stream.tenant)
    assert streams.active == 0 and streams.per_tenant == {}


class Client:
    """The server side of one connection: what was sent, and a client that may stop reading."""

    def __init__(self, reads: bool) -> None:
        self.reads = reads
        self.sent: list[dict[str, Any]] = []
        self.aborted = False
        self.control = ConnectionControl(asyncio.Event(), self.abort)
        self.gone = asyncio.Event()

    def abort(self) -> None:
        self.aborted = True

    async def send(self, message: dict[str, Any]) -> None:
        if not self.reads and message.get("body", b"").startswith(b": heartbeat"):
            await asyncio.Event().wait()  # its socket buffer is full: this never returns
        self.sent.append(message)

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}


async def run(streams: StreamHub, client: Client) -> None:
    stream = await streams.open("acme", None, EVERYTHING)
    scope = {"type": "http", CONNECTION_KEY: client.control}
    async with asyncio.timeout(WAIT):
        await stream(scope, client.receive, client.send)


async def test_a_client_that_stops_reading_is_dropped(tmp_path: Path) -> None:
    streams = hub(tmp_path)
    client = Client(reads=False)
    await run(streams, client)
    assert client.aborted  # the connection is dropped, not closed after a flush that never ends
    assert streams.active == 0


async def test_shutdown_and_lifetime_end_the_response(tmp_path: Path) -> None:
    for reason in ("shutdown", "lifetime"):
        streams = hub(tmp_path, max_seconds=0.2 if reason == "lifetime" else 3600.0)
        client = Client(reads=True)
        if reason == "shutdown":
            client.control.shutting_down.set()  # as shared/connection_guard.py does
        await run(streams, client)
        assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
        assert not client.aborted and streams.active == 0


async def test_a_client_that_leaves_gets_nothing_more(tmp_path: Path) -> None:
    streams = hub(tmp_path)
    client = Client(reads=True)
    client.gone.set()
    await run(streams, client)
    assert client.sent[-1].get("more_body", True)  # no last chunk to a closed connection
    assert streams.active == 0


def _id_at(at: float) -> str:
    return f"{int(at * 1000):012x}7000a000000000000000"


# (Last-Event-ID, accepted), named: ids made from the clock would differ between collections
# (each pytest-xdist worker collects on its own)
IDS = [
    pytest.param(None, True, id="none"),
    pytest.param("", True, id="empty"),
    pytest.param(_id_at(time.time() - 3600), True, id="an-hour-ago"),
    # time 0: accepted, and its search is bounded (shared/events/feed.py)
    pytest.param(_id_at(0), True, id="time-0"),
    pytest.param("0" * 32, True, id="v4-no-time"),  # an older v4 id
    pytest.param(_id_at(time.time() + 30), True, id="within-the-skew"),
    pytest.param(_id_at(time.time() + 3600), False, id="an-hour-ahead"),
    # was a 503 (datetime out of range)
    pytest.param("ffffffffffff7000a000000000000000", False, id="max-time"),
    pytest.param("not-an-id", False, id="junk"),
]


@pytest.mark.parametrize(("raw", "accepted"), IDS)
def test_last_event_id(raw: str | None, accepted: bool) -> None:
    if accepted:
        assert parse_last_event_id(raw, 60.0) == (raw or None)
        return
    with pytest.raises(ApiError) as refused:
        parse_last_event_id(raw, 60.0)
    assert (refused.value.status, refused.value.code) == (400, "invalid_last_event_id")
