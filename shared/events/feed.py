"""Reading a tenant's events as they are published, for the SSE stream (architecture.md §6).

A `Subscription` fills one bounded queue with `FeedItem`s in arrival order: the tenant's
lifecycle events (durable: JetStream's ML_EVENTS, or the local log `<tenant>.jsonl`) and its
live events (ephemeral: core NATS `ml.live.<tenant>.>`, or `live/<tenant>.jsonl`).

Resuming after a lifecycle event (`after`, the SSE Last-Event-ID) starts right behind it in
the store's order, so nothing is missed or repeated. Event ids are UUIDv7 (time-ordered): the
search starts STREAM_RESUME_WINDOW_SECONDS (the window) before the id's time, but never
before now - window nor after now, whatever id a client sends; an id of unknown time (an
older v4 id) is searched from now - window. An id not found there (expired, older than the
window, or from another deployment) resumes at the first event of its time (at the start of
the window for an older id). A resume scans at most STREAM_RESUME_MAX_EVENTS events; past
that it starts from now, and what lies between is not replayed (never unbounded work).

A queue that fills (a client reading slower than events arrive) ends the subscription
(`overflowed`): the client reconnects with its Last-Event-ID and loses nothing durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shared.events.cloudevent import STREAM, event_id_time, nats_subject
from shared.events.follow import FileFollower
from shared.events.live import LIVE_DIR, live_subject
from shared.executors import run_in

if TYPE_CHECKING:  # nats-py is imported only when NATS_URL is set (shared/events/jetstream.py)
    from nats.aio.client import Client as NATS
    from nats.aio.msg import Msg

log = logging.getLogger("shared.events")

READ_BACK_BYTES = 64 * 1024  # the local log is searched backwards in reads of this size


class ResumeTooFar(Exception):
    """The resume scanned STREAM_RESUME_MAX_EVENTS without finding its place."""


def resume_start(since: float | None, window: float, now: float) -> float:
    """Where a resume's search starts: `window` before the id's time, within
    [now - window, now], whatever the id claims (an unknown time: now - window)."""
    if since is None:
        return now - window
    return min(max(since - window, now - window), now)


@dataclass(frozen=True)
class FeedItem:
    """One event for a stream: `durable` ones carry the SSE id (resumable)."""

    event: dict[str, Any]
    durable: bool


class FeedUnavailable(Exception):
    """The event store cannot be read now (NATS down): the stream answers 503."""


def parse_event(raw: bytes, tenant: str) -> dict[str, Any] | None:
    """A CloudEvent of this tenant, or None (mirrored messages of other shapes, bad lines)."""
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(event, dict) or "specversion" not in event or "type" not in event:
        return None
    return event if event.get("tenant") == tenant else None


def _event_time(event: dict[str, Any]) -> float:
    try:
        return datetime.fromisoformat(str(event.get("time", "")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class Subscription:
    """One stream's events; `close()` releases its consumer, subscription or poller."""

    def __init__(self, capacity: int) -> None:
        self.queue: asyncio.Queue[FeedItem] = asyncio.Queue(capacity)
        self.overflowed = False
        self._closers: list[Callable[[], Any]] = []
        self.closed = False

    def put(self, item: FeedItem) -> None:
        if self.overflowed or self.closed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True

    def on_close(self, closer: Callable[[], Any]) -> None:
        self._closers.append(closer)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for closer in reversed(self._closers):
            try:
                result = closer()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as exc:
                log.debug("closing a stream subscription: %r", exc)


class EventFeed(Protocol):
    async def subscribe(self, tenant: str, after: str | None, capacity: int) -> Subscription:
        """The tenant's events from now on (or right after the lifecycle event `after`)."""

    async def active_consumers(self) -> int:
        """Consumers or pollers held open now (for tests and /metrics)."""

    async def close(self) -> None: ...


