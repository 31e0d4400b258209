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

import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from shared.state import lua
from shared.state.base import AppendResult, Idempotency, LogEntry
from shared.state.group_commit import GroupCommit
from shared.state.interfaces import ModelLog, OutcomeLog, StateStore
from shared.state.redis_connection import RedisConnection
from shared.state.redis_store import RedisStateStore, report_rewound


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

FreshStatus = Literal["kept", "labelled", "behind", "stale", "missing"]


@dataclass(frozen=True)
class FreshKeep:
    """`keep_fresh`'s answer: kept; not kept because the id was labelled already; or not kept
    because the prediction was not made on the whole log — `behind` with the entries after
    `after` (apply them, predict again), `stale` (another lineage: reload) or `missing`."""

    status: FreshStatus
    entries: list[LogEntry] = field(default_factory=list)


FRESH_KEPT, FRESH_LABELLED = FreshKeep("kept"), FreshKeep("labelled")

# keeps sent in one script call at most (group commit; as predict_learn's MAX_GROUP)
MAX_KEEP_GROUP = 64


class KeptPredictions(Protocol):
    async def keep(self, tenant: str, name: str, items: list[KeepItem]) -> list[bool]:
        """Keep predictions (one round trip), each replacing an unlabelled one under its id;
        False for an id labelled already (nothing kept for it)."""

    async def keep_fresh(
        self, tenant: str, name: str, uid: str, after: int, item: KeepItem
    ) -> FreshKeep:
        """A warm predict's one round trip: atomically, if the model's log (lineage `uid`)
        still ends at `after` — the prediction was made on all of it — keep `item`; else
        keep nothing and answer the entries after `after` (or stale / missing). On Redis,
        concurrent keeps of one model at one (uid, `after`) share that round trip
        (`keep_fresh_group` by group commit); each still gets its own item's answer."""

    async def keep_fresh_group(
        self, tenant: str, name: str, uid: str, after: int, items: list[KeepItem]
    ) -> list[FreshKeep]:
        """`keep_fresh` of several items made at one (uid, `after`), as one atomic step: the
        log is checked once, then each item is kept (`kept` / `labelled` each, in order) or
        none is, and all get the one answer (`behind` with the tail, `stale`, `missing`)."""

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


class KeptLog(ModelLog, OutcomeLog, Protocol):
    """What the memory kept predictions use of the memory store."""


def new_token() -> str:
    return os.urandom(16).hex()


def new_tokens(count: int) -> list[str]:
    """`count` tokens from one read of the OS's random source (a batch keeps many)."""
    digits = os.urandom(16 * count).hex()
    return [digits[i : i + 32] for i in range(0, 32 * count, 32)]


# ----- memory:// ------------------------------------------------------------------------


@dataclass
class _Model:
    kept: OrderedDict[str, tuple[float, Kept]] = field(default_factory=OrderedDict)
    labelled: OrderedDict[str, float] = field(default_factory=OrderedDict)
    # (uid, Idempotency-Key) → (body hash, answer, expires at); one TTL for all, so insertion
    # order is expiry order and the expired ones lead
    answers: OrderedDict[tuple[str, str], tuple[str, str, float]] = field(
        default_factory=OrderedDict
    )

    def prune(self, now: float, ttl: int, max_labelled: int) -> None:
        # both are in predict order (a re-kept id moves to the end): expired ones lead
        while self.kept and next(iter(self.kept.values()))[0] + ttl <= now:
            self.kept.popitem(last=False)
        # a labelled id forgotten early is no longer kept either, so a second label of it is
        # still refused (as missing rather than labelled): the bound costs no correctness
        while self.labelled and (
            len(self.labelled) > max_labelled or next(iter(self.labelled.values())) + ttl <= now
        ):
            self.labelled.popitem(last=False)
        while self.answers and next(iter(self.answers.values()))[2] <= now:
            self.answers.popitem(last=False)


