"""Live events: sampled `prediction`s and periodic `metrics`, for the SSE stream only.

They are samples of what is happening now, not a record: they are never kept in the outbox
or the ML_EVENTS stream, and a resumed stream does not replay them (architecture.md §6).

- With NATS: core NATS (no JetStream) on `ml.live.<tenant>.<type>`, so every instance's
  subscribers see them; published at most once, and dropped while NATS is unreachable.
- Without NATS: one JSON line each in `<events_dir>/live/<tenant>.jsonl`, which the local
  feed of every instance sharing the directory follows; the file is rotated past
  STREAM_LIVE_LOG_BYTES (a follower that was behind may miss a few lines of it).

Publishing never waits: `publish` is synchronous and hands the write to a background task.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shared.events.cloudevent import check_tenant, new_event_id
from shared.executors import run_in
from shared.monitoring.prometheus import LIVE_DROPPED

if TYPE_CHECKING:  # nats-py is imported only when NATS_URL is set (shared/events/jetstream.py)
    from nats.aio.client import Client as NATS

log = logging.getLogger("shared.events")

LIVE_TYPES: tuple[str, ...] = ("prediction", "metrics")
LIVE_PREFIX = "ml.live"
LIVE_DIR = "live"
MAX_WRITES_IN_FLIGHT = 256  # beyond this, live events are dropped rather than queued


def live_subject(tenant: str, event_type: str | None = None) -> str:
    return f"{LIVE_PREFIX}.{check_tenant(tenant)}.{event_type or '>'}"


def live_event(tenant: str, event_type: str, data: dict[str, Any]) -> bytes:
    """A CloudEvents-shaped JSON line (same attributes as a lifecycle event's)."""
    event = {
        "specversion": "1.0",
        "id": new_event_id(),
        "source": "/online-ml/live",
        "type": event_type,
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "tenant": check_tenant(tenant),
        "data": data,
    }
    if model := data.get("model"):
        event["subject"] = model
    return json.dumps(event, allow_nan=False, default=str, separators=(",", ":")).encode()


class LivePublisher(Protocol):
    def publish(self, tenant: str, event_type: str, data: dict[str, Any]) -> None:
        """Send one live event soon; never waits, never raises for a transport problem."""

    async def close(self) -> None: ...


class _Background:
    """A bounded set of fire-and-forget writes: when full, a new one is dropped and counted."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0

    def spawn(self, coroutine: Any) -> None:
        if len(self.tasks) >= MAX_WRITES_IN_FLIGHT:
            coroutine.close()
            self.dropped += 1
            LIVE_DROPPED.inc()
            return
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


class LocalLive:
    """`<events_dir>/live/<tenant>.jsonl`, appended in one write() per tenant and batch.

    `publish` only buffers the line; one background task at a time writes every buffered
    line (a burst of predictions costs one executor hop and one write per tenant, not one of
    each per event). At most MAX_WRITES_IN_FLIGHT lines wait: past that, a line is dropped
    and counted, as NATS publishes are."""

    def __init__(
        self, events_dir: str | os.PathLike[str], max_bytes: int, executor: Executor | None
    ) -> None:
        self.directory = Path(events_dir) / LIVE_DIR
        self.max_bytes = max_bytes
        self.executor = executor
        self._pending: dict[str, list[bytes]] = {}
        self._waiting = 0  # lines in _pending
        self._background = _Background()
        self._flushing = False
        self._directory_made = False

    def publish(self, tenant: str, event_type: str, data: dict[str, Any]) -> None:
        if self._waiting >= MAX_WRITES_IN_FLIGHT:
            LIVE_DROPPED.inc()
            return
        try:
            line = live_event(tenant, event_type, data) + b"\n"
        except (TypeError, ValueError) as exc:
            log.debug("live event not sent: %s", exc)
            return
        self._pending.setdefault(tenant, []).append(line)
        self._waiting += 1
        if not self._flushing:
            self._flushing = True
            self._background.spawn(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending, self._waiting = self._pending, {}, 0
                try:
                    await run_in(self.executor, self._write_batch, batch)
                except OSError as exc:
                    log.debug("live events not written: %s", exc)
        finally:
            self._flushing = False

    def _write_batch(self, batch: dict[str, list[bytes]]) -> None:
        for tenant, lines in batch.items():
            self._append(tenant, b"".join(lines))

    def _append(self, tenant: str, lines: bytes) -> None:
        if not self._directory_made:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._directory_made = True
        path = self.directory / f"{tenant}.jsonl"
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size > self.max_bytes:
                os.replace(path, path.with_suffix(".jsonl.1"))  # followers see a new inode
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the directory went away (a cleaned data dir)
            self._directory_made = False
            raise
        try:
            os.write(fd, lines)  # one write with O_APPEND: lines never interleave
        finally:
            os.close(fd)

    async def close(self) -> None:
        await self._background.drain()


class NatsLive:
    """Core NATS publish on `ml.live.<tenant>.<type>`; connects in the background."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self._nc: NATS | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._closed = False
        self._background = _Background()

    def publish(self, tenant: str, event_type: str, data: dict[str, Any]) -> None:
        nc = self._nc
        if nc is None or not nc.is_connected:
            self._connect_soon()
            return  # a sample lost while NATS is away: the next one will do
        try:
            payload = live_event(tenant, event_type, data)
        except (TypeError, ValueError) as exc:
            log.debug("live event not sent: %s", exc)
            return
        # publish() only buffers (pending_size=0 makes it fail at once when disconnected)
        self._background.spawn(self._publish(nc, live_subject(tenant, event_type), payload))

    @staticmethod
    async def _publish(nc: NATS, subject: str, payload: bytes) -> None:
        try:
            await nc.publish(subject, payload)
        except Exception as exc:
            log.debug("live event not sent: %r", exc)

    def _connect_soon(self) -> None:
        if self._closed or self._nc is not None or self._connecting is not None:
            return
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        from shared.events.jetstream import connect_nats

        try:
            self._nc = await connect_nats(self.nats_url, name="online-ml-live")
        except Exception as exc:
            log.debug("live events: cannot reach NATS: %r", exc)
        finally:
            self._connecting = None

    async def close(self) -> None:
        self._closed = True
        await self._background.drain()
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), timeout=2.0)


def open_live(
    nats_url: str | None, events_dir: str, max_bytes: int, executor: Executor | None
) -> LivePublisher:
    if nats_url:
        return NatsLive(nats_url)
    return LocalLive(events_dir, max_bytes, executor)
