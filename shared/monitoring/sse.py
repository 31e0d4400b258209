"""`GET /api/v1/stream/events`: the tenant's events as Server-Sent Events (README: Live events).

Lifecycle events carry `id:` (their CloudEvent id): the client's Last-Event-ID resumes right
after it (shared/events/feed.py). Live `prediction` and `metrics` events carry none, so the
browser's Last-Event-ID always names a lifecycle event; they are not replayed.

A stream is long-lived by design: the edge gives it no request deadline (shared/edge/steps.py).
It is bounded all the same: at most STREAM_MAX_CLIENTS per instance and
STREAM_MAX_CLIENTS_PER_TENANT per tenant; a send that waits STREAM_SEND_TIMEOUT_SECONDS (a
client that stopped reading) drops the connection; after STREAM_MAX_SECONDS, or when the server
shuts down (shared/connection_guard.py), the stream ends its response cleanly and the client
reconnects with its Last-Event-ID, passing the edge (tenant key included) again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from shared.edge.codec import dump_json
from shared.edge.request import CONNECTION_KEY, STREAM_PATH, ConnectionControl
from shared.errors import ApiError
from shared.events.cloudevent import EVENT_TYPES, event_id_time
from shared.events.feed import EventFeed, FeedItem, FeedUnavailable, Subscription
from shared.events.live import LIVE_TYPES, LivePublisher
from shared.monitoring.prometheus import SSE_STREAMS
from shared.tenancy import check_name

log = logging.getLogger("ml.monitoring")

__all__ = ["STREAM_PATH", "EventStream", "StreamHub", "parse_filter", "parse_last_event_id"]

STREAM_TYPES = frozenset((*EVENT_TYPES, *LIVE_TYPES))
EVENT_ID = re.compile(r"[0-9a-f]{32}")


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


def parse_last_event_id(raw: str | None, skew_seconds: float) -> str | None:
    """The event id to resume after; 400 for one that is not an id or is minted later than
    now + `skew_seconds` (no instance made it: a UUIDv7 time is when it was minted)."""
    if raw is None or not raw.strip():
        return None
    if not EVENT_ID.fullmatch(raw.strip()):
        raise ApiError(
            400, "invalid_last_event_id", "Last-Event-ID must be an event id (32 hex digits)"
        )
    minted = event_id_time(raw.strip())
    if minted is not None and minted > time.time() + skew_seconds:
        raise ApiError(
            400,
            "invalid_last_event_id",
            "Last-Event-ID names a time in the future: it is not an event id of this service",
        )
    return raw.strip()


def frame(item: FeedItem) -> bytes:
    """One SSE message: `id` for a lifecycle event only, `event` its type, `data` one line."""
    event = item.event
    data = dump_json(event)  # compact JSON: never a newline, so one data line
    head = f"id: {event['id']}\n" if item.durable and "id" in event else ""
    return f"{head}event: {event.get('type', 'message')}\n".encode() + b"data: " + data + b"\n\n"


class StreamHub:
    """This instance's streams: the feed they read, the live publisher, and their bounds."""

    def __init__(
        self,
        feed: EventFeed,
        live: LivePublisher,
        *,
        max_clients: int,
        max_clients_per_tenant: int,
        heartbeat_seconds: float,
        queue_events: int,
        send_timeout_seconds: float,
        max_seconds: float,
    ) -> None:
        self.feed = feed
        self.live = live
        self.max_clients = max_clients
        self.max_clients_per_tenant = max_clients_per_tenant
        self.heartbeat_seconds = heartbeat_seconds
        self.queue_events = queue_events
        self.send_timeout_seconds = send_timeout_seconds
        self.max_seconds = max_seconds
        self.active = 0  # streams open now
        self.per_tenant: dict[str, int] = {}  # streams open now, by tenant (no zero entries)

    async def open(self, tenant: str, after: str | None, where: StreamFilter) -> EventStream:
        """Reserve a place (429 over the tenant's share, 503 at the instance's cap) and
        subscribe (503 when the feed is down)."""
        if self.per_tenant.get(tenant, 0) >= self.max_clients_per_tenant:
            raise ApiError(
                429,
                "stream_tenant_capacity",
                f"this tenant has STREAM_MAX_CLIENTS_PER_TENANT ({self.max_clients_per_tenant}) "
                "streams open on this instance; close one or retry",
                {"Retry-After": "5"},
            )
        if self.active >= self.max_clients:
            raise ApiError(
                503,
                "stream_capacity",
                f"this instance serves STREAM_MAX_CLIENTS ({self.max_clients}) streams; retry",
                {"Retry-After": "5"},
            )
        self.active += 1
        self.per_tenant[tenant] = self.per_tenant.get(tenant, 0) + 1
        SSE_STREAMS.inc()
        try:
            subscription = await self.feed.subscribe(tenant, after, self.queue_events)
        except FeedUnavailable as exc:
            self.released(tenant)
            raise ApiError(
                503,
                "events_unavailable",
                f"the event bus is unreachable: {exc}",
                {"Retry-After": "2"},
            ) from None
        except BaseException:
            self.released(tenant)
            raise
        return EventStream(self, tenant, subscription, where)

    def released(self, tenant: str) -> None:
        self.active -= 1
        left = self.per_tenant.get(tenant, 0) - 1
        if left > 0:
            self.per_tenant[tenant] = left
        else:
            self.per_tenant.pop(tenant, None)
        SSE_STREAMS.dec()

    async def close(self) -> None:
        await self.feed.close()
        await self.live.close()


