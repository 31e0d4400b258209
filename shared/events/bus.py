"""The event bus: one interface, two implementations side by side (architecture.md §6).

- LocalEventLog (NATS_URL unset): one JSON line per event in `<events_dir>/<tenant>.jsonl`.
- OutboxRelay (NATS_URL set): the event goes into the outbox in the state store, and a
  background task relays the outbox to JetStream, keeping events while NATS is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shared.events.cloudevent import CONTENT_TYPE, Envelope, build_event
from shared.events.mirrors import mirrored
from shared.events.outbox import MemoryOutbox, Outbox, open_outbox
from shared.executors import run_in

if TYPE_CHECKING:  # nats-py (and aiohttp under it) is imported only when NATS_URL is set
    from nats.aio.client import Client as NATS
    from nats.js import JetStreamContext

log = logging.getLogger("shared.events")


class EventBus(Protocol):
    """Publishes lifecycle events. Implementations: LocalEventLog, OutboxRelay."""

    async def publish(
        self,
        tenant: str,
        event_type: str,
        data: dict[str, Any],
        *,
        subject: str | None = None,
        source: str = "/online-ml",
    ) -> dict[str, Any]:
        """Record the event; return it as a CloudEvents JSON dict.

        Never raises because NATS is down; ValueError on an unknown type, a bad tenant or
        data that is not a JSON object.
        """

    async def flush(self, timeout: float = 5.0) -> int:  # noqa: ASYNC109 (contract)
        """Relay what is pending now (tests, shutdown); return how many were relayed."""

    async def backlog(self) -> int:
        """Events not yet relayed (the outbox depth)."""

    async def start(self) -> None:
        """Start background work now rather than on the first publish (optional)."""

    async def close(self) -> None: ...


class LocalEventLog:
    """`NATS_URL` unset: append each event as one line of `<events_dir>/<tenant>.jsonl`."""

    def __init__(
        self, events_dir: str | os.PathLike[str] = ".data/events", executor: Executor | None = None
    ) -> None:
        self.events_dir = Path(events_dir)
        self.executor = executor  # IO_WORKERS (shared/executors.py)

    async def publish(
        self,
        tenant: str,
        event_type: str,
        data: dict[str, Any],
        *,
        subject: str | None = None,
        source: str = "/online-ml",
    ) -> dict[str, Any]:
        # Mirrors (shared/events/mirrors.py) are NATS messages for other systems' subscribers:
        # without NATS there is no subscriber, and this log holds the CloudEvents only.
        envelope = build_event(tenant, event_type, data, subject=subject, source=source)
        await run_in(self.executor, self._append, envelope)
        return envelope.as_dict()

    def _append(self, envelope: Envelope) -> None:
        self.events_dir.mkdir(parents=True, exist_ok=True)
        path = self.events_dir / f"{envelope.tenant}.jsonl"
        line = memoryview(envelope.payload + b"\n")
        # One write() with O_APPEND: writers in other threads or processes never interleave
        # inside a line (the loop only matters for a short write on a full disk).
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            while line:
                line = line[os.write(fd, line) :]
        finally:
            os.close(fd)

    async def flush(self, timeout: float = 5.0) -> int:  # noqa: ASYNC109 (contract)
        return 0

    async def backlog(self) -> int:
        return 0

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class OutboxRelay:
    """`NATS_URL` set: write to the outbox, relay to JetStream in the background.

    At least once into JetStream, exactly once in the stream: an event is removed from the
    outbox only after its PubAck, and a resend (after a lost ack, a crash, or two instances
    relaying the same Redis outbox) carries the same `Nats-Msg-Id`, which JetStream drops.
    """

    def __init__(
        self,
        nats_url: str,
        outbox: Outbox,
        *,
        poll_seconds: float | None = None,
        batch: int = 100,
        publish_timeout: float = 2.0,
        connect_timeout: float = 2.0,
        backoff: tuple[float, float] = (0.2, 5.0),
        close_timeout: float = 1.0,
        replicas: int | None = None,
    ) -> None:
        self.nats_url = nats_url
        self.outbox = outbox
        # EVENTS_REPLICAS: the stream's replica count; None keeps an existing stream's
        self._replicas = replicas
        # With a shared (Redis) outbox, poll now and then so events left by an instance that
        # died are relayed even when this one publishes nothing.
        self._poll_seconds = poll_seconds
        self._batch = batch
        self._publish_timeout = publish_timeout
        self._connect_timeout = connect_timeout
        self._backoff = backoff
        self._close_timeout = close_timeout
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._stream_ready = False
        self._pass_lock = asyncio.Lock()  # one relay pass at a time (background or flush)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._relayed = 0

    async def publish(
        self,
        tenant: str,
        event_type: str,
        data: dict[str, Any],
        *,
        subject: str | None = None,
        source: str = "/online-ml",
    ) -> dict[str, Any]:
        if self._closed:
            raise RuntimeError("the event bus is closed")
        envelope = build_event(tenant, event_type, data, subject=subject, source=source)
        copies = mirrored(envelope, event_type, data)  # a bad mirror fails before anything is kept
        for message in (envelope, *copies):
            await self.outbox.append(message)
        self._start_task()
        self._wake.set()
        return envelope.as_dict()

    async def flush(self, timeout: float = 5.0) -> int:  # noqa: ASYNC109 (contract)
        start = self._relayed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        if await self._relay_once() == 0:
                            break
                    except Exception:  # NATS or the state store is still down: retry soon
                        await asyncio.sleep(0.1)
        return self._relayed - start

    async def backlog(self) -> int:
        return await self.outbox.backlog()

    async def start(self) -> None:
        self._start_task()

    async def close(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(Exception):
            if await self.outbox.backlog():
                await self.flush(self._close_timeout)
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            # Cancelling mid-pass is safe: whatever was not acked stays in the outbox.
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), timeout=2.0)
        await self.outbox.close()

    def _start_task(self) -> None:
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._run(), name="events-outbox-relay")

    async def _run(self) -> None:
        delay, failing = self._backoff[0], False
        while not self._closed:
            self._wake.clear()  # before reading: a publish from now on wakes the next wait
            try:
                moved = await self._relay_once()
            except Exception as exc:
                if not failing:  # once per outage, not once per retry
                    log.warning(
                        "event relay to %s failed (%s: %s); events stay in the outbox, retrying",
                        self.nats_url,
                        exc.__class__.__name__,
                        exc,
                    )
                failing = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            if failing:
                log.info("event relay: recovered")
            delay, failing = self._backoff[0], False
            if moved < self._batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_seconds)

    async def _relay_once(self) -> int:
        """Publish the oldest pending batch in order; ack what JetStream acknowledged."""
        async with self._pass_lock:
            batch = await self.outbox.pending(self._batch)
            if not batch:
                return 0
            js = await self._jetstream()
            done: list[str] = []
            try:
                for item in batch:
                    ack = await js.publish(
                        item.envelope.subject,
                        item.envelope.payload,
                        timeout=self._publish_timeout,
                        headers={"Nats-Msg-Id": item.envelope.id, "Content-Type": CONTENT_TYPE},
                    )
                    if ack.duplicate:
                        log.debug("event %s was already in JetStream", item.envelope.id)
                    done.append(item.key)
            except Exception:
                self._stream_ready = False  # NATS may have come back without the stream
                raise
            finally:
                if done:
                    await self.outbox.ack(done)
                    self._relayed += len(done)
            return len(done)

    async def _jetstream(self) -> JetStreamContext:
        from shared.events.jetstream import connect_nats, ensure_stream

        if self._nc is None or self._nc.is_closed:
            self._nc = await connect_nats(
                self.nats_url, name="online-ml-outbox", connect_timeout=self._connect_timeout
            )
            self._js = self._nc.jetstream(timeout=self._publish_timeout)
            self._stream_ready = False
        assert self._js is not None
        if not self._stream_ready:
            await ensure_stream(self._js, self._replicas)
            self._stream_ready = True
        return self._js


def open_event_bus(
    nats_url: str | None,
    state_url: str,
    *,
    events_dir: str = ".data/events",
    executor: Executor | None = None,
    replicas: int | None = None,
) -> EventBus:
    """The bus for this configuration; no I/O until the first publish. `replicas`
    (EVENTS_REPLICAS) is the JetStream stream's replica count (None: keep an existing
    stream's, create a new one with 1)."""
    if not nats_url:
        return LocalEventLog(events_dir, executor)
    outbox = open_outbox(state_url)
    poll = None if isinstance(outbox, MemoryOutbox) else 2.0
    return OutboxRelay(nats_url, outbox, poll_seconds=poll, replicas=replicas)
