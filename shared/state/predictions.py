"""Kept predictions for delayed labels (architecture.md §4, README: Delayed labels).

Every predict keeps, under its prediction id, the features as they arrived and the prediction
it answered, per tenant and model, for LABEL_TTL_SECONDS. A label later learns those features
through the learn log: `label` appends the samples (conditional on the log still ending where
the caller's model is, like every learn), logs each kept prediction as the sample's monitoring
outcome and marks the ids labelled, all in one atomic step (one Lua call on Redis), so two
concurrent labels of one id learn it once: one is appended, the other finds it labelled.

Layout per model (Redis, all in the model's hash slot `{<tenant>:<model>}`):
`kept` (hash id → "<token>\\n<outcome>\\n<x>"), `pending` (zset id → predicted at),
`labelled` (zset id → predicted at), `label-idem:<uid>:<key>` (Idempotency-Key records).
The `x` is kept as the JSON text it arrived in: River sums over a dict in key order, so the
label must learn the keys in that same order. `memory://` and `redis://` sit side by side.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from redis import asyncio as aioredis

from shared.state.base import AppendResult, Idempotency, LogEntry, StateStore
from shared.state.redis_store import _APPEND, RedisStateStore


@dataclass(frozen=True)
class Kept:
    """One kept prediction: `x` (JSON, key order as sent), its outcome (monitoring's
    `encode_outcome`) and the token that tells this keep from a later one under the same id."""

    token: str
    outcome: str
    x: str


FetchStatus = Literal["missing", "labelled"]


@dataclass(frozen=True)
class Fetched:
    """What a label request finds: a stored answer (replay), a key conflict, or per id."""

    replay: str | None = None
    conflict: bool = False
    kept: dict[str, Kept | FetchStatus] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelWrite:
    prediction_id: str
    token: str
    outcome: str
    sample: str  # encode_sample(x, y): the learn log's entry


@dataclass(frozen=True)
class LabelAppend:
    """`label`'s outcome: the append's, or `gone` (the id at `gone` was labelled or expired
    meanwhile; nothing was appended) with `reason`."""

    result: AppendResult
    pending_outcomes: int = 0
    gone: str | None = None
    reason: FetchStatus = "missing"


@dataclass(frozen=True)
class Pending:
    count: int
    oldest_at: float | None  # epoch seconds of the oldest unlabelled prediction


# (prediction id, x as JSON, outcome as JSON)
KeepItem = tuple[str, str, str]


class KeptPredictions(Protocol):
    async def keep(self, tenant: str, name: str, items: list[KeepItem]) -> list[bool]:
        """Keep predictions (one round trip), each replacing an unlabelled one under its id;
        False for an id labelled already (nothing kept for it)."""

    async def fetch(
        self,
        tenant: str,
        name: str,
        uid: str,
        ids: list[str],
        now: float,
        idempotency: Idempotency | None,
    ) -> Fetched:
        """The kept predictions of `ids` (one round trip), or the answer stored under the
        request's Idempotency-Key."""

    async def label(
        self,
        tenant: str,
        name: str,
        uid: str,
        after: int,
        writes: list[LabelWrite],
        now: float,
        idempotency: Idempotency | None,
        response: str,
        idempotency_ttl: int,
    ) -> LabelAppend:
        """Atomically: each id still kept with its token and unlabelled, the log ending at
        `after` → append the samples, log the outcomes, mark the ids labelled and store
        `response` under the Idempotency-Key."""

    async def pending(self, tenant: str, name: str, now: float) -> Pending: ...

    async def forget(self, tenant: str, name: str) -> None:
        """Drop the model's kept predictions (the model was deleted)."""


def new_token() -> str:
    return uuid.uuid4().hex


# ----- memory:// ------------------------------------------------------------------------


@dataclass
class _Model:
    kept: OrderedDict[str, tuple[float, Kept]] = field(default_factory=OrderedDict)
    labelled: OrderedDict[str, float] = field(default_factory=OrderedDict)
    answers: dict[tuple[str, str], tuple[str, str, float]] = field(default_factory=dict)

    def prune(self, now: float, ttl: int) -> None:
        # both are in predict order (a re-kept id moves to the end): expired ones lead
        while self.kept and next(iter(self.kept.values()))[0] + ttl <= now:
            self.kept.popitem(last=False)
        while self.labelled and next(iter(self.labelled.values())) + ttl <= now:
            self.labelled.popitem(last=False)


