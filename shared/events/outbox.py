"""The outbox: events waiting for NATS, kept in the state store named by STATE_URL.

Two backends side by side behind one tiny interface (append / pending / ack / backlog):
`memory://` keeps them in this process; `redis://` and `redis+cluster://` keep them in
OUTBOX_PARTITIONS Streams `ml:outbox:{<n>}`, so an event survives the instance that wrote it
and any instance's relay can send it. A tenant's events always go to the same partition
(CRC32 of the tenant), so they stay in order; the hash tags spread the partitions over a
Cluster's shards instead of putting every instance's events on one. The single Stream
`ml:outbox` of versions before the partitions is read as one more partition, so events
pending there at the upgrade (or written by old instances during a rolling one) are relayed.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from shared.events.cloudevent import Envelope
from shared.state.base import StateUnavailable
from shared.state.redis_client import open_redis
from shared.state.redis_connection import UNAVAILABLE

OUTBOX_PARTITIONS = 16
OUTBOX_KEYS = tuple(f"ml:outbox:{{{n}}}" for n in range(OUTBOX_PARTITIONS))
LEGACY_OUTBOX_KEY = "ml:outbox"  # before the partitions: read and acked, never appended to
LEGACY_PARTITION = OUTBOX_PARTITIONS  # its partition number in a pending event's key
_READ_KEYS = (*OUTBOX_KEYS, LEGACY_OUTBOX_KEY)
T = TypeVar("T")


def outbox_partition(tenant: str) -> int:
    return zlib.crc32(tenant.encode()) % OUTBOX_PARTITIONS


def _stream_order(key: str) -> tuple[int, int]:
    ms, _, seq = key.partition("-")
    return int(ms), int(seq)


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
    """The Streams `ml:outbox:{<n>}` (XADD; XRANGE to read; XDEL after the PubAck). A pending
    event's key is `<partition>/<stream id>`; partition OUTBOX_PARTITIONS is the old
    `ml:outbox`, read on every pass (an XRANGE of an absent key in the same pipeline costs
    nothing, and old instances may still write to it while a rolling upgrade runs)."""

    def __init__(self, url: str, timeout_seconds: float = 2.0) -> None:
        # No client retries: an XADD resent after a lost reply would store the event twice
        # (harmless, JetStream de-duplicates by id, but pointless).
        self._redis = open_redis(url, timeout_seconds)

    async def append(self, envelope: Envelope) -> None:
        fields = {
            "id": envelope.id,
            "tenant": envelope.tenant,
            "subject": envelope.subject,
            "event": envelope.payload,
        }
        key = OUTBOX_KEYS[outbox_partition(envelope.tenant)]
        await self._call(self._redis.xadd(key, fields))  # type: ignore[arg-type]

    async def pending(self, limit: int) -> list[Pending]:
        """The oldest `limit` over every partition (each read in its own order, merged by
        stream id: a tenant's events keep theirs)."""
        parts = await self._each(lambda pipe, key: pipe.xrange(key, "-", "+", count=limit))
        rows = [
            (_stream_order(key.decode()), f"{n}/{key.decode()}", fields)
            for n, part in enumerate(parts)
            for key, fields in part
        ]
        rows.sort(key=lambda row: row[0])
        return [
            Pending(
                key,
                Envelope(
                    id=f[b"id"].decode(),
                    tenant=f[b"tenant"].decode(),
                    subject=f[b"subject"].decode(),
                    payload=f[b"event"],
                ),
            )
            for _, key, f in rows[:limit]
        ]

    async def ack(self, keys: list[str]) -> None:
        by_partition: dict[int, list[str]] = {}
        for key in keys:
            partition, _, entry = key.partition("/")
            by_partition.setdefault(int(partition), []).append(entry)
        if not by_partition:
            return

        async def delete() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for partition, entries in by_partition.items():
                pipe.xdel(_READ_KEYS[partition], *entries)
            return await pipe.execute()  # type: ignore[no-any-return]

        await self._call(delete())

    async def backlog(self) -> int:
        return sum(int(n) for n in await self._each(lambda pipe, key: pipe.xlen(key)))

    async def close(self) -> None:
        await self._redis.aclose()

    async def _each(self, command: Callable[[Any, str], Any]) -> list[Any]:
        """One command per partition and the old `ml:outbox`, pipelined (a round trip per
        node)."""

        async def run() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for key in _READ_KEYS:
                command(pipe, key)
            return await pipe.execute()  # type: ignore[no-any-return]

        return await self._call(run())

    @staticmethod
    async def _call(operation: Awaitable[T]) -> T:
        try:
            return await operation
        except UNAVAILABLE as exc:
            raise StateUnavailable(f"state store unreachable: {exc.__class__.__name__}") from exc


def open_outbox(state_url: str, timeout_seconds: float = 2.0) -> Outbox:
    if state_url.startswith("memory://"):
        return MemoryOutbox()
    return RedisOutbox(state_url, timeout_seconds)
