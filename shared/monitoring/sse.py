"""`GET /api/v1/stream/events`: the tenant's events as Server-Sent Events (README: Live events).

Lifecycle events carry `id:` (their CloudEvent id): the client's Last-Event-ID resumes right
after it (shared/events/feed.py). Live `prediction` and `metrics` events carry none, so the
browser's Last-Event-ID always names a lifecycle event; they are not replayed.

A stream is long-lived by design: the edge gives it no request deadline (shared/edge/steps.py),
the server ends it on shutdown like a client disconnect (shared/connection_guard.py), and
at most STREAM_MAX_CLIENTS are open per instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from shared.edge.codec import dump_json
from shared.errors import ApiError
from shared.events.cloudevent import EVENT_TYPES
from shared.events.feed import EventFeed, FeedItem, FeedUnavailable, Subscription
from shared.events.live import LIVE_TYPES, LivePublisher
from shared.monitoring.prometheus import SSE_STREAMS
from shared.tenancy import check_name

log = logging.getLogger("ml.monitoring")

STREAM_PATH = "/api/v1/stream/events"
STREAM_TYPES = frozenset((*EVENT_TYPES, *LIVE_TYPES))
EVENT_ID = re.compile(r"[0-9a-f]{32}")
# on the scope: the server ends this response on shutdown (shared/connection_guard.py)
LONG_LIVED_KEY = "ml.long_lived"


@dataclass(frozen=True)
class StreamFilter:
    types: frozenset[str] | None  # None: every type
    model: str | None

    def accepts(self, event: dict[str, Any]) -> bool:
        if self.types is not None and event.get("type") not in self.types:
            return False
        if self.model is None:
            return True
        data = event.get("data")
        named = data.get("model") if isinstance(data, dict) else None
        return self.model in (event.get("subject"), named)


def parse_filter(types: str | None, model: str | None, max_chars: int) -> StreamFilter:
    """`?types=a,b` and `?model=`, bounded and checked (400 names the problem)."""
    for name, value in (("types", types), ("model", model)):
        if value is not None and len(value) > max_chars:
            raise ApiError(
                400, "query_too_long", f"'{name}' exceeds STREAM_MAX_FILTER_CHARS ({max_chars})"
            )
    wanted: frozenset[str] | None = None
    if types is not None:
        wanted = frozenset(t.strip() for t in types.split(",") if t.strip())
        unknown = sorted(wanted - STREAM_TYPES)
        if unknown or not wanted:
            raise ApiError(
                400,
                "invalid_types",
                f"unknown event type(s) {', '.join(unknown) or '(none given)'}; "
                f"one of {', '.join(sorted(STREAM_TYPES))}",
            )
    if model is not None:
        check_name(model)
    return StreamFilter(wanted, model)


def parse_last_event_id(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    if not EVENT_ID.fullmatch(raw.strip()):
        raise ApiError(
            400, "invalid_last_event_id", "Last-Event-ID must be an event id (32 hex digits)"
        )
    return raw.strip()


def frame(item: FeedItem) -> bytes:
    """One SSE message: `id` for a lifecycle event only, `event` its type, `data` one line."""
    event = item.event
    data = dump_json(event)  # compact JSON: never a newline, so one data line
    head = f"id: {event['id']}\n" if item.durable and "id" in event else ""
    return f"{head}event: {event.get('type', 'message')}\n".encode() + b"data: " + data + b"\n\n"


class StreamHub:
    """This instance's streams: the feed they read, the live publisher, and the cap."""

    def __init__(
        self,
        feed: EventFeed,
        live: LivePublisher,
        *,
        max_clients: int,
        heartbeat_seconds: float,
        queue_events: int,
    ) -> None:
        self.feed = feed
        self.live = live
        self.max_clients = max_clients
        self.heartbeat_seconds = heartbeat_seconds
        self.queue_events = queue_events
        self.active = 0  # streams open now

    async def open(self, tenant: str, after: str | None, where: StreamFilter) -> EventStream:
        """Reserve a place (503 at the cap) and subscribe (503 when the feed is down)."""
        if self.active >= self.max_clients:
            raise ApiError(
                503,
                "stream_capacity",
                f"this instance serves STREAM_MAX_CLIENTS ({self.max_clients}) streams; retry",
                {"Retry-After": "5"},
            )
        self.active += 1
        SSE_STREAMS.inc()
        try:
            subscription = await self.feed.subscribe(tenant, after, self.queue_events)
        except FeedUnavailable as exc:
            self.released()
            raise ApiError(
                503,
                "events_unavailable",
                f"the event bus is unreachable: {exc}",
                {"Retry-After": "2"},
            ) from None
        except BaseException:
            self.released()
            raise
        return EventStream(self, subscription, where)

    def released(self) -> None:
        self.active -= 1
        SSE_STREAMS.dec()

    async def close(self) -> None:
        await self.feed.close()
        await self.live.close()


class EventStream:
    """The ASGI response of one stream: the events, heartbeats, and the cleanup."""

    def __init__(self, hub: StreamHub, subscription: Subscription, where: StreamFilter) -> None:
        self.hub = hub
        self.subscription = subscription
        self.where = where
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[LONG_LIVED_KEY] = True
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),  # proxies: do not buffer the stream
                    ],
                }
            )
            # `retry` tells EventSource how long to wait before reconnecting
            await send(
                {"type": "http.response.body", "body": b"retry: 2000\n\n", "more_body": True}
            )
            pump = asyncio.create_task(self._pump(send))
            watch = asyncio.create_task(_disconnected(receive))
            done, _ = await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
            for task in (pump, watch):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if pump in done and not pump.cancelled() and pump.exception() is None:
                # the stream ended on our side (a slow client overflowed): say so and close
                with contextlib.suppress(Exception):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self.subscription.close()
            self.hub.released()

    async def _pump(self, send: Send) -> None:
        queue, heartbeat = self.subscription.queue, self.hub.heartbeat_seconds
        while not self.subscription.overflowed or not queue.empty():
            try:
                async with asyncio.timeout(heartbeat):
                    item = await queue.get()
            except TimeoutError:
                await send(
                    {"type": "http.response.body", "body": b": heartbeat\n\n", "more_body": True}
                )
                continue
            if self.where.accepts(item.event):
                await send({"type": "http.response.body", "body": frame(item), "more_body": True})
            if self.subscription.overflowed and queue.empty():
                log.info("a stream fell behind by STREAM_QUEUE_EVENTS; ended for it to resume")
                return


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