class MemoryKeptPredictions:
    """In one process, next to MemoryStateStore; its methods never suspend while mutating,
    so each is atomic on the event loop like a Lua call."""

    def __init__(self, store: StateStore, ttl_seconds: int, max_kept: int) -> None:
        self.store = store
        self.ttl, self.max_kept = ttl_seconds, max_kept
        self._models: dict[tuple[str, str], _Model] = {}

    def _model(self, tenant: str, name: str, now: float) -> _Model:
        model = self._models.setdefault((tenant, name), _Model())
        model.prune(now, self.ttl)
        return model

    async def keep(self, tenant: str, name: str, items: list[KeepItem]) -> list[bool]:
        now = time.time()
        model = self._model(tenant, name, now)
        done = []
        for prediction_id, x, outcome in items:
            if prediction_id in model.labelled:
                done.append(False)
                continue
            model.kept.pop(prediction_id, None)
            model.kept[prediction_id] = (now, Kept(new_token(), outcome, x))
            while len(model.kept) > self.max_kept:
                model.kept.popitem(last=False)
            done.append(True)
        return done

    async def fetch(
        self,
        tenant: str,
        name: str,
        uid: str,
        ids: list[str],
        now: float,
        idempotency: Idempotency | None,
    ) -> Fetched:
        model = self._model(tenant, name, now)
        if idempotency is not None:
            seen = model.answers.get((uid, idempotency.key))
            if seen is not None and seen[2] > now:
                if seen[0] != idempotency.body_hash:
                    return Fetched(conflict=True)
                return Fetched(replay=seen[1])
        found: dict[str, Kept | FetchStatus] = {}
        for pid in ids:
            if pid in model.labelled:
                found[pid] = "labelled"
            else:
                entry = model.kept.get(pid)
                found[pid] = entry[1] if entry is not None else "missing"
        return Fetched(kept=found)

    async def label(
        self,
        tenant: str,
        name: str,
        uid: str,
        after: int,
        writes: list[LabelWrite],
        now: float,
        idempotency: Idempotency | None,
        response: str,
        idempotency_ttl: int,
    ) -> LabelAppend:
        model = self._model(tenant, name, now)
        if idempotency is not None:
            seen = model.answers.get((uid, idempotency.key))
            if seen is not None and seen[2] > now:
                if seen[0] != idempotency.body_hash:
                    return LabelAppend(AppendResult("conflict"))
                return LabelAppend(AppendResult("replay", response=seen[1]))
        for write in writes:
            if write.prediction_id in model.labelled:
                return LabelAppend(
                    AppendResult("missing"), gone=write.prediction_id, reason="labelled"
                )
            entry = model.kept.get(write.prediction_id)
            if entry is None or entry[1].token != write.token:
                return LabelAppend(AppendResult("missing"), gone=write.prediction_id)
        # The store's append never suspends either, so the whole label stays one step: the
        # first append decides (conditional on `after`), the others follow it at once.
        first: AppendResult | None = None
        pending = 0
        for index, write in enumerate(writes):
            result, pending = await self.store.append_outcome(
                tenant,
                name,
                uid,
                after + index,
                write.sample,
                write.outcome,
                idempotency=None,
            )
            if first is None:
                first = result
                if result.status != "appended":
                    return LabelAppend(result)
            assert result.status == "appended"
        assert first is not None
        for write in writes:
            at, _ = model.kept.pop(write.prediction_id)
            model.labelled[write.prediction_id] = at
        if idempotency is not None:
            expires = now + idempotency_ttl
            model.answers[uid, idempotency.key] = (idempotency.body_hash, response, expires)
        last = first.first + len(writes) - 1
        return LabelAppend(
            AppendResult("appended", first.first, last, entries=first.entries), pending
        )

    async def pending(self, tenant: str, name: str, now: float) -> Pending:
        model = self._model(tenant, name, now)
        oldest = next(iter(model.kept.values()))[0] if model.kept else None
        return Pending(len(model.kept), oldest)

    async def forget(self, tenant: str, name: str) -> None:
        self._models.pop((tenant, name), None)


# ----- redis:// ---------------------------------------------------------------------------

# Expired ids are swept a few at a time by every keep (and the keys expire with the newest
# keep), so an idle model's kept predictions go entirely after LABEL_TTL_SECONDS.
_SWEEP = """
local function sweep(kept, pending, labelled, before)
  local old = redis.call('ZRANGEBYSCORE', pending, '-inf', before, 'LIMIT', 0, 4)
  for _, id in ipairs(old) do redis.call('HDEL', kept, id); redis.call('ZREM', pending, id) end
  local done = redis.call('ZRANGEBYSCORE', labelled, '-inf', before, 'LIMIT', 0, 4)
  for _, id in ipairs(done) do redis.call('ZREM', labelled, id) end
end
"""

_KEEP = (
    _SWEEP
    + """
-- KEYS: kept, pending, labelled; ARGV: id, value, now, ttl, max_kept
local now, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
sweep(KEYS[1], KEYS[2], KEYS[3], now - ttl)
local at = redis.call('ZSCORE', KEYS[3], ARGV[1])
if at and tonumber(at) + ttl > now then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #popped, 2 do redis.call('HDEL', KEYS[1], popped[i]) end
end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl + 1) end
return 1
"""
)

