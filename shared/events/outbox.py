"""The outbox: events waiting for NATS, kept in the state store named by STATE_URL.

Two backends side by side behind one tiny interface (append / pending / ack / backlog):
`memory://` keeps them in this process; `redis://` keeps them in the Stream `ml:outbox`, so an
event survives the instance that wrote it and any instance's relay can send it.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from redis import asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from shared.events.cloudevent import Envelope
from shared.state.base import StateUnavailable

OUTBOX_KEY = "ml:outbox"
T = TypeVar("T")


@dataclass(frozen=True)
class Pending:
    """An event in the outbox; `key` is its outbox entry id (for ack)."""

    key: str
    envelope: Envelope


class Outbox(Protocol):
    """Events in append order until acked. Implementations: MemoryOutbox, RedisOutbox."""

    async def append(self, envelope: Envelope) -> None: ...

    async def pending(self, limit: int) -> list[Pending]:
        """The oldest `limit` events not yet acked."""

    async def ack(self, keys: list[str]) -> None:
        """Forget relayed events (unknown keys are ignored, so acking twice is harmless)."""

    async def backlog(self) -> int: ...

    async def close(self) -> None: ...


class MemoryOutbox:
    """`memory://`: one process, not durable (like the memory state store)."""

    def __init__(self) -> None:
        # An insertion-ordered dict rather than a deque: acks remove by key in O(1).
        self._entries: dict[str, Envelope] = {}
        self._keys = itertools.count(1)

    async def append(self, envelope: Envelope) -> None:
        self._entries[str(next(self._keys))] = envelope

    async def pending(self, limit: int) -> list[Pending]:
        items = itertools.islice(self._entries.items(), limit)
        return [Pending(key, envelope) for key, envelope in items]

    async def ack(self, keys: list[str]) -> None:
        for key in keys:
            self._entries.pop(key, None)

    async def backlog(self) -> int:
        return len(self._entries)

    async def close(self) -> None:
        pass


class RedisOutbox:
    """`redis://`: the Stream `ml:outbox` (XADD; XRANGE to read; XDEL after the PubAck)."""

    def __init__(self, url: str, timeout_seconds: float = 2.0) -> None:
        # No client retries: an XADD resent after a lost reply would store the event twice
        # (harmless, JetStream de-duplicates by id, but pointless).
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )

    async def append(self, envelope: Envelope) -> None:
        fields = {
            "id": envelope.id,
            "tenant": envelope.tenant,
            "subject": envelope.subject,
            "event": envelope.payload,
        }
        await self._call(self._redis.xadd(OUTBOX_KEY, fields))  # type: ignore[arg-type]

    async def pending(self, limit: int) -> list[Pending]:
        rows = await self._call(self._redis.xrange(OUTBOX_KEY, "-", "+", count=limit))
        return [
            Pending(
                key.decode(),
                Envelope(
                    id=f[b"id"].decode(),
                    tenant=f[b"tenant"].decode(),
                    subject=f[b"subject"].decode(),
                    payload=f[b"event"],
                ),
            )
            for key, f in rows
        ]

    async def ack(self, keys: list[str]) -> None:
        if keys:
            await self._call(self._redis.xdel(OUTBOX_KEY, *keys))

    async def backlog(self) -> int:
        return int(await self._call(self._redis.xlen(OUTBOX_KEY)))

    async def close(self) -> None:
        await self._redis.aclose()

    @staticmethod
    async def _call(operation: Awaitable[T]) -> T:
        try:
            return await operation
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StateUnavailable(f"state store unreachable: {exc.__class__.__name__}") from exc


def open_outbox(state_url: str, timeout_seconds: float = 2.0) -> Outbox:
    if state_url.startswith("memory://"):
        return MemoryOutbox()
    return RedisOutbox(state_url, timeout_seconds)
