"""What the state store's operations take and return: per model, a snapshot plus an
append-only learn log (architecture.md §4). The operations themselves are the Protocols of
shared/state/interfaces.py.

Every operation on one model touches only that model's keys, so on Redis each is one atomic
Lua call on one hash slot (shared/state/lua.py). The two backends (`memory://`, `redis://`)
sit side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal


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


@dataclass(frozen=True)
class Ride:
    """Buffered monitoring handed over to ride in a request's round trip (MonitorRecords
    .ride_along); `landed` is called once, with None when written, else the error."""

    batch: MonitorWrite
    audit_max_rows: int
    landed: Callable[[BaseException | None], None]


class StateUnavailable(Exception):
    """The state store cannot be reached; callers answer 503 with Retry-After."""


class ReplicasUnconfirmed(StateUnavailable):
    """An append reached the primary but fewer than STATE_MIN_REPLICAS replicas confirmed it
    within STATE_REPLICA_TIMEOUT_MS: not acknowledged (503). It may still be in the log; a
    retry with the same Idempotency-Key finds it there and does not append it again."""