# One status per id: 'l' labelled, 'm' missing or expired, else the kept value.
_FETCH = """
-- KEYS: kept, pending, labelled, idempotency; ARGV: now, ttl, has_key, body_hash, ids...
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
if ARGV[3] == '1' then
  local seen = redis.call('GET', KEYS[4])
  if seen then
    local rec = cjson.decode(seen)
    if rec[1] ~= ARGV[4] then return {'conflict'} end
    return {'replay', rec[2]}
  end
end
local out = {'ok'}
for i = 5, #ARGV do
  local at = redis.call('ZSCORE', KEYS[3], ARGV[i])
  if at and tonumber(at) + ttl > now then
    out[#out + 1] = 'l'
  else
    at = redis.call('ZSCORE', KEYS[2], ARGV[i])
    local value = redis.call('HGET', KEYS[1], ARGV[i])
    if at and value and tonumber(at) + ttl > now then out[#out + 1] = value
    else out[#out + 1] = 'm' end
  end
end
return out
"""

# The learn log's own append (redis_store._APPEND, verbatim, with no Idempotency-Key of its
# own: the label's key is kept beside the kept predictions) runs inside, after every id was
# checked; when it appends, each kept prediction is logged as its sample's outcome and the
# ids become labelled in the same atomic step.
_LABEL = (
    """
-- KEYS: state, log, (unused), outcomes, kept, pending, labelled, idempotency
-- ARGV: now, ttl, has_key, body_hash, response, idem_ttl, n, ids (n), tokens (n),
--       outcomes (n), then the append's ARGV (uid, after, 1, 0, '', '', 0, samples (n))
local now, ttl, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[7])
if ARGV[3] == '1' then
  local seen = redis.call('GET', KEYS[8])
  if seen then
    local rec = cjson.decode(seen)
    if rec[1] ~= ARGV[4] then return {'conflict'} end
    return {'replay', 0, 0, rec[2]}
  end
end
local has_key, body_hash, response, idem_ttl = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local ids, tokens, outcomes = {}, {}, {}
for i = 1, n do
  ids[i], tokens[i], outcomes[i] = ARGV[7 + i], ARGV[7 + n + i], ARGV[7 + 2 * n + i]
  local done = redis.call('ZSCORE', KEYS[7], ids[i])
  if done and tonumber(done) + ttl > now then return {'gone', ids[i], 'labelled'} end
  local at = redis.call('ZSCORE', KEYS[6], ids[i])
  local value = redis.call('HGET', KEYS[5], ids[i])
  if not at or not value or tonumber(at) + ttl <= now or string.sub(value, 1, 32) ~= tokens[i] then
    return {'gone', ids[i], 'missing'}
  end
end
local ARGV = {unpack(ARGV, 8 + 3 * n)}
local function append()
"""
    + _APPEND
    + """
end
local result = append()
if result[1] == 'appended' then
  local pending = 0
  for i = 1, n do
    local seq = result[2] + i - 1
    pending = redis.call('RPUSH', KEYS[4], '[' .. seq .. ',' .. ARGV[7 + i] .. ',' .. outcomes[i] .. ']')
    local at = redis.call('ZSCORE', KEYS[6], ids[i])
    redis.call('ZREM', KEYS[6], ids[i])
    redis.call('HDEL', KEYS[5], ids[i])
    redis.call('ZADD', KEYS[7], at, ids[i])
  end
  redis.call('EXPIRE', KEYS[7], ttl + 1)
  if has_key == '1' then
    redis.call('SET', KEYS[8], cjson.encode({body_hash, response}), 'EX', idem_ttl)
  end
  result[6] = pending
end
return result
"""
)

_PENDING = """
-- KEYS: pending; ARGV: before (now - ttl): what predates it has expired
local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
return {redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf'), oldest[2] or ''}
"""


def _entries(flat: list[Any]) -> list[LogEntry]:
    return [
        LogEntry(int(flat[i].split(b"-", 1)[0]), flat[i + 1].decode())
        for i in range(0, len(flat), 2)
    ]


