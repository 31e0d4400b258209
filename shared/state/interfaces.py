"""The state store's interfaces, narrowed by consumer (architecture.md §4).

A backend (`MemoryStateStore`, `RedisStateStore`) implements `StateStore`, the union of the
narrow Protocols below, and the composition root (shared/runtime.py) builds one. Every
consumer is typed against, and is given, only the Protocol(s) it calls: the edge's rate limit
never sees the learn log, jobs see documents only, the fold only outcomes. The leaves split
StateStore's methods exactly (tests/shared/state/test_interfaces.py); the composites at the
end are the leaves a consumer with several needs takes as one constructor parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from shared.state.base import (
    AppendResult,
    Idempotency,
    LogRead,
    MonitorWrite,
    OutcomeBatch,
    Ride,
    Snapshot,
)

# ----- the online model: snapshot + learn log (shared/online.py) ------------------------


@runtime_checkable
class ModelLog(Protocol):
    """Per model a snapshot and an append-only learn log, each operation atomic."""

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


@runtime_checkable
class ModelRecords(Protocol):
    """Which models exist: their records and incarnations (read only)."""

    async def get_record(self, tenant: str, name: str) -> str | None: ...

    async def list_records(self, tenant: str) -> list[str]: ...

    async def incarnation(self, tenant: str, name: str) -> tuple[int, bool]:
        """(newest incarnation, deleted) of the name; (0, False) if the store knows none."""


@runtime_checkable
class StoreEpoch(Protocol):
    """The marker that tells a store that lost its models from one that never had them
    (shared/state_loss.py)."""

    async def epoch(self, tenant: str, name: str, candidate: str) -> str:
        """The epoch of the store's part that holds this model: set to `candidate` if it has
        none (first use, or empty again). On Redis it is kept in the model's own hash slot,
        so on a Cluster the wipe of one shard is seen by exactly the models on it."""

    async def epoch_before_upgrade(self, tenant: str, name: str) -> str | None:
        """When this model has no epoch of its own yet: the store-wide epoch of versions
        before the per-model one (Redis `ml:epoch`, only ever read), None if there is none."""


# ----- monitoring (shared/monitoring) ------------------------------------------------------


@runtime_checkable
class OutcomeLog(Protocol):
    """The learn log's append that also logs the prediction made for the sample."""

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

    async def append_outcomes(
        self, tenant: str, name: str, uid: str, after: int, samples: list[str], outcomes: list[str]
    ) -> tuple[AppendResult, int]:
        """Group commit: `append(samples, expected=True)` logging `outcomes[i]` for
        `samples[i]`, all in one atomic step (no Idempotency-Key)."""


@runtime_checkable
class OutcomeFolds(Protocol):
    """The folded monitoring state and the outcomes waiting for it (compare-and-set)."""

    async def read_outcomes(self, tenant: str, name: str, limit: int) -> OutcomeBatch:
        """The folded state and up to `limit` outcomes after it, read atomically."""

    async def save_outcomes(
        self, tenant: str, name: str, generation: int, consumed: int, state: bytes
    ) -> bool:
        """Replace the folded state and drop the first `consumed` outcomes, if the state is
        still at `generation` and the model exists; False if another folder won."""


@runtime_checkable
class MonitorRecords(Protocol):
    """Per-model monitoring fields and the per-tenant prediction audit."""

    async def write_monitoring(self, batch: MonitorWrite, audit_max_rows: int) -> None:
        """Apply one flush: push audit rows (each tenant keeps its newest `audit_max_rows`),
        raise per-model maxima and add per-model counts (models that no longer exist are
        skipped). One round trip."""

    def ride_along(self, take: Callable[[], Ride | None]) -> Callable[[], None]:
        """Ask `take` before each of the store's request calls (a keep, an append, a log
        read) and write what it hands over in that call's round trip (shared/state/riders.py);
        returns what stops asking. A store without round trips, or a Cluster, never asks."""

    async def read_monitor(self, tenant: str, name: str) -> dict[str, float]:
        """The model's monitoring fields (see MonitorWrite)."""

    async def read_audit(self, tenant: str, start: int, stop: int) -> list[str]:
        """Audit rows newest first, positions start..stop inclusive (as LRANGE)."""

    async def clear_audit(self, tenant: str) -> int:
        """Delete the tenant's audit rows; return how many there were."""


