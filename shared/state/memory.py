"""`memory://`: the state store inside one process (make run, tests). Not shared, not durable.

Methods never await while mutating, so each is atomic on the event loop, like a Lua call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.ratelimit import gcra_params, gcra_step
from shared.state.base import (
    AppendResult,
    Idempotency,
    LogEntry,
    LogRead,
    MonitorWrite,
    OutcomeBatch,
    Ride,
    Snapshot,
)

_RATE_PRUNE_AT = 10_000  # tenants with a bucket before expired buckets are swept


@dataclass
class _ModelState:
    uid: str
    record: str
    blob: bytes
    seq: int = 0
    snap_seq: int = 0
    trimmed: int = 0  # entries with seq <= trimmed are gone from `log`
    log: list[LogEntry] = field(default_factory=list)
    idempotency: dict[str, tuple[str, int, int, str, float]] = field(default_factory=dict)

    def after(self, seq: int) -> list[LogEntry]:
        return self.log[seq - self.trimmed :]


@dataclass
class _Monitoring:
    """One model's monitoring: folded state, outcomes after it, and stats fields."""

    generation: int = 0
    state: bytes | None = None
    outcomes: list[str] = field(default_factory=list)
    fields: dict[str, float] = field(default_factory=dict)


class MemoryStateStore:
    def __init__(self) -> None:
        self._models: dict[tuple[str, str], _ModelState] = {}
        self._locks: dict[str, tuple[str, float]] = {}  # key → (owner, expiry)
        self._docs: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._counters: dict[tuple[str, str, str], dict[str, float]] = {}
        self._monitoring: dict[tuple[str, str], _Monitoring] = {}
        self._audit: dict[str, list[str]] = {}  # tenant → rows, oldest first
        self._rate: dict[str, int] = {}  # tenant → GCRA theoretical arrival time (µs)
        # (tenant, model) → (incarnation, deleted): outlives the model (the tombstone)
        self._incarnations: dict[tuple[str, str], tuple[int, bool]] = {}
        self._epoch: str | None = None  # a new process is a new (empty) store

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
        if (tenant, name) in self._models:
            return False
        if incarnation is not None:
            gen, deleted = self._incarnations.get((tenant, name), (0, False))
            if gen > incarnation or (gen == incarnation and deleted):
                return False
            self._incarnations[tenant, name] = (incarnation, False)
        self._models[tenant, name] = _ModelState(
            uid=uid, record=record, blob=blob, seq=seq, snap_seq=seq, trimmed=seq
        )
        return True

    async def delete_model(self, tenant: str, name: str, *, incarnation: int = 0) -> bool:
        self._monitoring.pop((tenant, name), None)
        gen, _ = self._incarnations.get((tenant, name), (0, False))
        self._incarnations[tenant, name] = (max(gen, incarnation), True)  # the tombstone
        return self._models.pop((tenant, name), None) is not None

    async def incarnation(self, tenant: str, name: str) -> tuple[int, bool]:
        return self._incarnations.get((tenant, name), (0, False))

    async def epoch(self, tenant: str, name: str, candidate: str) -> str:
        if self._epoch is None:
            self._epoch = candidate
        return self._epoch

    async def epoch_before_upgrade(self, tenant: str, name: str) -> str | None:
        return None  # a process has no earlier version's store

    async def get_record(self, tenant: str, name: str) -> str | None:
        state = self._models.get((tenant, name))
        return state.record if state else None

    async def list_records(self, tenant: str) -> list[str]:
        return [s.record for (t, _), s in sorted(self._models.items()) if t == tenant]

    async def load(self, tenant: str, name: str) -> Snapshot | None:
        state = self._models.get((tenant, name))
        if state is None:
            return None
        return Snapshot(
            state.uid, state.record, state.snap_seq, state.blob, state.after(state.snap_seq)
        )

    async def read_log(self, tenant: str, name: str, uid: str, after: int) -> LogRead:
        state = self._models.get((tenant, name))
        if state is None:
            return LogRead("missing")
        if state.uid != uid or after < state.trimmed:
            return LogRead("stale")
        return LogRead("ok", state.after(after))

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
        state = self._models.get((tenant, name))
        if state is None:
            return AppendResult("missing")
        if state.uid != uid or after < state.trimmed:
            return AppendResult("stale")
        now = time.monotonic()
        if idempotency is not None:
            seen = state.idempotency.get(idempotency.key)
            if seen is not None and seen[4] > now:
                body_hash, first, last, stored, _ = seen
                if body_hash != idempotency.body_hash:
                    return AppendResult("conflict")
                return AppendResult("replay", first, last, response=stored)
        if expected and state.seq != after:
            return AppendResult("behind", entries=state.after(after))
        missed = state.after(after)
        first = state.seq + 1
        for data in samples:
            state.seq += 1
            state.log.append(LogEntry(state.seq, data))
        if idempotency is not None:
            state.idempotency[idempotency.key] = (
                idempotency.body_hash,
                first,
                state.seq,
                response,
                now + ttl_seconds,
            )
        return AppendResult("appended", first, state.seq, entries=missed)

    async def log_length(self, tenant: str, name: str) -> int:
        state = self._models.get((tenant, name))
        return state.seq if state else 0

    async def save_snapshot(self, tenant: str, name: str, uid: str, seq: int, blob: bytes) -> bool:
        state = self._models.get((tenant, name))
        if state is None or state.uid != uid or seq <= state.snap_seq or seq > state.seq:
            return False
        state.blob, state.snap_seq = blob, seq
        state.log = state.after(seq)
        state.trimmed = seq
        return True

    async def replace_model(
        self, tenant: str, name: str, uid: str, record: str, blob: bytes
    ) -> int | None:
        state = self._models.get((tenant, name))
        if state is None:
            return None
        seq = state.seq
        self._models[tenant, name] = _ModelState(
            uid=uid, record=record, blob=blob, seq=seq, snap_seq=seq, trimmed=seq
        )
        return seq

    async def put_doc(self, kind: str, tenant: str, key: str, value: str, ttl_seconds: int) -> None:
        self._docs[kind, tenant, key] = (value, time.monotonic() + ttl_seconds)

    async def get_doc(self, kind: str, tenant: str, key: str) -> str | None:
        value, expires = self._docs.get((kind, tenant, key), (None, 0.0))
        return value if expires > time.monotonic() else None

    async def add_counters(
        self, kind: str, tenant: str, key: str, deltas: dict[str, float]
    ) -> None:
        counters = self._counters.setdefault((kind, tenant, key), {})
        for name, delta in deltas.items():
            counters[name] = counters.get(name, 0.0) + delta

    async def get_counters(self, kind: str, tenant: str, key: str) -> dict[str, float]:
        return dict(self._counters.get((kind, tenant, key), {}))

    async def reset_counters(self, kind: str, tenant: str, key: str) -> None:
        self._counters.pop((kind, tenant, key), None)

    async def rate_limit(self, tenant: str, per_minute: int) -> int:
        now = time.monotonic_ns() // 1000
        if len(self._rate) >= _RATE_PRUNE_AT:  # an expired bucket is the same as none
            self._rate = {t: tat for t, tat in self._rate.items() if tat > now}
        tat, wait = gcra_step(self._rate.get(tenant, 0), now, *gcra_params(per_minute))
        self._rate[tenant] = tat
        return wait

    async def try_lock(self, key: str, ttl_ms: int, owner: str = "1") -> bool:
        now = time.monotonic()
        if self._locks.get(key, ("", 0.0))[1] > now:
            return False
        self._locks[key] = (owner, now + ttl_ms / 1000)
        return True

    async def release_lock(self, key: str, owner: str | None = None) -> None:
        if owner is None or self._locks.get(key, ("", 0.0))[0] == owner:
            self._locks.pop(key, None)

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
        # append() never awaits anything pending, so this stays one atomic step
        result = await self.append(
            tenant,
            name,
            uid,
            after,
            [sample],
            expected=True,
            idempotency=idempotency,
            response=response,
            ttl_seconds=ttl_seconds,
        )
        if result.status != "appended":
            return result, 0
        monitoring = self._monitoring_of((tenant, name))
        monitoring.outcomes.append(f"[{result.last},{sample},{outcome}]")
        return result, len(monitoring.outcomes)

    def _monitoring_of(self, key: tuple[str, str]) -> _Monitoring:
        monitoring = self._monitoring.get(key)
        if monitoring is None:  # not setdefault: it would build one every call
            monitoring = self._monitoring[key] = _Monitoring()
        return monitoring

    async def append_outcomes(
        self, tenant: str, name: str, uid: str, after: int, samples: list[str], outcomes: list[str]
    ) -> tuple[AppendResult, int]:
        # append() never awaits anything pending, so this stays one atomic step
        result = await self.append(
            tenant, name, uid, after, samples, expected=True, idempotency=None
        )
        if result.status != "appended":
            return result, 0
        monitoring = self._monitoring_of((tenant, name))
        for seq, sample, outcome in zip(
            range(result.first, result.last + 1), samples, outcomes, strict=True
        ):
            monitoring.outcomes.append(f"[{seq},{sample},{outcome}]")
        return result, len(monitoring.outcomes)

    async def read_outcomes(self, tenant: str, name: str, limit: int) -> OutcomeBatch:
        monitoring = self._monitoring.get((tenant, name)) or _Monitoring()
        return OutcomeBatch(monitoring.generation, monitoring.state, monitoring.outcomes[:limit])

    async def save_outcomes(
        self, tenant: str, name: str, generation: int, consumed: int, state: bytes
    ) -> bool:
        monitoring = self._monitoring.get((tenant, name))
        if (tenant, name) not in self._models:
            return False
        if monitoring is None:
            monitoring = self._monitoring[tenant, name] = _Monitoring()
        if monitoring.generation != generation:
            return False
        monitoring.generation += 1
        monitoring.state = state
        del monitoring.outcomes[:consumed]
        return True

    def ride_along(self, take: Callable[[], Ride | None]) -> Callable[[], None]:
        return lambda: None  # no round trips to share: the monitor's timer writes it all

    async def write_monitoring(self, batch: MonitorWrite, audit_max_rows: int) -> None:
        for tenant, rows in batch.audit.items():
            kept = self._audit.setdefault(tenant, [])
            kept.extend(rows)
            del kept[:-audit_max_rows]
        for key in batch.latest.keys() | batch.counts.keys():
            if key not in self._models:
                continue
            fields = self._monitoring_of(key).fields
            for name, value in batch.latest.get(key, {}).items():
                fields[name] = max(fields.get(name, value), value)
            for name, delta in batch.counts.get(key, {}).items():
                fields[name] = fields.get(name, 0.0) + delta

    async def read_monitor(self, tenant: str, name: str) -> dict[str, float]:
        monitoring = self._monitoring.get((tenant, name))
        return dict(monitoring.fields) if monitoring else {}

    async def read_audit(self, tenant: str, start: int, stop: int) -> list[str]:
        rows = self._audit.get(tenant, [])
        return rows[max(0, len(rows) - 1 - stop) : max(0, len(rows) - start)][::-1]

    async def clear_audit(self, tenant: str) -> int:
        return len(self._audit.pop(tenant, []))

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
