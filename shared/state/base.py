"""The state store interface: per model, a snapshot plus an append-only learn log (architecture.md §4).

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


@dataclass(frozen=True)
class OutcomeBatch:
    """The model's folded monitoring state and the outcomes logged after it (monitoring).

    An outcome is `[seq, [x, y], {prediction…}]`: one prequential prediction and its sample,
    logged by `append_outcome` in the same atomic step as the sample, so outcomes are in seq
    order. `state` (None before the first fold) is replaced only through `save_outcomes`,
    compare-and-set on `generation`.
    """

    generation: int
    state: bytes | None
    outcomes: list[str]


@dataclass
class MonitorWrite:
    """One flush of buffered monitoring: audit rows per tenant and per-model stats."""

    audit: dict[str, list[str]] = field(default_factory=dict)  # tenant → rows, oldest first
    # (tenant, model) → field → value, kept as the maximum (timestamps)
    latest: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    # (tenant, model) → field → increment (counts, latency histogram buckets)
    counts: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)


class StateUnavailable(Exception):
    """The state store cannot be reached; callers answer 503 with Retry-After."""


class StateStore(Protocol):
    """Hot online state. Implementations: MemoryStateStore, RedisStateStore."""

    async def create_model(
        self,
        tenant: str,
        name: str,
        uid: str,
        record: str,
        blob: bytes,
        *,
        incarnation: int | None = None,
        seq: int = 0,
    ) -> bool:
        """Write the snapshot at `seq` (0: a new model) and the model record; False if the
        name is taken. With `incarnation`, also False if the model has a newer incarnation or
        this one was deleted (its tombstone), so a deleted model is never installed again."""

    async def delete_model(self, tenant: str, name: str, *, incarnation: int = 0) -> bool:
        """Delete the model's state and leave a tombstone at (at least) `incarnation`."""

    async def incarnation(self, tenant: str, name: str) -> tuple[int, bool]:
        """(newest incarnation, deleted) of the name; (0, False) if the store knows none."""

    async def epoch(self, candidate: str) -> str:
        """The store's epoch: set to `candidate` if it has none (first use, or empty again)."""

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

    async def rate_limit(self, tenant: str, per_minute: int) -> int:
        """Take one request from the tenant's shared budget (shared/ratelimit.py, GCRA):
        0 if allowed, else the microseconds to wait. Atomic across instances."""

    async def try_lock(self, key: str, ttl_ms: int, owner: str = "1") -> bool: ...

    async def release_lock(self, key: str, owner: str | None = None) -> None:
        """Release the lock; with `owner`, only if that owner still holds it."""

    # ----- monitoring (shared/monitoring): outcomes, per-model stats, prediction audit ------

    async def append_outcome(
        self,
        tenant: str,
        name: str,
        uid: str,
        after: int,
        sample: str,
        outcome: str,
        *,
        idempotency: Idempotency | None,
        response: str = "",
        ttl_seconds: int = 86400,
    ) -> tuple[AppendResult, int]:
        """`append([sample], expected=True, ...)` that, when it appends, also logs `outcome`
        (the prediction made for this sample) as `[seq, sample, outcome]` in the same atomic
        step. Returns the append's result and how many outcomes wait to be folded."""

    async def read_outcomes(self, tenant: str, name: str, limit: int) -> OutcomeBatch:
        """The folded state and up to `limit` outcomes after it, read atomically."""

    async def save_outcomes(
        self, tenant: str, name: str, generation: int, consumed: int, state: bytes
    ) -> bool:
        """Replace the folded state and drop the first `consumed` outcomes, if the state is
        still at `generation` and the model exists; False if another folder won."""

    async def write_monitoring(self, batch: MonitorWrite, audit_max_rows: int) -> None:
        """Apply one flush: push audit rows (each tenant keeps its newest `audit_max_rows`),
        raise per-model maxima and add per-model counts (models that no longer exist are
        skipped). One round trip."""

    async def read_monitor(self, tenant: str, name: str) -> dict[str, float]:
        """The model's monitoring fields (see MonitorWrite)."""

    async def read_audit(self, tenant: str, start: int, stop: int) -> list[str]:
        """Audit rows newest first, positions start..stop inclusive (as LRANGE)."""

    async def clear_audit(self, tenant: str) -> int:
        """Delete the tenant's audit rows; return how many there were."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
