"""`redis://`: the state store shared by every instance (Redis, Valkey, Memorystore).

Each model's keys carry the hash tag `{<tenant>:<model>}` so its Lua scripts run unchanged on
Redis Cluster. The learn log is a Stream whose ids are `<seq>-0`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis import asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from shared.monitoring.prometheus import count_state_error
from shared.ratelimit import GCRA_LUA, bucket_key, gcra_params
from shared.state.base import (
    AppendResult,
    Idempotency,
    LogEntry,
    LogRead,
    MonitorWrite,
    OutcomeBatch,
    Snapshot,
    StateUnavailable,
)
from shared.state.breaker import CircuitBreaker

T = TypeVar("T")

# Set once (SET NX) by the first instance to use an empty store: a store that comes back
# empty gets another epoch, which is how a lost state is told from a missing model.
_EPOCH_KEY = "ml:epoch"

# Rows of a stream read, flattened as [id, data, id, data, ...].
_TAIL = """
local function tail(log, after, last)
  local out = {}
  if last > after then
    local rows = redis.call('XRANGE', log, tostring(after + 1) .. '-0', '+')
    for _, row in ipairs(rows) do
      out[#out + 1] = row[1]
      out[#out + 1] = row[2][2]
    end
  end
  return out
end
"""

_APPEND = (
    _TAIL
    + """
-- KEYS: state, log, idempotency; ARGV: uid, after, expected, has_key, body_hash, response,
-- ttl, samples...
local st = redis.call('HMGET', KEYS[1], 'uid', 'seq', 'trimmed')
if not st[1] then return {'missing'} end
local seq, after = tonumber(st[2]), tonumber(ARGV[2])
if st[1] ~= ARGV[1] or after < tonumber(st[3]) then return {'stale'} end
if ARGV[4] == '1' then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    local rec = cjson.decode(seen)
    if rec[1] ~= ARGV[5] then return {'conflict'} end
    return {'replay', rec[2], rec[3], rec[4]}
  end
end
if ARGV[3] == '1' and seq ~= after then
  return {'behind', 0, 0, '', tail(KEYS[2], after, seq)}
end
local missed = tail(KEYS[2], after, seq)
local first = seq + 1
for i = 8, #ARGV do
  seq = seq + 1
  redis.call('XADD', KEYS[2], tostring(seq) .. '-0', 'd', ARGV[i])
end
redis.call('HSET', KEYS[1], 'seq', seq)
if ARGV[4] == '1' then
  redis.call('SET', KEYS[3], cjson.encode({ARGV[5], first, seq, ARGV[6]}), 'EX', ARGV[7])
end
return {'appended', first, seq, '', missed}
"""
)

_READ = (
    _TAIL
    + """
-- KEYS: state, log; ARGV: uid, after
local st = redis.call('HMGET', KEYS[1], 'uid', 'seq', 'trimmed')
if not st[1] then return {'missing'} end
local after = tonumber(ARGV[2])
if st[1] ~= ARGV[1] or after < tonumber(st[3]) then return {'stale'} end
return {'ok', tail(KEYS[2], after, tonumber(st[2]))}
"""
)

_LOAD = (
    _TAIL
    + """
-- KEYS: state, snapshot, log
local st = redis.call('HMGET', KEYS[1], 'uid', 'record', 'snap_seq', 'seq')
if not st[1] then return false end
local snap_seq = tonumber(st[3])
return {st[1], st[2], snap_seq, redis.call('GET', KEYS[2]), tail(KEYS[3], snap_seq, tonumber(st[4]))}
"""
)

_CREATE = """
-- KEYS: state, snapshot, log, incarnation; ARGV: uid, record, blob, incarnation ('' = any), seq
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[4] ~= '' then
  -- an incarnation older than the newest one, or equal to a deleted one, is refused
  local inc = redis.call('HMGET', KEYS[4], 'gen', 'deleted')
  local gen, wanted = tonumber(inc[1] or '0'), tonumber(ARGV[4])
  if gen > wanted or (gen == wanted and inc[2] == '1') then return 0 end
  redis.call('HSET', KEYS[4], 'gen', wanted, 'deleted', 0)
end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'uid', ARGV[1], 'record', ARGV[2], 'seq', ARGV[5],
           'snap_seq', ARGV[5], 'trimmed', ARGV[5])
return 1
"""

_DELETE = """
-- KEYS: state, snapshot, log, incarnation; ARGV: incarnation
-- The tombstone outlives the model: a request that read the model before this delete can
-- never install it again (shared/lifecycle.py: recover, activate).
local existed = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local gen = math.max(tonumber(redis.call('HGET', KEYS[4], 'gen') or '0'), tonumber(ARGV[1]))
redis.call('HSET', KEYS[4], 'gen', gen, 'deleted', 1)
return existed
"""

_EPOCH = """
-- KEYS: epoch; ARGV: a fresh epoch, kept only if the store has none yet
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""

_RELEASE = """
-- KEYS: lock; ARGV: owner token: only the owner releases (an expired lock may be another's)
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_SAVE_SNAPSHOT = """
-- KEYS: state, snapshot, log; ARGV: uid, seq, blob
local st = redis.call('HMGET', KEYS[1], 'uid', 'snap_seq', 'seq')
local seq = tonumber(ARGV[2])
if st[1] ~= ARGV[1] or seq <= tonumber(st[2]) or seq > tonumber(st[3]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'snap_seq', seq, 'trimmed', seq)
redis.call('XTRIM', KEYS[3], 'MINID', tostring(seq + 1) .. '-0')
return 1
"""

_REPLACE = """
-- KEYS: state, snapshot, log; ARGV: uid, record, blob
local seq = redis.call('HGET', KEYS[1], 'seq')
if not seq then return false end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'uid', ARGV[1], 'record', ARGV[2], 'snap_seq', seq, 'trimmed', seq)
return tonumber(seq)
"""

# Monitoring (shared/monitoring). The append above runs verbatim inside a function, with the
# outcome taken off the end of its ARGV; when it appends, the outcome is logged right after,
# in the same atomic step, so outcomes are in seq order and never missing or doubled.
_APPEND_OUTCOME = (
    """