class MemoryKeptPredictions:
    """In one process, next to MemoryStateStore; its methods never suspend while mutating,
    so each is atomic on the event loop like a Lua call."""

    def __init__(self, store: KeptLog, ttl_seconds: int, max_kept: int) -> None:
        # the memory store: a label appends through its outcome log, a predict reads its tail
        self.store = store
        self.ttl, self.max_kept = ttl_seconds, max_kept
        self._models: dict[tuple[str, str], _Model] = {}

    def _model(self, tenant: str, name: str, now: float) -> _Model:
        model = self._models.get((tenant, name))
        if model is None:  # not setdefault: it would build an empty _Model every call
            model = self._models[tenant, name] = _Model()
        model.prune(now, self.ttl, self.max_kept)
        return model

    async def keep(self, tenant: str, name: str, items: list[KeepItem]) -> list[bool]:
        now = time.time()
        model = self._model(tenant, name, now)
        done = []
        kept, labelled = model.kept, model.labelled
        tokens = [new_token()] if len(items) == 1 else new_tokens(len(items))
        for (prediction_id, x, outcome), token in zip(items, tokens, strict=True):
            if prediction_id in labelled:
                done.append(False)
                continue
            kept.pop(prediction_id, None)
            kept[prediction_id] = (now, Kept(token, outcome, x))
            while len(kept) > self.max_kept:
                kept.popitem(last=False)
            done.append(True)
        return done

    async def keep_fresh(
        self, tenant: str, name: str, uid: str, after: int, item: KeepItem
    ) -> FreshKeep:
        (answer,) = await self.keep_fresh_group(tenant, name, uid, after, [item])
        return answer  # one process: no round trip to share, so no group commit

    async def keep_fresh_group(
        self, tenant: str, name: str, uid: str, after: int, items: list[KeepItem]
    ) -> list[FreshKeep]:
        read = await self.store.read_log(tenant, name, uid, after)  # never suspends
        if read.status != "ok":
            return [FreshKeep(read.status)] * len(items)
        if read.entries:
            return [FreshKeep("behind", read.entries)] * len(items)
        done = await self.keep(tenant, name, items)
        return [FreshKeep("kept" if d else "labelled") for d in done]

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
        model.prune(now, self.ttl, self.max_kept)
        if idempotency is not None:
            expires = now + idempotency_ttl
            model.answers.pop((uid, idempotency.key), None)  # to the end: expiry order
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


def _entries(flat: list[Any]) -> list[LogEntry]:
    return [
        LogEntry(int(flat[i].split(b"-", 1)[0]), flat[i + 1].decode())
        for i in range(0, len(flat), 2)
    ]


class RedisKeptPredictions:
    def __init__(self, connection: RedisConnection, ttl_seconds: int, max_kept: int) -> None:
        # the model store's connection: its client, breaker and error mapping
        self.connection = connection
        self._call = connection.call
        self._redis = connection.client
        self.ttl, self.max_kept = ttl_seconds, max_kept
        self._keep = connection.script(lua.KEEP_PREDICTION)
        self._keep_fresh = connection.script(lua.KEEP_FRESH_PREDICTIONS)
        # concurrent keeps of one model at one (uid, seq): one script call per group
        self._groups: GroupCommit[tuple[str, str, str, int], KeepItem, FreshKeep] = GroupCommit(
            self._send_group, MAX_KEEP_GROUP
        )
        self._fetch = connection.script(lua.FETCH_PREDICTIONS)
        self._label = connection.script(lua.LABEL_PREDICTIONS)
        self._pending = connection.script(lua.PENDING_PREDICTIONS)

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
            one = args(items[0])
            return [bool(await self._call(lambda: self.connection.run(self._keep, keys, one)))]

        async def many() -> list[Any]:
            return await self.connection.scripts([(self._keep, keys, args(item)) for item in items])

        return [bool(done) for done in await self._call(many)]

    async def keep_fresh(
        self, tenant: str, name: str, uid: str, after: int, item: KeepItem
    ) -> FreshKeep:
        return await self._groups.submit((tenant, name, uid, after), item)

    async def _send_group(
        self, key: tuple[str, str, str, int], items: list[KeepItem]
    ) -> list[FreshKeep]:
        return await self.keep_fresh_group(*key, items)

    async def keep_fresh_group(
        self, tenant: str, name: str, uid: str, after: int, items: list[KeepItem]
    ) -> list[FreshKeep]:
        tag = f"ml:{{{tenant}:{name}}}"
        keys = [f"{tag}:state", f"{tag}:log", *self._keys(tenant, name)]
        args: list[Any] = [uid, after, repr(time.time()), self.ttl, self.max_kept]
        for (prediction_id, x, outcome), token in zip(items, new_tokens(len(items)), strict=True):
            args += (prediction_id, f"{token}\n{outcome}\n{x}")
        raw = await self._call(lambda: self.connection.run(self._keep_fresh, keys, args))
        status = raw[0].decode()
        if status == "ok":
            return [FRESH_KEPT if done else FRESH_LABELLED for done in raw[1:]]
        report_rewound(raw, tenant, name, after)
        one = FreshKeep(status, _entries(raw[1]) if status == "behind" else [])  # type: ignore[arg-type]
        return [one] * len(items)  # read only: the tail is the same for every member

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
        raw = await self.connection.write(
            self._label, keys, args, lambda raw: raw[0] in (b"appended", b"replay")
        )
        status = raw[0].decode()
        report_rewound(raw, tenant, name, after)
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
        return RedisKeptPredictions(store.connection, ttl_seconds, max_kept)
    return MemoryKeptPredictions(store, ttl_seconds, max_kept)