class LocalFeed:
    """NATS_URL unset: follow `<events_dir>/<tenant>.jsonl` and `live/<tenant>.jsonl`."""

    def __init__(
        self,
        events_dir: str,
        poll_seconds: float,
        window: float,
        max_scan: int,
        executor: Executor | None,
    ) -> None:
        self.events_dir = Path(events_dir)
        self.poll_seconds = poll_seconds
        self.window = window
        self.max_scan = max_scan
        self.executor = executor
        self._pollers: set[asyncio.Task[None]] = set()

    async def subscribe(self, tenant: str, after: str | None, capacity: int) -> Subscription:
        subscription = Subscription(capacity)
        durable_path = self.events_dir / f"{tenant}.jsonl"
        start = None
        if after is not None:
            start = await run_in(self.executor, self._resume_position, durable_path, after)
        # start None: from the end (no Last-Event-ID, or nothing to replay)
        durable = await run_in(self.executor, FileFollower, durable_path, False, start)
        live = await run_in(
            self.executor, FileFollower, self.events_dir / LIVE_DIR / f"{tenant}.jsonl", False
        )
        poller = asyncio.get_running_loop().create_task(
            self._poll(tenant, subscription, durable, live), name=f"sse-poll-{tenant}"
        )
        self._pollers.add(poller)
        poller.add_done_callback(self._pollers.discard)

        async def stop() -> None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

        subscription.on_close(stop)
        return subscription

    def _resume_position(self, path: Path, after: str) -> int | None:
        """The byte offset right after the line of event `after`, None for the end (blocking
        file I/O). The log is read backwards from its end, at most `max_scan` lines, and
        only down to the window's start."""
        since = event_id_time(after)
        start = resume_start(since, self.window, time.time())
        needle = f'"id": "{after}"'.encode(), f'"id":"{after}"'.encode()
        first_of_its_time: int | None = None
        scanned = 0
        try:
            with path.open("rb") as file:
                for offset, line in _lines_backwards(file):
                    if needle[0] in line or needle[1] in line:
                        return offset + len(line) + 1
                    event = parse_event(line, path.stem)
                    if event is None:
                        continue
                    at = _event_time(event)
                    if at < start:
                        break  # older than the window: the search ends here
                    if since is None or at >= since:
                        first_of_its_time = offset  # the earliest so far, read backwards
                    scanned += 1
                    if scanned >= self.max_scan:
                        log.info("a resume scanned STREAM_RESUME_MAX_EVENTS; it starts from now")
                        return None
        except FileNotFoundError:
            return 0  # everything written once it appears is new
        return first_of_its_time

    async def _poll(
        self, tenant: str, subscription: Subscription, durable: FileFollower, live: FileFollower
    ) -> None:
        while not subscription.overflowed:
            lines = 0
            for follower, is_durable in ((durable, True), (live, False)):
                for raw in await run_in(self.executor, follower.read_lines):
                    lines += 1
                    if (event := parse_event(raw, tenant)) is not None:
                        subscription.put(FeedItem(event, is_durable))
            if not lines:
                await asyncio.sleep(self.poll_seconds)

    async def active_consumers(self) -> int:
        return len(self._pollers)

    async def close(self) -> None:
        for poller in list(self._pollers):
            poller.cancel()