# ----- small shared state -----------------------------------------------------------------


@runtime_checkable
class Documents(Protocol):
    async def put_doc(self, kind: str, tenant: str, key: str, value: str, ttl_seconds: int) -> None:
        """A small JSON document (a job's status, say), expiring after ttl_seconds."""

    async def get_doc(self, kind: str, tenant: str, key: str) -> str | None: ...


@runtime_checkable
class Counters(Protocol):
    async def add_counters(
        self, kind: str, tenant: str, key: str, deltas: dict[str, float]
    ) -> None:
        """Atomically add to named float counters (shared metrics)."""

    async def get_counters(self, kind: str, tenant: str, key: str) -> dict[str, float]: ...

    async def reset_counters(self, kind: str, tenant: str, key: str) -> None: ...


@runtime_checkable
class Locks(Protocol):
    async def try_lock(self, key: str, ttl_ms: int, owner: str = "1") -> bool: ...

    async def release_lock(self, key: str, owner: str | None = None) -> None:
        """Release the lock; with `owner`, only if that owner still holds it."""


@runtime_checkable
class RateLimits(Protocol):
    async def rate_limit(self, tenant: str, per_minute: int) -> int:
        """Take one request from the tenant's shared budget (shared/ratelimit.py, GCRA):
        0 if allowed, else the microseconds to wait. Atomic across instances."""


@runtime_checkable
class Health(Protocol):
    async def ping(self) -> None: ...

    async def close(self) -> None: ...


# The leaves above, which together are exactly StateStore.
LEAVES: tuple[type, ...] = (
    ModelLog,
    ModelRecords,
    StoreEpoch,
    OutcomeLog,
    OutcomeFolds,
    MonitorRecords,
    Documents,
    Counters,
    Locks,
    RateLimits,
    Health,
)


@runtime_checkable
class StateStore(
    ModelLog,
    ModelRecords,
    StoreEpoch,
    OutcomeLog,
    OutcomeFolds,
    MonitorRecords,
    Documents,
    Counters,
    Locks,
    RateLimits,
    Health,
    Protocol,
):
    """Hot online state, all of it: what a backend implements (MemoryStateStore,
    RedisStateStore) and what the composition root builds. No consumer takes it whole."""


# ----- what a consumer with several needs takes ----------------------------------------------


@runtime_checkable
class OnlineState(ModelLog, ModelRecords, OutcomeLog, Locks, Protocol):
    """The online models (shared/online.py): the log, records, outcomes with predict_learn's
    append, and the compaction lock."""


@runtime_checkable
class LifecycleState(ModelRecords, Locks, StoreEpoch, Protocol):
    """The lifecycle (shared/lifecycle.py): incarnations and records, the model's lifecycle
    lock (shared/model_lock.py) and the epoch of loss detection (shared/state_loss.py)."""


@runtime_checkable
class ShadowState(ModelRecords, Counters, Locks, Protocol):
    """The challenger (shared/challenger.py): is there a shadow, its compare counters, the
    promotion lock."""


@runtime_checkable
class MonitorState(MonitorRecords, OutcomeFolds, Locks, Protocol):
    """The monitor (shared/monitoring/monitor.py) and its folder: fields, audit, the fold and
    the fold lock."""


@runtime_checkable
class DegradedState(Documents, Locks, Protocol):
    """Degraded models (shared/degraded.py): the flag document and its once-only lock."""


COMPOSITES: tuple[type, ...] = (
    OnlineState,
    LifecycleState,
    ShadowState,
    MonitorState,
    DegradedState,
)
