"""`memory://`: the state store inside one process (make run, tests). Not shared, not durable.

Methods never await while mutating, so each is atomic on the event loop, like a Lua call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from shared.state.base import AppendResult, Idempotency, LogEntry, LogRead, Snapshot


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


class MemoryStateStore:
    def __init__(self) -> None:
        self._models: dict[tuple[str, str], _ModelState] = {}
        self._locks: dict[str, float] = {}
        self._docs: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._counters: dict[tuple[str, str, str], dict[str, float]] = {}

    async def create_model(
        self, tenant: str, name: str, uid: str, record: str, blob: bytes
    ) -> bool:
        if (tenant, name) in self._models:
            return False
        self._models[tenant, name] = _ModelState(uid=uid, record=record, blob=blob)
        return True

    async def delete_model(self, tenant: str, name: str) -> bool:
        return self._models.pop((tenant, name), None) is not None

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

    async def try_lock(self, key: str, ttl_ms: int) -> bool:
        now = time.monotonic()
        if self._locks.get(key, 0.0) > now:
            return False
        self._locks[key] = now + ttl_ms / 1000
        return True

    async def release_lock(self, key: str) -> None:
        self._locks.pop(key, None)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