class NatsFeed:
    """NATS_URL set: an ordered JetStream consumer on `ml.events.<tenant>.>` per stream, and
    a core subscription on `ml.live.<tenant>.>`; one NATS connection for all of them."""

    def __init__(self, nats_url: str, window: float, max_scan: int) -> None:
        self.nats_url = nats_url
        self.window = window
        self.max_scan = max_scan
        self._nc: NATS | None = None
        self._connect_lock = asyncio.Lock()
        self._consumers: set[str] = set()

    async def _connection(self) -> NATS:
        from shared.events.jetstream import connect_nats, ensure_stream

        async with self._connect_lock:
            if self._nc is None or self._nc.is_closed:
                try:
                    self._nc = await connect_nats(self.nats_url, name="online-ml-stream")
                    await ensure_stream(self._nc.jetstream())
                except Exception as exc:
                    self._nc = None
                    raise FeedUnavailable(f"NATS unreachable: {exc!r}") from exc
            return self._nc

    async def subscribe(self, tenant: str, after: str | None, capacity: int) -> Subscription:
        from nats.js.api import ConsumerConfig, DeliverPolicy

        from shared.events.jetstream import NATS_DOWN

        nc = await self._connection()
        if not nc.is_connected:
            raise FeedUnavailable("NATS is reconnecting")
        js = nc.jetstream()
        subscription = Subscription(capacity)
        try:
            start_seq = None
            if after:
                try:
                    start_seq = await self._resume_sequence(nc, tenant, after)
                except ResumeTooFar:
                    log.info("a resume scanned STREAM_RESUME_MAX_EVENTS; it starts from now")

            async def on_durable(msg: Msg) -> None:
                if (event := parse_event(msg.data, tenant)) is not None:
                    subscription.put(FeedItem(event, True))

            async def on_live(msg: Msg) -> None:
                if (event := parse_event(msg.data, tenant)) is not None:
                    subscription.put(FeedItem(event, False))

            live = await nc.subscribe(live_subject(tenant), cb=on_live)
            subscription.on_close(live.unsubscribe)
            config = ConsumerConfig(inactive_threshold=30.0)
            if start_seq is None:
                policy = DeliverPolicy.NEW
            else:
                policy = DeliverPolicy.BY_START_SEQUENCE
                config.opt_start_seq = start_seq
            durable = await js.subscribe(
                nats_subject(tenant),
                stream=STREAM,
                cb=on_durable,
                ordered_consumer=True,
                deliver_policy=policy,
                config=config,
            )
            name = (await durable.consumer_info()).name
            self._consumers.add(name)

            async def stop_durable() -> None:
                self._consumers.discard(name)
                with contextlib.suppress(Exception):
                    current = (await durable.consumer_info()).name  # renamed after a reset
                    await js.delete_consumer(STREAM, current)
                await durable.unsubscribe()

            subscription.on_close(stop_durable)
        except NATS_DOWN as exc:
            await subscription.close()
            raise FeedUnavailable(f"cannot subscribe on NATS: {exc!r}") from exc
        except BaseException:
            await subscription.close()
            raise
        return subscription

    async def _resume_sequence(self, nc: NATS, tenant: str, after: str) -> int:
        """The stream sequence right after event `after` among the tenant's events (searched
        from the window's start, at most `max_scan` messages: ResumeTooFar past that)."""
        from nats.js.api import ConsumerConfig, DeliverPolicy

        js = nc.jetstream()
        last = (await js.stream_info(STREAM)).state.last_seq
        since = event_id_time(after)
        start = datetime.fromtimestamp(resume_start(since, self.window, time.time()), UTC)
        config = ConsumerConfig(opt_start_time=start.isoformat().replace("+00:00", "Z"))
        scan = await js.subscribe(
            nats_subject(tenant),
            stream=STREAM,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_TIME,
            config=config,
        )
        first_of_its_time: int | None = None
        try:
            info = await scan.consumer_info()
            # messages already pushed to us count too: num_pending alone may be 0 by now
            pending = info.num_pending + info.delivered.consumer_seq
            scanned = 0
            while pending:
                scanned += 1
                if scanned > self.max_scan:
                    raise ResumeTooFar
                msg = await scan.next_msg(timeout=5.0)
                meta = msg.metadata
                if meta.sequence.stream > last:
                    break  # published after we started looking: the consumer reads it
                pending = meta.num_pending
                event = parse_event(msg.data, tenant)
                if event is None:
                    continue
                if event.get("id") == after:
                    return meta.sequence.stream + 1
                if first_of_its_time is None and (since is None or _event_time(event) >= since):
                    first_of_its_time = meta.sequence.stream
        finally:
            with contextlib.suppress(Exception):
                await js.delete_consumer(STREAM, (await scan.consumer_info()).name)
            await scan.unsubscribe()
        return first_of_its_time if first_of_its_time is not None else last + 1

    async def active_consumers(self) -> int:
        return len(self._consumers)

    async def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), timeout=2.0)
            self._nc = None


def open_feed(
    nats_url: str | None,
    events_dir: str,
    *,
    poll_seconds: float,
    window: float,
    max_scan: int,
    executor: Executor | None,
) -> EventFeed:
    if nats_url:
        return NatsFeed(nats_url, window, max_scan)
    return LocalFeed(events_dir, poll_seconds, window, max_scan, executor)


def _lines_backwards(file: Any) -> Iterator[tuple[int, bytes]]:
    """The whole lines of a binary file, last first, with their offsets; a trailing line
    still being written is skipped. Reads READ_BACK_BYTES at a time."""
    position = file.seek(0, 2)
    buffer = b""  # from `position` to the end of the last line not yet yielded ("\n" included)
    whole = False  # the trailing partial line is cut off
    while position > 0:
        size = min(READ_BACK_BYTES, position)
        position -= size
        file.seek(position)
        buffer = file.read(size) + buffer
        if not whole:
            cut = buffer.rfind(b"\n")
            if cut < 0:
                continue
            buffer, whole = buffer[: cut + 1], True
        parts = buffer[:-1].split(b"\n")
        # the first part may be the end of a line that starts before `position`: kept
        buffer = parts.pop(0) + b"\n" if position > 0 else b""
        offset = position + len(buffer)
        starts = []
        for part in parts:
            starts.append(offset)
            offset += len(part) + 1
        for start, line in zip(reversed(starts), reversed(parts), strict=True):
            if line.strip():
                yield start, line
