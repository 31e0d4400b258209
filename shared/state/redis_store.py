"""`redis://` / `redis+cluster://`: the state store shared by every instance (Redis, Valkey,
Memorystore; one server or a Cluster).

Each model's keys carry the hash tag `{<tenant>:<model>}` so its Lua scripts run unchanged on
Redis Cluster, and models spread over the shards by it; a tenant's own keys (rate limit, key
records, documents, audit, model index) carry `{<tenant>}`. No command or script touches two
tags. The learn log is a Stream whose ids are `<seq>-0`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import shared.state.lua as lua
from shared.monitoring.prometheus import count_state_error
from shared.ratelimit import bucket_key, gcra_params
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
from shared.state.breaker import CircuitBreaker
from shared.state.redis_connection import RedisConnection
from shared.state.riders import Rider

log = logging.getLogger("ml.state")


def _entries(flat: list[Any]) -> list[LogEntry]:
    return [
        LogEntry(int(flat[i].split(b"-", 1)[0]), flat[i + 1].decode())
        for i in range(0, len(flat), 2)
    ]


def _applied(raw: Any) -> bool:
    """An append script's answer that acknowledges samples (appended, or the replay of an
    earlier append): with STATE_MIN_REPLICAS it is answered only once replicas hold it."""
    return raw[0] in (b"appended", b"replay")


def report_rewound(raw: Any, tenant: str, name: str, after: int) -> None:
    """A script found the model's log ending before the seq the caller had applied from it
    (`['stale', 'rewound', seq]`): the store lost acknowledged writes — a primary failed over
    before its replica had them (STATE_MIN_REPLICAS=0). The caller reloads; this reports it."""
    if raw[0] == b"stale" and len(raw) > 2 and raw[1] == b"rewound":
        count_state_error("LogRewound")
        log.error(
            "state store lost writes of %s/%s: its log ends at seq %d, an instance had applied "
            "it up to %d (a failover before replication; see STATE_MIN_REPLICAS)",
            tenant,
            name,
            int(raw[2]),
            after,
        )


class RedisStateStore:
    def __init__(
        self,
        url: str,
        timeout_seconds: float = 2.0,
        breaker_cooldown_seconds: float = 0.0,
        *,
        min_replicas: int = 0,
        replica_timeout_ms: int = 500,
    ) -> None:
        # Shared with the series windows and tenant key records on the same Redis
        # (open_series_state, open_key_records): one client, one breaker.
        self.connection = RedisConnection(
            url,
            timeout_seconds,
            breaker_cooldown_seconds,
            min_replicas=min_replicas,
            replica_timeout_ms=replica_timeout_ms,
        )
        script = self.connection.script
        self._append = script(lua.APPEND)
        self._read = script(lua.READ)
        self._load = script(lua.LOAD)
        self._create = script(lua.CREATE)
        self._delete = script(lua.DELETE)
        self._epoch = script(lua.EPOCH)
        self._release = script(lua.RELEASE)
        self._save_snapshot = script(lua.SAVE_SNAPSHOT)
        self._replace = script(lua.REPLACE)
        self._append_outcome = script(lua.APPEND_OUTCOME)
        self._append_outcomes = script(lua.APPEND_OUTCOMES)
        self._save_outcomes = script(lua.SAVE_OUTCOMES)
        self._touch_monitor = script(lua.TOUCH_MONITOR)
        self._gcra = script(lua.GCRA)

    @property
    def breaker(self) -> CircuitBreaker:
        """The connection's breaker (readiness and tests read whether it is open)."""
        return self.connection.breaker

    @staticmethod
    def _keys(tenant: str, name: str) -> tuple[str, str, str]:
        tag = f"ml:{{{tenant}:{name}}}"
        return f"{tag}:state", f"{tag}:snapshot", f"{tag}:log"

    @staticmethod
    def _incarnation_key(tenant: str, name: str) -> str:
        return f"ml:{{{tenant}:{name}}}:incarnation"

    @staticmethod
    def _epoch_key(tenant: str, name: str) -> str:
        # in the model's slot, never deleted (like the incarnation): shared/state_loss.py
        return f"ml:{{{tenant}:{name}}}:epoch"

    # The store-wide epoch of versions before the per-model one (shared/state_loss.py).
    _LEGACY_EPOCH_KEY = "ml:epoch"

    @staticmethod
    def _index(tenant: str) -> str:
        return f"ml:tenant:{{{tenant}}}:models"

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
        state, snapshot, log = self._keys(tenant, name)
        keys = [state, snapshot, log, self._incarnation_key(tenant, name)]
        args = [uid, record, blob, "" if incarnation is None else incarnation, seq]
        created = await self.connection.call(lambda: self._create(keys=keys, args=args))
        if created:
            await self.connection.call(
                lambda: self.connection.client.sadd(self._index(tenant), name)
            )
        return bool(created)

    async def delete_model(self, tenant: str, name: str, *, incarnation: int = 0) -> bool:
        keys = [*self._keys(tenant, name), self._incarnation_key(tenant, name)]
        deleted = await self.connection.call(lambda: self._delete(keys=keys, args=[incarnation]))
        await self.connection.call(
            lambda: self.connection.client.delete(*self._monitor_keys(tenant, name))
        )
        await self.connection.call(lambda: self.connection.client.srem(self._index(tenant), name))
        return bool(deleted)

    async def incarnation(self, tenant: str, name: str) -> tuple[int, bool]:
        key = self._incarnation_key(tenant, name)
        gen, deleted = await self.connection.call(
            lambda: self.connection.client.hmget(key, "gen", "deleted")
        )
        return int(gen or 0), deleted == b"1"

    async def epoch(self, tenant: str, name: str, candidate: str) -> str:
        keys = [self._epoch_key(tenant, name)]
        raw = await self.connection.call(lambda: self._epoch(keys=keys, args=[candidate]))
        return raw.decode()

    async def epoch_before_upgrade(self, tenant: str, name: str) -> str | None:
        client = self.connection.client
        key = self._epoch_key(tenant, name)
        if await self.connection.call(lambda: client.exists(key)):
            return None
        raw = await self.connection.call(lambda: client.get(self._LEGACY_EPOCH_KEY))
        return raw.decode() if raw is not None else None

    async def get_record(self, tenant: str, name: str) -> str | None:
        state, _, _ = self._keys(tenant, name)
        raw = await self.connection.call(lambda: self.connection.client.hget(state, "record"))
        return raw.decode() if raw is not None else None

    async def list_records(self, tenant: str) -> list[str]:
        names = sorted(
            n.decode()
            for n in await self.connection.call(
                lambda: self.connection.client.smembers(self._index(tenant))
            )
        )
        if not names:
            return []

        async def fetch() -> list[Any]:
            pipe = self.connection.client.pipeline(transaction=False)
            for name in names:
                pipe.hget(self._keys(tenant, name)[0], "record")
            return await pipe.execute()

        return [raw.decode() for raw in await self.connection.call(fetch) if raw is not None]

    async def load(self, tenant: str, name: str) -> Snapshot | None:
        keys = list(self._keys(tenant, name))
        raw = await self.connection.call(lambda: self._load(keys=keys))
        if raw is None:
            return None
        uid, record, snap_seq, blob, flat = raw
        return Snapshot(uid.decode(), record.decode(), int(snap_seq), blob, _entries(flat))

    async def read_log(self, tenant: str, name: str, uid: str, after: int) -> LogRead:
        state, _, log = self._keys(tenant, name)
        keys = [state, log]
        raw = await self.connection.call(
            lambda: self.connection.run(self._read, keys, [uid, after])
        )
        status = raw[0].decode()
        report_rewound(raw, tenant, name, after)
        if status != "ok":
            return LogRead(status)  # type: ignore[arg-type]
        return LogRead("ok", _entries(raw[1]))

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
        state, _, log = self._keys(tenant, name)
        idem_key = f"ml:{{{tenant}:{name}}}:idem:{uid}:{idempotency.key if idempotency else ''}"
        args: list[Any] = [
            uid,
            after,
            int(expected),
            int(idempotency is not None),
            idempotency.body_hash if idempotency else "",
            response,
            ttl_seconds,
            *samples,
        ]
        raw = await self.connection.write(self._append, [state, log, idem_key], args, _applied)
        status = raw[0].decode()
        report_rewound(raw, tenant, name, after)
        if status in ("missing", "stale", "conflict"):
            return AppendResult(status)  # type: ignore[arg-type]
        if status == "replay":
            return AppendResult("replay", int(raw[1]), int(raw[2]), response=raw[3].decode())
        return AppendResult(status, int(raw[1]), int(raw[2]), entries=_entries(raw[4]))  # type: ignore[arg-type]

    async def log_length(self, tenant: str, name: str) -> int:
        state, _, _ = self._keys(tenant, name)
        raw = await self.connection.call(lambda: self.connection.client.hget(state, "seq"))
        return int(raw) if raw is not None else 0

    async def save_snapshot(self, tenant: str, name: str, uid: str, seq: int, blob: bytes) -> bool:
        keys = list(self._keys(tenant, name))
        return bool(
            await self.connection.call(
                lambda: self._save_snapshot(keys=keys, args=[uid, seq, blob])
            )
        )

    async def replace_model(
        self, tenant: str, name: str, uid: str, record: str, blob: bytes
    ) -> int | None:
        keys = list(self._keys(tenant, name))
        seq = await self.connection.call(lambda: self._replace(keys=keys, args=[uid, record, blob]))
        return None if seq is None else int(seq)

    @staticmethod
    def _doc_key(kind: str, tenant: str, key: str) -> str:
        return f"ml:{{{tenant}}}:{kind}:{key}"

    async def put_doc(self, kind: str, tenant: str, key: str, value: str, ttl_seconds: int) -> None:
        await self.connection.call(
            lambda: self.connection.client.set(
                self._doc_key(kind, tenant, key), value, ex=ttl_seconds
            )
        )

    async def get_doc(self, kind: str, tenant: str, key: str) -> str | None:
        raw = await self.connection.call(
            lambda: self.connection.client.get(self._doc_key(kind, tenant, key))
        )
        return raw.decode() if raw is not None else None

    async def add_counters(
        self, kind: str, tenant: str, key: str, deltas: dict[str, float]
    ) -> None:
        name = self._doc_key(kind, tenant, key)

        async def add() -> None:
            pipe = self.connection.client.pipeline(transaction=True)
            for field_name, delta in deltas.items():
                pipe.hincrbyfloat(name, field_name, delta)
            await pipe.execute()

        await self.connection.call(add)

    async def get_counters(self, kind: str, tenant: str, key: str) -> dict[str, float]:
        raw = await self.connection.call(
            lambda: self.connection.client.hgetall(self._doc_key(kind, tenant, key))
        )
        return {k.decode(): float(v) for k, v in raw.items()}

    async def reset_counters(self, kind: str, tenant: str, key: str) -> None:
        await self.connection.call(
            lambda: self.connection.client.delete(self._doc_key(kind, tenant, key))
        )

    async def rate_limit(self, tenant: str, per_minute: int) -> int:
        keys, args = [bucket_key(tenant)], list(gcra_params(per_minute))
        return int(await self.connection.call(lambda: self._gcra(keys=keys, args=args)))

    async def try_lock(self, key: str, ttl_ms: int, owner: str = "1") -> bool:
        return bool(
            await self.connection.call(
                lambda: self.connection.client.set(f"ml:lock:{key}", owner, nx=True, px=ttl_ms)
            )
        )

    async def release_lock(self, key: str, owner: str | None = None) -> None:
        if owner is None:
            await self.connection.call(lambda: self.connection.client.delete(f"ml:lock:{key}"))
        else:
            await self.connection.call(lambda: self._release(keys=[f"ml:lock:{key}"], args=[owner]))

    # ----- monitoring ----------------------------------------------------------------------

    @staticmethod
    def _monitor_keys(tenant: str, name: str) -> tuple[str, str, str]:
        """fold (generation, state), outcomes (list), monitor (stats hash): the model's slot."""
        tag = f"ml:{{{tenant}:{name}}}"
        return f"{tag}:fold", f"{tag}:outcomes", f"{tag}:monitor"

    @staticmethod
    def _audit_key(tenant: str) -> str:
        return f"ml:{{{tenant}}}:audit"

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
        state, _, log = self._keys(tenant, name)
        _, outcomes, _ = self._monitor_keys(tenant, name)
        idem_key = f"ml:{{{tenant}:{name}}}:idem:{uid}:{idempotency.key if idempotency else ''}"
        args: list[Any] = [
            uid,
            after,
            1,  # expected: the prediction was made on the state at `after`
            int(idempotency is not None),
            idempotency.body_hash if idempotency else "",
            response,
            ttl_seconds,
            sample,
            outcome,
        ]
        keys = [state, log, idem_key, outcomes]
        raw = await self.connection.write(self._append_outcome, keys, args, _applied)
        status = raw[0].decode()
        report_rewound(raw, tenant, name, after)
        if status in ("missing", "stale", "conflict"):
            return AppendResult(status), 0  # type: ignore[arg-type]
        if status == "replay":
            return AppendResult("replay", int(raw[1]), int(raw[2]), response=raw[3].decode()), 0
        result = AppendResult(status, int(raw[1]), int(raw[2]), entries=_entries(raw[4]))  # type: ignore[arg-type]
        return result, int(raw[5]) if len(raw) > 5 else 0

    async def append_outcomes(
        self, tenant: str, name: str, uid: str, after: int, samples: list[str], outcomes: list[str]
    ) -> tuple[AppendResult, int]:
        state, _, log = self._keys(tenant, name)
        _, outcome_list, _ = self._monitor_keys(tenant, name)
        unused = f"ml:{{{tenant}:{name}}}:idem:{uid}:"
        # expected: each prediction was made on the state before its sample
        args: list[Any] = [len(outcomes), *outcomes, uid, after, 1, 0, "", "", 0, *samples]
        keys = [state, log, unused, outcome_list]
        raw = await self.connection.write(self._append_outcomes, keys, args, _applied)
        status = raw[0].decode()
        report_rewound(raw, tenant, name, after)
        if status in ("missing", "stale"):
            return AppendResult(status), 0  # type: ignore[arg-type]
        result = AppendResult(status, int(raw[1]), int(raw[2]), entries=_entries(raw[4]))  # type: ignore[arg-type]
        return result, int(raw[5]) if len(raw) > 5 else 0

    async def read_outcomes(self, tenant: str, name: str, limit: int) -> OutcomeBatch:
        fold, outcomes, _ = self._monitor_keys(tenant, name)

        async def read() -> list[Any]:
            pipe = self.connection.client.pipeline(transaction=True)  # one slot: MULTI is atomic
            pipe.hmget(fold, "generation", "state")
            pipe.lrange(outcomes, 0, limit - 1)
            return await pipe.execute()

        (generation, state), rows = await self.connection.call(read)
        return OutcomeBatch(int(generation or 0), state, [row.decode() for row in rows])

    async def save_outcomes(
        self, tenant: str, name: str, generation: int, consumed: int, state: bytes
    ) -> bool:
        keys = [self._keys(tenant, name)[0], *self._monitor_keys(tenant, name)[:2]]
        args = [generation, consumed, state]
        return bool(await self.connection.call(lambda: self._save_outcomes(keys=keys, args=args)))

    def _monitoring_writes(
        self, batch: MonitorWrite, audit_max_rows: int
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, list[str], list[Any]]]]:
        """The audit commands (per tenant: LPUSH then LTRIM) and the models' touch calls."""
        audit: list[tuple[Any, ...]] = []
        for tenant, rows in batch.audit.items():
            key = self._audit_key(tenant)
            audit.append(("LPUSH", key, *rows))  # newest ends up first
            audit.append(("LTRIM", key, 0, audit_max_rows - 1))
        touches: list[tuple[Any, list[str], list[Any]]] = []
        for tenant, name in batch.latest.keys() | batch.counts.keys():
            latest = batch.latest.get((tenant, name), {})
            args: list[Any] = [len(latest)]
            for pairs in (latest, batch.counts.get((tenant, name), {})):
                for field_name, value in pairs.items():
                    args += [field_name, repr(float(value))]
            keys = [self._keys(tenant, name)[0], self._monitor_keys(tenant, name)[2]]
            touches.append((self._touch_monitor, keys, args))
        return audit, touches

    def _monitoring_commands(self, batch: MonitorWrite, audit_max_rows: int) -> list[tuple]:
        """One server: every write of the batch as raw commands, for one pipeline."""
        audit, touches = self._monitoring_writes(batch, audit_max_rows)
        evalsha = self.connection.evalsha
        return [*audit, *(evalsha(script, keys, args) for script, keys, args in touches)]

    async def write_monitoring(self, batch: MonitorWrite, audit_max_rows: int) -> None:
        if not self.connection.is_cluster:  # one pipeline, one round trip
            commands = self._monitoring_commands(batch, audit_max_rows)
            if commands:
                await self.connection.call(lambda: self.connection.send(commands))
            return
        audit, touches = self._monitoring_writes(batch, audit_max_rows)

        async def write() -> None:
            # a Cluster: the audit pipeline to the tenants' nodes, the touches to the models'
            pipe = self.connection.client.pipeline(transaction=False)
            for command in audit:
                pipe.execute_command(*command)
            await asyncio.gather(pipe.execute(), self.connection.scripts(touches))

        await self.connection.call(write)

    def ride_along(self, take: Callable[[], Ride | None]) -> Callable[[], None]:
        def board() -> Rider | None:
            ride = take()
            if ride is None:
                return None
            try:
                commands = self._monitoring_commands(ride.batch, ride.audit_max_rows)
            except Exception as exc:  # never the request's error: the ride alone is dropped
                ride.landed(exc)
                return None
            return Rider(commands, ride.landed)

        return self.connection.board(board)

    async def read_monitor(self, tenant: str, name: str) -> dict[str, float]:
        key = self._monitor_keys(tenant, name)[2]
        raw = await self.connection.call(lambda: self.connection.client.hgetall(key))
        return {k.decode(): float(v) for k, v in raw.items()}

    async def read_audit(self, tenant: str, start: int, stop: int) -> list[str]:
        rows = await self.connection.call(
            lambda: self.connection.client.lrange(self._audit_key(tenant), start, stop)
        )
        return [row.decode() for row in rows]

    async def clear_audit(self, tenant: str) -> int:
        key = self._audit_key(tenant)

        async def clear() -> list[Any]:
            pipe = self.connection.client.pipeline(transaction=True)
            pipe.llen(key)
            pipe.delete(key)
            return await pipe.execute()

        count, _ = await self.connection.call(clear)
        return int(count)

    async def ping(self) -> None:
        await self.connection.call(self.connection.client.ping, probe=True)

    async def close(self) -> None:
        await self.connection.close()