-- KEYS: state, log, idempotency, outcomes; ARGV: the append's (one sample), then the outcome
local outcome = ARGV[#ARGV]
local ARGV = {unpack(ARGV, 1, #ARGV - 1)}
local function append()
"""
    + _APPEND
    + """
end
local result = append()
if result[1] == 'appended' then
  local entry = '[' .. result[3] .. ',' .. ARGV[8] .. ',' .. outcome .. ']'
  result[6] = redis.call('RPUSH', KEYS[4], entry)
end
return result
"""
)

_SAVE_OUTCOMES = """
-- KEYS: state, fold, outcomes; ARGV: generation, consumed, state
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local generation = tonumber(redis.call('HGET', KEYS[2], 'generation') or '0')
if generation ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], 'generation', generation + 1, 'state', ARGV[3])
redis.call('LTRIM', KEYS[3], tonumber(ARGV[2]), -1)
return 1
"""

_TOUCH_MONITOR = """
-- KEYS: state, monitor; ARGV: n, n (field, value) pairs kept as maxima, then (field, delta)
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[1])
for i = 2, 2 * n, 2 do
  local old = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '-1e308')
  if tonumber(ARGV[i + 1]) > old then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
for i = 2 * n + 2, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 1])
end
return 1
"""


def _entries(flat: list[Any]) -> list[LogEntry]:
    return [
        LogEntry(int(flat[i].split(b"-", 1)[0]), flat[i + 1].decode())
        for i in range(0, len(flat), 2)
    ]


class RedisStateStore:
    def __init__(
        self, url: str, timeout_seconds: float = 2.0, breaker_cooldown_seconds: float = 0.0
    ) -> None:
        # No automatic retries: a resent append could apply twice. Clients retry with an
        # Idempotency-Key instead, which is exactly-once.
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._append = self._redis.register_script(_APPEND)
        self._read = self._redis.register_script(_READ)
        self._load = self._redis.register_script(_LOAD)
        self._create = self._redis.register_script(_CREATE)
        self._delete = self._redis.register_script(_DELETE)
        self._epoch = self._redis.register_script(_EPOCH)
        self._release = self._redis.register_script(_RELEASE)
        self._save_snapshot = self._redis.register_script(_SAVE_SNAPSHOT)
        self._replace = self._redis.register_script(_REPLACE)
        self._append_outcome = self._redis.register_script(_APPEND_OUTCOME)
        self._save_outcomes = self._redis.register_script(_SAVE_OUTCOMES)
        self._touch_monitor = self._redis.register_script(_TOUCH_MONITOR)
        self._gcra = self._redis.register_script(GCRA_LUA)
        self.breaker = CircuitBreaker(breaker_cooldown_seconds)

    @property
    def client(self) -> aioredis.Redis:
        """The connection, for other state on the same Redis (series windows)."""
        return self._redis

    @staticmethod
    def _keys(tenant: str, name: str) -> tuple[str, str, str]:
        tag = f"ml:{{{tenant}:{name}}}"
        return f"{tag}:state", f"{tag}:snapshot", f"{tag}:log"

    @staticmethod
    def _incarnation_key(tenant: str, name: str) -> str:
        return f"ml:{{{tenant}:{name}}}:incarnation"

    @staticmethod
    def _index(tenant: str) -> str:
        return f"ml:tenant:{{{tenant}}}:models"

    async def call(self, operation: Callable[[], Awaitable[T]], *, probe: bool = False) -> T:
        """One store call through the breaker (shared/state/breaker.py) and the error mapping
        (unreachable → StateUnavailable); other state on the same Redis (series windows, tenant
        keys) calls through it too. `probe` tries the store even while the breaker is open
        (readiness)."""
        if not probe and not self.breaker.admit():
            raise StateUnavailable(
                "state store unreachable: failing fast after a recent failure "
                "(STATE_BREAKER_COOLDOWN_SECONDS)"
            )
        try:
            result = await operation()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            self.breaker.failed()
            count_state_error(exc.__class__.__name__)
            raise StateUnavailable(f"state store unreachable: {exc.__class__.__name__}") from exc
        except Exception:
            self.breaker.succeeded()  # the store answered (with an error of its own)
            raise
        except BaseException:
            self.breaker.abandoned()  # cancelled: no news about the store
            raise
        self.breaker.succeeded()
        return result

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
        created = await self.call(lambda: self._create(keys=keys, args=args))
        if created:
            await self.call(lambda: self._redis.sadd(self._index(tenant), name))
        return bool(created)

    async def delete_model(self, tenant: str, name: str, *, incarnation: int = 0) -> bool:
        keys = [*self._keys(tenant, name), self._incarnation_key(tenant, name)]
        deleted = await self.call(lambda: self._delete(keys=keys, args=[incarnation]))
        await self.call(lambda: self._redis.delete(*self._monitor_keys(tenant, name)))
        await self.call(lambda: self._redis.srem(self._index(tenant), name))
        return bool(deleted)

    async def incarnation(self, tenant: str, name: str) -> tuple[int, bool]:
        key = self._incarnation_key(tenant, name)
        gen, deleted = await self.call(lambda: self._redis.hmget(key, "gen", "deleted"))
        return int(gen or 0), deleted == b"1"

    async def epoch(self, candidate: str) -> str:
        raw = await self.call(lambda: self._epoch(keys=[_EPOCH_KEY], args=[candidate]))
        return raw.decode()

    async def get_record(self, tenant: str, name: str) -> str | None:
        state, _, _ = self._keys(tenant, name)
        raw = await self.call(lambda: self._redis.hget(state, "record"))
        return raw.decode() if raw is not None else None

    async def list_records(self, tenant: str) -> list[str]:
        names = sorted(
            n.decode() for n in await self.call(lambda: self._redis.smembers(self._index(tenant)))
        )
        if not names:
            return []

        async def fetch() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for name in names:
                pipe.hget(self._keys(tenant, name)[0], "record")
            return await pipe.execute()

        return [raw.decode() for raw in await self.call(fetch) if raw is not None]

    async def load(self, tenant: str, name: str) -> Snapshot | None:
        keys = list(self._keys(tenant, name))
        raw = await self.call(lambda: self._load(keys=keys))
        if raw is None:
            return None
        uid, record, snap_seq, blob, flat = raw
        return Snapshot(uid.decode(), record.decode(), int(snap_seq), blob, _entries(flat))

    async def read_log(self, tenant: str, name: str, uid: str, after: int) -> LogRead:
        state, _, log = self._keys(tenant, name)
        raw = await self.call(lambda: self._read(keys=[state, log], args=[uid, after]))
        status = raw[0].decode()
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
        raw = await self.call(lambda: self._append(keys=[state, log, idem_key], args=args))
        status = raw[0].decode()
        if status in ("missing", "stale", "conflict"):
            return AppendResult(status)  # type: ignore[arg-type]
        if status == "replay":
            return AppendResult("replay", int(raw[1]), int(raw[2]), response=raw[3].decode())
        return AppendResult(status, int(raw[1]), int(raw[2]), entries=_entries(raw[4]))  # type: ignore[arg-type]

    async def log_length(self, tenant: str, name: str) -> int:
        state, _, _ = self._keys(tenant, name)
        raw = await self.call(lambda: self._redis.hget(state, "seq"))
        return int(raw) if raw is not None else 0

    async def save_snapshot(self, tenant: str, name: str, uid: str, seq: int, blob: bytes) -> bool:
        keys = list(self._keys(tenant, name))
        return bool(await self.call(lambda: self._save_snapshot(keys=keys, args=[uid, seq, blob])))

    async def replace_model(
        self, tenant: str, name: str, uid: str, record: str, blob: bytes
    ) -> int | None:
        keys = list(self._keys(tenant, name))
        seq = await self.call(lambda: self._replace(keys=keys, args=[uid, record, blob]))
        return None if seq is None else int(seq)

    @staticmethod
    def _doc_key(kind: str, tenant: str, key: str) -> str:
        return f"ml:{{{tenant}}}:{kind}:{key}"

    async def put_doc(self, kind: str, tenant: str, key: str, value: str, ttl_seconds: int) -> None:
        await self.call(
            lambda: self._redis.set(self._doc_key(kind, tenant, key), value, ex=ttl_seconds)
        )

    async def get_doc(self, kind: str, tenant: str, key: str) -> str | None:
        raw = await self.call(lambda: self._redis.get(self._doc_key(kind, tenant, key)))
        return raw.decode() if raw is not None else None

    async def add_counters(
        self, kind: str, tenant: str, key: str, deltas: dict[str, float]
    ) -> None:
        name = self._doc_key(kind, tenant, key)

        async def add() -> None:
            pipe = self._redis.pipeline(transaction=True)
            for field_name, delta in deltas.items():
                pipe.hincrbyfloat(name, field_name, delta)
            await pipe.execute()

        await self.call(add)

    async def get_counters(self, kind: str, tenant: str, key: str) -> dict[str, float]:
        raw = await self.call(lambda: self._redis.hgetall(self._doc_key(kind, tenant, key)))
        return {k.decode(): float(v) for k, v in raw.items()}

    async def reset_counters(self, kind: str, tenant: str, key: str) -> None:
        await self.call(lambda: self._redis.delete(self._doc_key(kind, tenant, key)))

    async def rate_limit(self, tenant: str, per_minute: int) -> int:
        keys, args = [bucket_key(tenant)], list(gcra_params(per_minute))
        return int(await self.call(lambda: self._gcra(keys=keys, args=args)))

    async def try_lock(self, key: str, ttl_ms: int, owner: str = "1") -> bool:
        return bool(
            await self.call(lambda: self._redis.set(f"ml:lock:{key}", owner, nx=True, px=ttl_ms))
        )

    async def release_lock(self, key: str, owner: str | None = None) -> None:
        if owner is None:
            await self.call(lambda: self._redis.delete(f"ml:lock:{key}"))
        else:
            await self.call(lambda: self._release(keys=[f"ml:lock:{key}"], args=[owner]))

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
        raw = await self.call(lambda: self._append_outcome(keys=keys, args=args))
        status = raw[0].decode()
        if status in ("missing", "stale", "conflict"):
            return AppendResult(status), 0  # type: ignore[arg-type]
        if status == "replay":
            return AppendResult("replay", int(raw[1]), int(raw[2]), response=raw[3].decode()), 0
        result = AppendResult(status, int(raw[1]), int(raw[2]), entries=_entries(raw[4]))  # type: ignore[arg-type]
        return result, int(raw[5]) if len(raw) > 5 else 0

    async def read_outcomes(self, tenant: str, name: str, limit: int) -> OutcomeBatch:
        fold, outcomes, _ = self._monitor_keys(tenant, name)

        async def read() -> list[Any]:
            pipe = self._redis.pipeline(transaction=True)  # one slot: MULTI is atomic
            pipe.hmget(fold, "generation", "state")
            pipe.lrange(outcomes, 0, limit - 1)
            return await pipe.execute()

        (generation, state), rows = await self.call(read)
        return OutcomeBatch(int(generation or 0), state, [row.decode() for row in rows])

    async def save_outcomes(
        self, tenant: str, name: str, generation: int, consumed: int, state: bytes
    ) -> bool:
        keys = [self._keys(tenant, name)[0], *self._monitor_keys(tenant, name)[:2]]
        args = [generation, consumed, state]
        return bool(await self.call(lambda: self._save_outcomes(keys=keys, args=args)))

    async def write_monitoring(self, batch: MonitorWrite, audit_max_rows: int) -> None:
        async def write() -> None:
            pipe = self._redis.pipeline(transaction=False)
            for tenant, rows in batch.audit.items():
                key = self._audit_key(tenant)
                pipe.lpush(key, *rows)  # newest ends up first
                pipe.ltrim(key, 0, audit_max_rows - 1)
            for tenant, name in batch.latest.keys() | batch.counts.keys():
                latest = batch.latest.get((tenant, name), {})
                args: list[Any] = [len(latest)]
                for pairs in (latest, batch.counts.get((tenant, name), {})):
                    for field_name, value in pairs.items():
                        args += [field_name, repr(float(value))]
                keys = [self._keys(tenant, name)[0], self._monitor_keys(tenant, name)[2]]
                await self._touch_monitor(keys=keys, args=args, client=pipe)
            await pipe.execute()

        await self.call(write)

    async def read_monitor(self, tenant: str, name: str) -> dict[str, float]:
        key = self._monitor_keys(tenant, name)[2]
        raw = await self.call(lambda: self._redis.hgetall(key))
        return {k.decode(): float(v) for k, v in raw.items()}

    async def read_audit(self, tenant: str, start: int, stop: int) -> list[str]:
        rows = await self.call(lambda: self._redis.lrange(self._audit_key(tenant), start, stop))
        return [row.decode() for row in rows]

    async def clear_audit(self, tenant: str) -> int:
        key = self._audit_key(tenant)

        async def clear() -> list[Any]:
            pipe = self._redis.pipeline(transaction=True)
            pipe.llen(key)
            pipe.delete(key)
            return await pipe.execute()

        count, _ = await self.call(clear)
        return int(count)

    async def ping(self) -> None:
        await self.call(self._redis.ping, probe=True)

    async def close(self) -> None:
        await self._redis.aclose()
