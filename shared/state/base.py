"""The state store interface: per model, a snapshot plus an append-only learn log (DESIGN §4).

Every operation on one model touches only that model's keys, so on Redis each is one atomic
Lua call on one hash slot. The two backends (`memory://`, `redis://`) sit side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True)
class LogEntry:
    seq: int
    data: str  # JSON `[x, y]`, exactly as it will be replayed everywhere


@dataclass(frozen=True)
class Snapshot:
    """What a cold instance needs: the definition, the newest snapshot and the tail after it."""

    uid: str
    record: str
    seq: int
    blob: bytes
    tail: list[LogEntry]


AppendStatus = Literal["appended", "behind", "stale", "missing", "replay", "conflict"]


@dataclass(frozen=True)
class Idempotency:
    key: str
    body_hash: str


@dataclass(frozen=True)
class AppendResult:
    """Outcome of one atomic append.

    appended: the samples got seqs first..last; `entries` are the ones before them that the
              caller had not applied yet (empty when it was current).
    behind:   nothing appended (the caller asked for `expected` and is behind); `entries` are
              what it must apply first.
    stale:    the caller's state is older than the log keeps (or the model was recreated):
              reload from the snapshot.
    missing:  the model does not exist.
    replay:   this idempotency key was already applied with the same body: `first`, `last`
              and `response` are what the first call stored.
    conflict: this idempotency key was used with another body.
    """

    status: AppendStatus
    first: int = 0
    last: int = 0
    entries: list[LogEntry] = field(default_factory=list)
    response: str = ""


@dataclass(frozen=True)
class LogRead:
    status: Literal["ok", "stale", "missing"]
    entries: list[LogEntry] = field(default_factory=list)


class StateUnavailable(Exception):
    """The state store cannot be reached; callers answer 503 with Retry-After."""


class StateStore(Protocol):
    """Hot online state. Implementations: MemoryStateStore, RedisStateStore."""

    async def create_model(
        self, tenant: str, name: str, uid: str, record: str, blob: bytes
    ) -> bool:
        """Write snapshot 0 and the model record; False if the name is taken."""

    async def delete_model(self, tenant: str, name: str) -> bool: ...

    async def get_record(self, tenant: str, name: str) -> str | None: ...

    async def list_records(self, tenant: str) -> list[str]: ...

    async def load(self, tenant: str, name: str) -> Snapshot | None:
        """Newest snapshot and every log entry after it, read atomically."""

    async def read_log(self, tenant: str, name: str, uid: str, after: int) -> LogRead:
        """Entries with seq > after (one round trip; usually none)."""

    async def append(
        self,
        tenant: str,
        name: str,
        uid: str,
        after: int,
        samples: list[str],
        *,
        expected: bool,
        idempotency: Idempotency | None,
        response: str = "",
        ttl_seconds: int = 86400,
    ) -> AppendResult:
        """Atomically append samples as the next seqs.

        With `expected`, append only if the log ends at `after` (the caller is current), so a
        response computed from the caller's state can be stored with the append.
        """

    async def log_length(self, tenant: str, name: str) -> int:
        """The last seq appended (= samples learned since creation)."""

    async def save_snapshot(self, tenant: str, name: str, uid: str, seq: int, blob: bytes) -> bool:
        """Store a newer snapshot at `seq` and trim the log up to it."""

    async def replace_model(
        self, tenant: str, name: str, uid: str, record: str, blob: bytes
    ) -> int | None:
        """Start a new generation (activation): `blob` becomes the snapshot at the current seq,
        the log restarts empty after it, and the new uid makes every warm instance reload.
        Returns that seq, or None if the model does not exist."""

    async def put_doc(self, kind: str, tenant: str, key: str, value: str, ttl_seconds: int) -> None:
        """A small JSON document (a job's status, say), expiring after ttl_seconds."""

    async def get_doc(self, kind: str, tenant: str, key: str) -> str | None: ...

    async def add_counters(
        self, kind: str, tenant: str, key: str, deltas: dict[str, float]
    ) -> None:
        """Atomically add to named float counters (shared metrics)."""

    async def get_counters(self, kind: str, tenant: str, key: str) -> dict[str, float]: ...

    async def reset_counters(self, kind: str, tenant: str, key: str) -> None: ...

    async def try_lock(self, key: str, ttl_ms: int) -> bool: ...

    async def release_lock(self, key: str) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