class Stalled(Exception):
    """A send waited STREAM_SEND_TIMEOUT_SECONDS: the client stopped reading."""


class EventStream:
    """The ASGI response of one stream: the events, heartbeats, its end and the cleanup."""

    def __init__(
        self, hub: StreamHub, tenant: str, subscription: Subscription, where: StreamFilter
    ) -> None:
        self.hub = hub
        self.tenant = tenant
        self.subscription = subscription
        self.where = where

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        control: ConnectionControl | None = scope.get(CONNECTION_KEY)
        tasks: list[asyncio.Task[Any]] = []
        try:
            await self._send(
                send,
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),  # proxies: do not buffer the stream
                    ],
                },
            )
            # `retry` tells EventSource how long to wait before reconnecting
            await self._body(send, b"retry: 2000\n\n")
            pump = asyncio.create_task(self._pump(send))
            watch = asyncio.create_task(_disconnected(receive))
            tasks = [pump, watch, asyncio.create_task(asyncio.sleep(self.hub.max_seconds))]
            if control is not None:
                tasks.append(asyncio.create_task(control.shutting_down.wait()))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            await _cancel(tasks)
            if pump in done and not pump.cancelled() and pump.exception() is not None:
                raise pump.exception()  # type: ignore[misc]
            if watch not in done:
                # ended on our side (slow client, STREAM_MAX_SECONDS, shutdown): the last
                # chunk ends the response, so the client sees a clean end and reconnects
                await self._send(
                    send, {"type": "http.response.body", "body": b"", "more_body": False}
                )
        except Stalled:
            log.info("a stream client read nothing for STREAM_SEND_TIMEOUT_SECONDS; dropped")
            if control is not None:
                control.abort()
        except OSError as exc:
            log.debug("a stream's client went away: %r", exc)
        finally:
            await _cancel(tasks)
            await self.subscription.close()
            self.hub.released(self.tenant)

    async def _send(self, send: Send, message: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout(self.hub.send_timeout_seconds):
                await send(message)  # waits while the client's socket buffer is full
        except TimeoutError:
            raise Stalled from None

    async def _body(self, send: Send, body: bytes) -> None:
        await self._send(send, {"type": "http.response.body", "body": body, "more_body": True})

    async def _pump(self, send: Send) -> None:
        queue, heartbeat = self.subscription.queue, self.hub.heartbeat_seconds
        while not self.subscription.overflowed or not queue.empty():
            try:
                async with asyncio.timeout(heartbeat):
                    item = await queue.get()
            except TimeoutError:
                await self._body(send, b": heartbeat\n\n")
                continue
            if self.where.accepts(item.event):
                await self._body(send, frame(item))
            if self.subscription.overflowed and queue.empty():
                log.info("a stream fell behind by STREAM_QUEUE_EVENTS; ended for it to resume")
                return


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