class RedisKeptPredictions:
    def __init__(self, client: aioredis.Redis, call: Any, ttl_seconds: int, max_kept: int) -> None:
        self._call = call  # the state store's breaker and error mapping
        self.ttl, self.max_kept = ttl_seconds, max_kept
        self._redis = client
        self._keep = client.register_script(_KEEP)
        self._fetch = client.register_script(_FETCH)
        self._label = client.register_script(_LABEL)
        self._pending = client.register_script(_PENDING)

    @staticmethod
    def _keys(tenant: str, name: str) -> list[str]:
        tag = f"ml:{{{tenant}:{name}}}"
        return [f"{tag}:kept", f"{tag}:pending", f"{tag}:labelled"]

    @staticmethod
    def _idempotency_key(tenant: str, name: str, uid: str, idem: Idempotency | None) -> str:
        return f"ml:{{{tenant}:{name}}}:label-idem:{uid}:{idem.key if idem else ''}"

    async def keep(self, tenant: str, name: str, items: list[KeepItem]) -> list[bool]:
        keys, now = self._keys(tenant, name), repr(time.time())

        def args(item: KeepItem) -> list[Any]:
            prediction_id, x, outcome = item
            return [prediction_id, f"{new_token()}\n{outcome}\n{x}", now, self.ttl, self.max_kept]

        if len(items) == 1:  # a predict: one EVALSHA
            return [bool(await self._call(lambda: self._keep(keys=keys, args=args(items[0]))))]

        async def many() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for item in items:
                await self._keep(keys=keys, args=args(item), client=pipe)
            return await pipe.execute()

        return [bool(done) for done in await self._call(many)]

    async def fetch(
        self,
        tenant: str,
        name: str,
        uid: str,
        ids: list[str],
        now: float,
        idempotency: Idempotency | None,
    ) -> Fetched:
        keys = [*self._keys(tenant, name), self._idempotency_key(tenant, name, uid, idempotency)]
        args: list[Any] = [
            repr(now),
            self.ttl,
            int(idempotency is not None),
            idempotency.body_hash if idempotency else "",
            *ids,
        ]
        raw = await self._call(lambda: self._fetch(keys=keys, args=args))
        status = raw[0].decode()
        if status == "conflict":
            return Fetched(conflict=True)
        if status == "replay":
            return Fetched(replay=raw[1].decode())
        found: dict[str, Kept | FetchStatus] = {}
        for pid, value in zip(ids, raw[1:], strict=True):
            if value == b"l":
                found[pid] = "labelled"
            elif value == b"m":
                found[pid] = "missing"
            else:
                token, outcome, x = value.decode().split("\n", 2)
                found[pid] = Kept(token, outcome, x)
        return Fetched(kept=found)

    async def label(
        self,
        tenant: str,
        name: str,
        uid: str,
        after: int,
        writes: list[LabelWrite],
        now: float,
        idempotency: Idempotency | None,
        response: str,
        idempotency_ttl: int,
    ) -> LabelAppend:
        state, log = f"ml:{{{tenant}:{name}}}:state", f"ml:{{{tenant}:{name}}}:log"
        outcomes = f"ml:{{{tenant}:{name}}}:outcomes"
        unused = f"ml:{{{tenant}:{name}}}:idem:{uid}:"
        keys = [
            state,
            log,
            unused,
            outcomes,
            *self._keys(tenant, name),
            self._idempotency_key(tenant, name, uid, idempotency),
        ]
        args: list[Any] = [
            repr(now),
            self.ttl,
            int(idempotency is not None),
            idempotency.body_hash if idempotency else "",
            response,
            idempotency_ttl,
            len(writes),
            *(w.prediction_id for w in writes),
            *(w.token for w in writes),
            *(w.outcome for w in writes),
            uid,
            after,
            1,  # expected: the samples were learned on the state at `after`
            0,
            "",
            "",
            0,
            *(w.sample for w in writes),
        ]
        raw = await self._call(lambda: self._label(keys=keys, args=args))
        status = raw[0].decode()
        if status == "gone":
            reason: FetchStatus = "labelled" if raw[2] == b"labelled" else "missing"
            return LabelAppend(AppendResult("missing"), gone=raw[1].decode(), reason=reason)
        if status in ("missing", "stale", "conflict"):
            return LabelAppend(AppendResult(status))  # type: ignore[arg-type]
        if status == "replay":
            return LabelAppend(AppendResult("replay", response=raw[3].decode()))
        result = AppendResult(status, int(raw[1]), int(raw[2]), entries=_entries(raw[4]))  # type: ignore[arg-type]
        return LabelAppend(result, int(raw[5]) if len(raw) > 5 else 0)

    async def pending(self, tenant: str, name: str, now: float) -> Pending:
        keys = self._keys(tenant, name)[1:2]
        args = [repr(now - self.ttl)]
        count, oldest = await self._call(lambda: self._pending(keys=keys, args=args))
        return Pending(int(count), float(oldest) if oldest else None)

    async def forget(self, tenant: str, name: str) -> None:
        keys = self._keys(tenant, name)
        await self._call(lambda: self._redis.delete(*keys))


def open_kept_predictions(store: StateStore, ttl_seconds: int, max_kept: int) -> KeptPredictions:
    """Kept predictions on the same backend as the model state store."""
    if isinstance(store, RedisStateStore):
        return RedisKeptPredictions(store.client, store.call, ttl_seconds, max_kept)
    return MemoryKeptPredictions(store, ttl_seconds, max_kept)
