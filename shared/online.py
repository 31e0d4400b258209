"""Online models served from a snapshot + learn log (architecture.md §4).

A warm instance keeps each model in memory with the `seq` it has applied. Before serving it
applies the log after that seq; its in-memory model only ever advances by applying the log
in seq order (its own appends included), under the model's lock. So every instance, in any
interleaving, holds exactly the model one process would build from the same ordered samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import pickle
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from shared import deadline, learning, limits, model_pickle, numbers, selectors, unsupervised
from shared.catalog import Blueprint, build_model
from shared.edge.codec import dump_text
from shared.errors import ApiError, conflict, not_found, unavailable, unprocessable
from shared.executors import run_in, run_to_end
from shared.labels import (
    PREDICTION_ID,
    Label,
    already_labelled,
    features_text,
    prediction_not_found,
)
from shared.labels import answer as labels_answer
from shared.learn_process import HeavyLearns, ProcessLearner, SampleFailed
from shared.monitoring.hooks import NullObserver, Observer
from shared.monitoring.outcomes import encode_outcome
from shared.schemas import ModelSpec, Sample
from shared.state.base import AppendResult, Idempotency, LogEntry, Snapshot
from shared.state.interfaces import OnlineState
from shared.state.predictions import Fetched, FreshKeep, Kept, KeptPredictions, LabelWrite

log = logging.getLogger("ml.online")

COLD_LOADS = Counter("ml_model_cold_loads_total", "Models unpickled from a snapshot")
SKIPPED_SAMPLES = Counter("ml_learn_skipped_total", "Logged samples whose learn_one raised")
MAX_APPEND_ATTEMPTS = 64
MAX_GROUP = 64  # predict_learns committed in one append (one Lua call) at most
CONTENDED_SECONDS = 60.0
# Learn batches, catch-ups and batch predictions longer than this run in the CPU pool, off
# the event loop (shorter ones cost less than the hop to a thread).
OFFLOAD_ABOVE = 32
Recover = Callable[[str, str], Awaitable[bool]]
# (tenant, name, incarnation, seq) after a snapshot at seq was written
Compacted = Callable[[str, str, int, int], Awaitable[None]]
# (tenant, name, uid, version, seq, route): told when a model's output is not finite
ReportDegraded = Callable[[str, str, str, int, int, str], Awaitable[None]]


@dataclass
class LiveModel:
    tenant: str
    name: str
    uid: str
    record: dict[str, Any]
    blueprint: Blueprint
    model: Any
    seq: int
    snap_seq: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    compacting: bool = False
    # Until then, catch up with the log before learning: another instance writes this model
    # too, and a trial learn on a stale model costs a reload (see _learn_then_append).
    contended_until: float = 0.0


def live_key(live: LiveModel) -> tuple[str, str]:
    return live.tenant, live.name


def blueprint_of(record: dict[str, Any]) -> Blueprint:
    return Blueprint(**record["blueprint"])


def encode_sample(x: Any, y: Any) -> str:
    """A learn log entry. x and y are checked finite by then; read back (`json.loads`) it is
    the same values in the same key order whichever codec wrote it (shared/edge/codec.py)."""
    return dump_text([x, y])


def public_record(record: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A model record as clients see it (internal ids left out)."""
    shown = {k: v for k, v in record.items() if k not in ("uid", "blueprint", "incarnation")}
    return {**shown, **extra}


class OnlineModels:
    """The process's warm models over one state store."""

    def __init__(
        self,
        store: OnlineState,
        *,
        cache_size: int = 256,
        snapshot_every: int = 1000,
        idempotency_ttl: int = 86400,
        recover: Recover | None = None,
        cpu: Executor | None = None,
        observer: Observer | None = None,
        report_degraded: ReportDegraded | None = None,
        learner: ProcessLearner | None = None,
        heavy: HeavyLearns | None = None,
    ) -> None:
        self.store = store
        self.cpu = cpu  # CPU_WORKERS: builds, learn batches, cold loads (shared/executors.py)
        # Heavy learn batches: learned in a worker process, bounded per tenant
        # (shared/learn_process.py); None: in the CPU threads, unbounded.
        self.learner = learner
        self.heavy = heavy
        # Called when the state store has no such model (memory:// after a restart): rebuild
        # it from the durable registry; True if it now exists.
        self.recover = recover
        # Told after each compaction (the registry records how far the store got).
        self.compacted: Compacted | None = None
        # Told about every prediction and learn (shared/monitoring); buffers, never awaits.
        self.observer: Observer = observer if observer is not None else NullObserver()
        # Told when a model answers a non-finite prediction (shared/degraded.py).
        self.report_degraded = report_degraded
        self.cache_size = cache_size
        self.snapshot_every = snapshot_every
        self.idempotency_ttl = idempotency_ttl
        self._cache: OrderedDict[tuple[str, str], LiveModel] = OrderedDict()
        self._loading: dict[tuple[str, str], asyncio.Lock] = {}
        # predict_learns without an Idempotency-Key waiting for the model, in arrival order
        # (group commit: whoever holds the model's lock commits them all, see _commit_group)
        self._queued: dict[tuple[str, str], list[_Queued]] = {}
        self._background: set[asyncio.Task[None]] = set()

    # ----- definitions -------------------------------------------------------------------

    @staticmethod
    def prepare(spec: ModelSpec) -> tuple[dict[str, Any], bytes]:
        """Validate a spec and build its record and snapshot 0 (the fresh estimator, pickled
        once: no instance ever rebuilds a model from its spec, so even unseeded randomness is
        the same everywhere)."""
        steps = [s.model_dump() for s in spec.steps]
        blueprint, estimator = build_model({"steps": steps})
        assert blueprint is not None
        if spec.task is not None and spec.task != blueprint.task:
            raise unprocessable(
                f"task '{spec.task}' does not match the last step, a {blueprint.task} model",
                "invalid_spec",
            )
        record = {
            "name": spec.name,
            "task": blueprint.task,
            "spec": {"steps": steps},
            "description": spec.description,
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "version": 1,
            "uid": uuid.uuid4().hex,
            "blueprint": blueprint.__dict__,
        }
        return record, model_pickle.dumps(estimator)

    async def install(
        self,
        tenant: str,
        record: dict[str, Any],
        blob: bytes,
        *,
        incarnation: int | None = None,
        seq: int = 0,
    ) -> bool:
        """Claim the name in the state store with this snapshot at `seq` (0: a new model);
        with `incarnation`, never over a newer or deleted one (shared/lifecycle.py)."""
        return await self.store.create_model(
            tenant,
            record["name"],
            record["uid"],
            json.dumps(record),
            blob,
            incarnation=incarnation,
            seq=seq,
        )

    async def replace(self, tenant: str, record: dict[str, Any], blob: bytes) -> int | None:
        """Restart the online model from `blob` (activation); every instance reloads."""
        seq = await self.store.replace_model(
            tenant, record["name"], record["uid"], json.dumps(record), blob
        )
        self._cache.pop((tenant, record["name"]), None)
        return seq

    async def snapshot(self, tenant: str, name: str) -> tuple[dict[str, Any], int, bytes]:
        """The live model caught up with the log, pickled: (record, seq, artifact)."""
        async with self._locked(tenant, name) as live:
            await self._catch_up(live)
            try:
                blob = await run_to_end(self.cpu, model_pickle.dumps, live.model)
            except RecursionError:  # a structure deeper than pickle walks (model_pickle)
                raise unprocessable(
                    "the model is nested too deeply to be written as a version",
                    "model_not_serializable",
                ) from None
            return dict(live.record), live.seq, blob

    async def record(self, tenant: str, name: str) -> dict[str, Any]:
        raw = await self.store.get_record(tenant, name)
        if raw is None:
            raise not_found("model", name)
        return json.loads(raw)

    async def records(self, tenant: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in await self.store.list_records(tenant)]

    async def delete(self, tenant: str, name: str, *, incarnation: int = 0) -> bool:
        self._cache.pop((tenant, name), None)
        return await self.store.delete_model(tenant, name, incarnation=incarnation)

    async def seq_of(self, tenant: str, name: str) -> int:
        return await self.store.log_length(tenant, name)

    def evict_all(self) -> int:
        count = len(self._cache)
        self._cache.clear()
        return count

    # ----- serving -----------------------------------------------------------------------

    async def predict(
        self,
        tenant: str,
        name: str,
        x: Any,
        keep: tuple[KeptPredictions, str] | None = None,
    ) -> dict[str, Any]:
        """Predict with the model caught up with its log. `keep` = (kept predictions, id):
        keep the prediction and the x as sent under that id in the same round trip as the
        freshness check (architecture.md §4), 409 if the id was labelled already."""
        started = time.perf_counter()
        if keep is None:
            async with self._locked(tenant, name) as live:
                x = learning.check_x(live.blueprint, x)
                await self._catch_up(live)
                answer = self._answer(live, x, live.seq)
                uid = live.uid
        else:
            x, answer, uid = await self._predict_kept(tenant, name, x, *keep)
            # the audit row carries the id, so a later label can be joined to it
            answer["prediction_id"] = keep[1]
        self.observer.predicted(tenant, name, "predict", started, x, answer)
        await self._degraded(tenant, name, uid, answer, "predict")
        return answer

    async def describe(self, tenant: str, name: str) -> dict[str, Any]:
        """What the live model is and the features it has learned (caught up with the log)."""
        async with self._locked(tenant, name) as live:
            await self._catch_up(live)
            described = describe_model(
                live.model, live.blueprint, live.record.get("version", 0), live.seq
            )
            choice = selectors.preferred(live.model, live.record.get("spec"))
            if choice is not None:  # a model selector: the candidate it predicts with
                described["preferred"] = choice
            return described

    async def predict_batch(
        self,
        tenant: str,
        name: str,
        instances: list[Any],
        *,
        prediction_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        """One result or one error per instance, in order; never all-or-nothing. Each
        prediction equals `predict` of that instance exactly (River's predict_one).
        `prediction_ids` (one per instance): each result carries its own, audited with it."""
        started = time.perf_counter()
        async with self._locked(tenant, name) as live:
            await self._catch_up(live)
            results: list[dict[str, Any]] = [{} for _ in instances]
            valid: list[int] = []
            xs: list[Any] = []
            for index, checked in enumerate(learning.check_many(live.blueprint, instances)):
                if isinstance(checked, ApiError):
                    results[index] = {"error": {"code": checked.code, "message": checked.message}}
                else:
                    valid.append(index)
                    xs.append(checked)
            predict = functools.partial(learning.predict_batch, live.model, live.blueprint, xs)
            if len(xs) > OFFLOAD_ABOVE:
                answers = await run_to_end(self.cpu, predict)
            else:
                answers = predict()
            blueprint = live.blueprint
            for index, answer in zip(valid, answers, strict=True):
                if isinstance(answer, Exception):
                    message = f"the model cannot predict this x: {answer}"
                    results[index] = {"error": {"code": "prediction_failed", "message": message}}
                    continue
                result = answer_of(blueprint, *answer)
                if prediction_ids is not None:
                    result["prediction_id"] = prediction_ids[index]
                results[index] = result
            batch = {
                "results": results,
                "model_version": live.record.get("version", 0),
                "seq": live.seq,
            }
            uid = live.uid
        self.observer.predicted_batch(tenant, name, started, instances, batch)
        if any(r.get("degraded") for r in results):
            await self._degraded(tenant, name, uid, {**batch, "degraded": True}, "predict_batch")
        return batch

    async def forecast(
        self, tenant: str, name: str, horizon: int, xs: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        async with self._locked(tenant, name) as live:
            if live.blueprint.task != "forecasting":
                raise unprocessable(
                    f"'{name}' is a {live.blueprint.task} model; forecast needs "
                    "a forecaster (holt_winters, snarimax)",
                    "not_a_forecaster",
                )
            if xs is not None:
                xs = [learning.check_x(live.blueprint, x) for x in xs]
                if len(xs) != horizon:
                    raise unprocessable("xs must hold one feature object per step of the horizon")
            await self._catch_up(live)
            answer = _finite_forecast(
                learning.forecast_steps(live.model, horizon, xs),
                horizon=horizon,
                model_version=live.record.get("version", 0),
                seq=live.seq,
            )
            uid = live.uid
        await self._degraded(tenant, name, uid, answer, "forecast")
        return answer

    async def recursive_forecast(
        self, tenant: str, name: str, window: list[float], horizon: int
    ) -> dict[str, Any]:
        """Forecast `horizon` steps of a lag regressor from `window` (most recent first):
        each prediction is fed back as in_1. The model itself does not learn."""
        async with self._locked(tenant, name) as live:
            if live.blueprint.task != "regression":
                raise unprocessable(
                    f"'{name}' is a {live.blueprint.task} model; a lag forecast needs a regressor",
                    "not_a_regressor",
                )
            await self._catch_up(live)
            lags, forecast = list(window), []
            for _ in range(horizon):
                x = {f"in_{i}": value for i, value in enumerate(lags, start=1)}
                prediction, _ = self._predict(live, x)
                forecast.append(prediction)
                if not numbers.is_finite(prediction):
                    break  # fed back, a non-finite value only breeds more
                lags = [prediction, *lags[:-1]]
            answer = _finite_forecast(
                forecast,
                horizon=horizon,
                model_version=live.record.get("version", 0),
                seq=live.seq,
            )
            uid = live.uid
        await self._degraded(tenant, name, uid, answer, "forecast")
        return answer

    async def predict_learn(
        self,
        tenant: str,
        name: str,
        x: Any,
        y: Any,
        idempotency: Idempotency | None,
        paired: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Predict with the state before this sample (in log order), then learn it. `paired`
        (a challenger's shadow): the champion's answer, logged in this outcome beside ours
        with this model's uid (its lineage), for the comparison fold."""
        if idempotency is None:
            return await self._predict_learn_grouped(tenant, name, x, y, paired)
        started = time.perf_counter()
        async with self._locked(tenant, name) as live:
            sent_x, sent_y = x, y
            data = ""
            answer: dict[str, Any] = {}

            def validate() -> list[tuple[Any, Any]]:
                # against the model the append is conditional on: after a reload (deleted and
                # recreated, activated) the sample is checked again
                nonlocal x, y, data
                x = learning.check_x(live.blueprint, sent_x)
                y = learning.check_y(live.blueprint, sent_y)
                learning.check_vocabulary(live.model, live.blueprint, [x])
                data = encode_sample(x, y)
                return [(x, y)]

            def predict_first() -> None:
                nonlocal answer
                answer = self._answer(live, x, live.seq + 1, y)

            async def append() -> tuple[AppendResult, int]:
                # the stored response is only ever read back for an Idempotency-Key retry
                stored = json.dumps(answer) if idempotency is not None else ""
                # the prediction is logged with the sample, atomically: the monitoring
                # metrics replay exactly this stream (shared/monitoring/fold.py)
                return await self.store.append_outcome(
                    tenant,
                    name,
                    live.uid,
                    live.seq,
                    data,
                    encode_outcome(answer, time.time(), _lineage(paired, live)),
                    idempotency=idempotency,
                    response=stored,
                    ttl_seconds=self.idempotency_ttl,
                )

            result, pending = await self._learn_then_append(
                live, validate, append, before=predict_first
            )
            if result.status == "replay":
                return json.loads(result.response)
            self._maybe_compact(live)
            uid = live.uid
        self.observer.scored(tenant, name, started, x, answer, pending, y=y)
        await self._degraded(tenant, name, uid, answer, "predict_learn")
        return answer

    async def _predict_learn_grouped(
        self, tenant: str, name: str, x: Any, y: Any, paired: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """predict_learn by group commit (architecture.md §4): the request queues its sample;
        whichever request then holds the model's lock commits every queued sample in arrival
        order — each predicted on the copy exactly as it stands before it, then learned — in
        one conditional append. A request whose sample a leader already committed only reads
        its answer."""
        started = time.perf_counter()
        key = (tenant, name)
        mine = _Queued(x, y, asyncio.get_running_loop().create_future(), paired)
        self._queued.setdefault(key, []).append(mine)
        try:
            async with self._locked(tenant, name) as live:
                if not mine.future.done():
                    queue = self._queued.get(key, [])
                    group = queue[:MAX_GROUP]
                    del queue[:MAX_GROUP]
                    if not queue:
                        self._queued.pop(key, None)
                    await self._commit_group(live, group)
        finally:
            if not mine.future.done():  # left before any leader took it (deadline, cancel)
                queue = self._queued.get(key, [])
                if mine in queue:
                    queue.remove(mine)
        if not mine.future.done():  # deferred by a sample that failed to learn: lead again
            return await self._predict_learn_grouped(tenant, name, x, y, paired)
        checked, answer, pending, uid = mine.future.result()
        self.observer.scored(tenant, name, started, checked, answer, pending, y=mine.y)
        await self._degraded(tenant, name, uid, answer, "predict_learn")
        return answer

    async def _commit_group(self, live: LiveModel, group: list[_Queued]) -> None:
        """Predict-then-learn each queued sample on the copy in order, then append them all
        with their predictions in one atomic Lua call conditional on the log still ending at
        the copy's seq (as `_learn_then_append` does for one). Each sample is predicted on
        exactly the state before it in log order, so G1 holds per sample. A sample that is
        invalid or cannot be predicted fails alone; one whose learn raises fails alone and
        the others are deferred (the copy is dropped, nothing appended), to be committed by
        their own requests on a reloaded copy."""
        try:
            for _ in range(MAX_APPEND_ATTEMPTS):
                if live.contended_until > time.monotonic():
                    await self._catch_up(live)
                taken: list[tuple[_Queued, Any, str, dict[str, Any]]] = []
                for entry in group:
                    try:
                        x = learning.check_x(live.blueprint, entry.x)
                        y = learning.check_y(live.blueprint, entry.y)
                        learning.check_vocabulary(live.model, live.blueprint, [x])
                        answer = self._answer(live, x, live.seq + len(taken) + 1, y)
                        data = encode_sample(x, y)
                    except ApiError as exc:
                        entry.future.set_exception(exc)
                        continue
                    try:
                        self._trial_learn(live, [(x, y)])  # a failure drops the copy
                    except ApiError as exc:
                        entry.future.set_exception(exc)
                        self._requeue(live, [e for e in group if not e.future.done()])
                        return
                    taken.append((entry, x, data, answer))
                if not taken:
                    return
                now = time.time()
                try:
                    result, pending = await self.store.append_outcomes(
                        live.tenant,
                        live.name,
                        live.uid,
                        live.seq,
                        [data for _, _, data, _ in taken],
                        [
                            encode_outcome(answer, now, _lineage(entry.paired, live))
                            for entry, _, _, answer in taken
                        ],
                    )
                except BaseException:  # store down, timeout, cancelled: maybe appended
                    self._evict(live)  # the next request reloads what the log really holds
                    raise
                if result.status == "appended":
                    if result.first != live.seq + 1:
                        self._evict(live)
                        raise ApiError(503, "log_gap", "learn log gap; retry", {"Retry-After": "1"})
                    live.seq = result.last
                    for entry, x, _, answer in taken:
                        entry.future.set_result((x, answer, pending, live.uid))
                    self._maybe_compact(live)
                    return
                # nothing appended: the copy learned samples the log does not hold there
                if result.status in ("behind", "stale"):
                    live.contended_until = time.monotonic() + CONTENDED_SECONDS
                    await self._resolve(live, "stale")  # reload in place, then redo them all
                    group = [entry for entry, _, _, _ in taken]
                    continue
                self._evict(live)
                await self._resolve(live, result.status)  # raises (missing)
            raise unavailable("too much contention on this model; retry", code="contention")
        except Exception as exc:
            for entry in group:
                if not entry.future.done():
                    entry.future.set_exception(exc)
        except BaseException:  # the leading request was cancelled: the others may retry
            for entry in group:
                if not entry.future.done():
                    entry.future.set_exception(
                        unavailable("the write was interrupted; retry", code="interrupted")
                    )
            raise

    def _requeue(self, live: LiveModel, entries: list[_Queued]) -> None:
        """Deferred samples go back to the front of the queue, in their order."""
        if entries:
            key = live_key(live)
            self._queued[key] = [*entries, *self._queued.get(key, [])]

    async def learn(
        self, tenant: str, name: str, samples: list[Sample], idempotency: Idempotency | None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        limits.check_samples(len(samples))
        with self._heavy_admitted(tenant, len(samples)):
            return await self._learn(tenant, name, samples, idempotency, started)

    async def _learn(
        self,
        tenant: str,
        name: str,
        samples: list[Sample],
        idempotency: Idempotency | None,
        started: float,
    ) -> dict[str, Any]:
        async with self._locked(tenant, name) as live:
            data: list[str] = []

            def validate() -> list[tuple[Any, Any]]:
                # against the model the append is conditional on (see predict_learn)
                nonlocal data
                pairs = [
                    (learning.check_x(live.blueprint, s.x), learning.check_y(live.blueprint, s.y))
                    for s in samples
                ]
                learning.check_vocabulary(live.model, live.blueprint, [x for x, _ in pairs])
                data = [encode_sample(x, y) for x, y in pairs]
                return pairs

            async def append() -> tuple[AppendResult, int]:
                result = await self.store.append(
                    tenant,
                    name,
                    live.uid,
                    live.seq,
                    data,
                    expected=True,
                    idempotency=idempotency,
                    ttl_seconds=self.idempotency_ttl,
                )
                return result, 0

            offload = len(samples) > OFFLOAD_ABOVE  # a long batch: the CPU pool, off the loop
            in_process = self.learner is not None and self.learner.takes(len(samples))
            result, _ = await self._learn_then_append(
                live, validate, append, offload=offload, in_process=in_process
            )
            if result.status == "appended":
                self._maybe_compact(live)
                self.observer.learned(tenant, name, started, len(data))
            return {
                "learned": result.last - result.first + 1,
                "first_seq": result.first,
                "last_seq": result.last,
            }

    async def learn_labelled(
        self,
        tenant: str,
        name: str,
        labels: list[Label],
        idempotency: Idempotency | None,
        kept: KeptPredictions,
    ) -> tuple[dict[str, Any], list[Sample]]:
        """Delayed labels: learn each label with the features kept when it was predicted,
        through the learn log (seq at label time, learn-then-append as `learn`), the kept
        prediction logged as the sample's monitoring outcome. A bad label fails alone (one
        error per item). Returns the answer and the samples learned (for the shadow)."""
        started = time.perf_counter()
        # an id no predict could have answered was never kept
        errors: dict[int, ApiError] = {
            index: prediction_not_found(label.prediction_id[:128])
            for index, label in enumerate(labels)
            if not PREDICTION_ID.match(label.prediction_id)
        }
        async with self._locked(tenant, name) as live:
            for _ in range(MAX_APPEND_ATTEMPTS):
                now = time.time()
                open_ = [i for i in range(len(labels)) if i not in errors]
                if not open_:
                    break
                ids = list(dict.fromkeys(labels[i].prediction_id for i in open_))
                fetched = await kept.fetch(tenant, name, live.uid, ids, now, idempotency)
                if fetched.conflict:
                    raise _idempotency_conflict()
                if fetched.replay is not None:
                    return json.loads(fetched.replay), []
                chosen = self._choose_labels(live, labels, open_, fetched, errors)
                if not chosen:
                    break
                try:
                    result, pending, answer, pairs = await self._append_labels(
                        live, labels, chosen, errors, now, idempotency, kept
                    )
                except _LabelFailed as failed:  # nothing learned yet: drop it, try the rest
                    errors[failed.index] = failed.error
                    continue
                except _LabelGone as gone:
                    # the copy learned samples the log does not hold: reload it, try the rest
                    for index in open_:
                        if labels[index].prediction_id == gone.prediction_id:
                            errors[index] = _fetch_error(gone.prediction_id, gone.reason)
                    await self._resolve(live, "stale")
                    continue
                if result.status == "replay":
                    return json.loads(result.response), []
                self._maybe_compact(live)
                audited = [
                    (labels[index].prediction_id, found.outcome, y)
                    for (index, found), (_, y) in zip(chosen, pairs, strict=True)
                ]
                self.observer.labelled(tenant, name, started, len(pairs), pending, audited)
                return answer, [Sample(x=x, y=y) for x, y in pairs]
            else:
                raise unavailable("too much contention on this model; retry", code="contention")
        return labels_answer(labels, {}, errors), []

    async def _append_labels(
        self,
        live: LiveModel,
        labels: list[Label],
        chosen: list[tuple[int, Kept]],
        errors: dict[int, ApiError],
        now: float,
        idempotency: Idempotency | None,
        kept: KeptPredictions,
    ) -> tuple[AppendResult, int, dict[str, Any], list[tuple[Any, Any]]]:
        """One learn-then-append of the chosen labels (`learn_labelled`'s attempt)."""
        writes: list[LabelWrite] = []
        pairs: list[tuple[Any, Any]] = []
        answer: dict[str, Any] = {}

        def validate() -> list[tuple[Any, Any]]:
            # against the model the append is conditional on (see predict_learn)
            nonlocal writes, pairs
            pairs = []
            for index, found in chosen:
                try:
                    pairs.append(_labelled_pair(live, found, labels[index].y))
                except ApiError as exc:
                    raise _LabelFailed(index, exc) from None
            learning.check_vocabulary(live.model, live.blueprint, [x for x, _ in pairs])
            writes = [
                LabelWrite(labels[i].prediction_id, k.token, k.outcome, encode_sample(x, y))
                for (i, k), (x, y) in zip(chosen, pairs, strict=True)
            ]
            return pairs

        async def append() -> tuple[AppendResult, int]:
            nonlocal answer
            seqs = {index: live.seq + 1 + n for n, (index, _) in enumerate(chosen)}
            answer = labels_answer(labels, seqs, errors)
            done = await kept.label(
                live.tenant,
                live.name,
                live.uid,
                live.seq,
                writes,
                now,
                idempotency,
                json.dumps(answer) if idempotency is not None else "",
                self.idempotency_ttl,
            )
            if done.gone is not None:  # labelled or expired since the fetch
                raise _LabelGone(done.gone, done.reason)
            return done.result, done.pending_outcomes

        offload = len(chosen) > OFFLOAD_ABOVE
        result, pending = await self._learn_then_append(live, validate, append, offload=offload)
        return result, pending, answer, pairs

    @staticmethod
    def _choose_labels(
        live: LiveModel,
        labels: list[Label],
        open_: list[int],
        fetched: Fetched,
        errors: dict[int, ApiError],
    ) -> list[tuple[int, Kept]]:
        """The labels to learn: each id found once and its (x, y) valid; the others get
        their error in `errors` (a second label of one id in one request is a 409 too)."""
        chosen: list[tuple[int, Kept]] = []
        taken: set[str] = set()
        for index in open_:
            pid = labels[index].prediction_id
            found = fetched.kept[pid]
            if isinstance(found, str):
                errors[index] = _fetch_error(pid, found)
            elif pid in taken:
                errors[index] = already_labelled(pid)
            else:
                try:
                    _labelled_pair(live, found, labels[index].y)
                except ApiError as exc:
                    errors[index] = exc
                    continue
                chosen.append((index, found))
                taken.add(pid)
        return chosen

    # ----- internals ---------------------------------------------------------------------

    def _predict(self, live: LiveModel, x: Any, y: Any = None) -> tuple[Any, Any]:
        try:
            return learning.predict(live.model, live.blueprint, x, y)
        except (ValueError, TypeError, KeyError, ZeroDivisionError) as exc:
            raise unprocessable(
                f"the model cannot predict this x: {exc}", "prediction_failed"
            ) from None

    def _answer(self, live: LiveModel, x: Any, seq: int, y: Any = None) -> dict[str, Any]:
        """`y`: what a univariate detector scores (predict_learn's sample); else unused."""
        answer = answer_of(live.blueprint, *self._predict(live, x, y))
        answer["model_version"] = live.record.get("version", 0)
        answer["seq"] = seq
        return answer

    async def _predict_kept(
        self, tenant: str, name: str, sent: Any, kept: KeptPredictions, prediction_id: str
    ) -> tuple[Any, dict[str, Any], str]:
        """Predict on the copy as it is, then keep the prediction conditional on the log still
        ending at the copy's seq: one round trip when the copy is current (the usual case),
        else the missed entries come back instead, are applied, and the step is retried. So
        the prediction kept and answered was always made on the whole log.

        The model's lock covers only the prediction, not the round trip: concurrent predicts
        of one model keep theirs side by side instead of one round trip after another (a
        predict never changes the copy; a learn that lands in between makes the keep answer
        `behind`, and the predict is made again on the copy caught up)."""
        features = ""  # encoded after the first prediction, as the keep has always been
        missed: tuple[str, int, FreshKeep] | None = None  # (uid, seq) the keep was tried at
        for _ in range(MAX_APPEND_ATTEMPTS):
            async with self._locked(tenant, name) as live:
                if missed is not None and (live.uid, live.seq) == missed[:2]:
                    # nobody caught the copy up meanwhile: the keep's answer does it
                    if missed[2].status == "behind":
                        await self._apply_off_loop(live, missed[2].entries)
                    else:
                        await self._resolve(live, missed[2].status)
                x = learning.check_x(live.blueprint, sent)
                try:
                    answer = self._answer(live, x, live.seq)
                except ApiError:  # maybe only the copy's lag: answer as the current model does
                    await self._catch_up(live)
                    answer = self._answer(live, x, live.seq)
                uid, seq = live.uid, live.seq
            features = features or features_text(sent)
            item = (prediction_id, features, encode_outcome(answer, time.time()))
            fresh = await kept.keep_fresh(tenant, name, uid, seq, item)
            if fresh.status == "kept":
                return x, answer, uid
            if fresh.status == "labelled":
                raise already_labelled(prediction_id)
            missed = (uid, seq, fresh)
        raise unavailable("too much contention on this model; retry", code="contention")

    async def _learn_then_append(
        self,
        live: LiveModel,
        validate: Callable[[], list[tuple[Any, Any]]],
        append: Callable[[], Awaitable[tuple[AppendResult, int]]],
        before: Callable[[], None] | None = None,
        *,
        offload: bool = False,
        in_process: bool = False,
    ) -> tuple[AppendResult, int]:
        """Learn the samples on the live model, then append them conditionally on the seq it
        was at: a sample whose learn raises is never acknowledged (422 learn_failed, nothing
        appended), and a log that moved meanwhile makes the live model reload and try again,
        so it still only ever holds the log applied in seq order. `in_process`: learned on a
        copy in a worker process (shared/learn_process.py), which then becomes the live
        model."""
        for _ in range(MAX_APPEND_ATTEMPTS):
            if live.contended_until > time.monotonic():
                await self._catch_up(live)
            # offloaded work runs to its end even if the caller goes: the model's lock is held
            pairs = await run_to_end(self.cpu, validate) if offload else validate()
            if before is not None:
                before()  # predict_learn predicts with the state before its sample
            if in_process:
                await self._learn_in_process(live, pairs)
            elif offload:
                await run_to_end(self.cpu, self._trial_learn, live, pairs)
            else:
                self._trial_learn(live, pairs)
            try:
                result, pending = await append()
            except BaseException:  # store down, timeout, cancelled: maybe not appended
                self._evict(live)  # the next request reloads what the log really holds
                raise
            if result.status == "appended":
                if result.first != live.seq + 1:  # the store appended after entries we lack
                    self._evict(live)
                    raise ApiError(503, "log_gap", "learn log gap; retry", {"Retry-After": "1"})
                live.seq = result.last
                return result, pending
            # nothing appended: the live model learned samples the log does not hold there
            if result.status in ("behind", "stale"):
                live.contended_until = time.monotonic() + CONTENDED_SECONDS
                await self._resolve(live, "stale")  # reload in place, then try again
                continue
            self._evict(live)
            if result.status == "replay":
                return result, pending
            await self._resolve(live, result.status)  # raises (conflict, missing)
        raise unavailable("too much contention on this model; retry", code="contention")

    def _trial_learn(self, live: LiveModel, pairs: list[tuple[Any, Any]]) -> None:
        for index, (x, y) in enumerate(pairs):
            try:
                learning.learn(live.model, live.blueprint, x, y)
            except Exception as exc:
                # the model may be half-changed: drop it, the next request reloads it
                self._evict(live)
                raise _learn_failed(index, len(pairs), f"{type(exc).__name__}: {exc}") from None

    async def _learn_in_process(self, live: LiveModel, pairs: list[tuple[Any, Any]]) -> None:
        """`_trial_learn` on a copy in a worker process; the copy becomes the live model (the
        caller holds its lock). Where no worker can take it, in the CPU threads."""
        assert self.learner is not None
        try:
            copy = await self.learner.learn(live.model, live.blueprint, pairs)
        except SampleFailed as failed:  # the live model was never touched
            raise _learn_failed(failed.index, len(pairs), failed.error) from None
        if copy is None:
            await run_to_end(self.cpu, self._trial_learn, live, pairs)
        else:
            live.model = copy

    def _heavy_admitted(self, tenant: str, samples: int) -> contextlib.AbstractContextManager[None]:
        """MAX_HEAVY_LEARNS_PER_TENANT: 429 when the tenant has too many heavy batches."""
        if self.heavy is None:
            return contextlib.nullcontext()
        return self.heavy.admitted(tenant, samples)

    def _evict(self, live: LiveModel) -> None:
        if self._cache.get((live.tenant, live.name)) is live:
            del self._cache[(live.tenant, live.name)]

    async def _degraded(
        self, tenant: str, name: str, uid: str, answer: dict[str, Any], route: str
    ) -> None:
        if answer.get("degraded") and self.report_degraded is not None:
            version = int(answer.get("model_version") or 0)
            seq = int(answer.get("seq") or 0)
            try:
                await self.report_degraded(tenant, name, uid, version, seq, route)
            except Exception:  # reporting must never fail the answer itself
                log.exception("could not report %s/%s as degraded", tenant, name)

    def _locked(self, tenant: str, name: str) -> _ModelLock:
        return _ModelLock(self, tenant, name)

    async def _live(self, tenant: str, name: str) -> LiveModel:
        key = (tenant, name)
        live = self._cache.get(key)
        if live is not None:
            self._cache.move_to_end(key)
            return live
        loading = self._loading.setdefault(key, asyncio.Lock())
        await deadline.acquire(loading, f"model '{name}' (loading)")
        try:
            live = self._cache.get(key)
            if live is None:
                snapshot = await self.store.load(tenant, name)
                if (
                    snapshot is None
                    and self.recover is not None
                    and await self.recover(tenant, name)
                ):
                    snapshot = await self.store.load(tenant, name)
                if snapshot is None:
                    raise not_found("model", name)
                live = await run_in(self.cpu, self._materialize, tenant, name, snapshot)
                self._cache[key] = live
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        finally:
            loading.release()
        self._loading.pop(key, None)
        return live

    def _materialize(self, tenant: str, name: str, snapshot: Snapshot) -> LiveModel:
        COLD_LOADS.inc()
        record = json.loads(snapshot.record)
        live = LiveModel(
            tenant,
            name,
            snapshot.uid,
            record,
            blueprint_of(record),
            pickle.loads(snapshot.blob),
            snapshot.seq,
            snapshot.seq,
        )
        self._apply(live, snapshot.tail)
        return live

    async def _catch_up(self, live: LiveModel) -> None:
        for _ in range(MAX_APPEND_ATTEMPTS):
            read = await self.store.read_log(live.tenant, live.name, live.uid, live.seq)
            if read.status == "ok":
                await self._apply_off_loop(live, read.entries)
                return
            await self._resolve(live, read.status)

    async def _resolve(self, live: LiveModel, status: str) -> None:
        """React to a non-success store answer: reload a stale model, 404 a missing one."""
        if status == "conflict":
            raise conflict(
                "this Idempotency-Key was used with another request body", "idempotency_conflict"
            )
        snapshot = await self.store.load(live.tenant, live.name) if status == "stale" else None
        if snapshot is None and self.recover is not None and await self.recover(*live_key(live)):
            snapshot = await self.store.load(live.tenant, live.name)  # the store lost it
        if snapshot is None:
            self._cache.pop((live.tenant, live.name), None)
            raise not_found("model", live.name)
        fresh = await run_in(self.cpu, self._materialize, live.tenant, live.name, snapshot)
        live.uid, live.record, live.blueprint = fresh.uid, fresh.record, fresh.blueprint
        live.model, live.seq, live.snap_seq = fresh.model, fresh.seq, fresh.snap_seq

    async def _apply_off_loop(self, live: LiveModel, entries: list[LogEntry]) -> None:
        """`_apply`, in the CPU pool when there are many (the caller holds the model's lock)."""
        if len(entries) > OFFLOAD_ABOVE:
            await run_to_end(self.cpu, self._apply, live, entries)
        else:
            self._apply(live, entries)

    def _apply(self, live: LiveModel, entries: list[LogEntry]) -> None:
        for entry in entries:
            if entry.seq <= live.seq:
                continue
            if entry.seq != live.seq + 1:
                raise ApiError(503, "log_gap", "learn log gap; retry", {"Retry-After": "1"})
            x, y = json.loads(entry.data)
            try:
                learning.learn(live.model, live.blueprint, x, y)
            except Exception:  # deterministic everywhere: every replay skips it the same way
                SKIPPED_SAMPLES.inc()
                log.exception("learn_one failed on %s/%s seq %d", live.tenant, live.name, entry.seq)
            live.seq = entry.seq

    def _maybe_compact(self, live: LiveModel) -> None:
        if live.compacting or live.seq - live.snap_seq < self.snapshot_every:
            return
        live.compacting = True
        task = asyncio.get_running_loop().create_task(self._compact(live))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _compact(self, live: LiveModel) -> None:
        """Write a newer snapshot and trim the log before it, under a short store lock."""
        lock = f"{{{live.tenant}:{live.name}}}:compact"
        try:
            if not await self.store.try_lock(lock, 30_000):
                # another instance is compacting: look again a quarter period later
                live.snap_seq = max(live.snap_seq, live.seq - self.snapshot_every * 3 // 4)
                return
            try:
                async with live.lock:
                    seq, uid = live.seq, live.uid
                    blob = await run_to_end(self.cpu, model_pickle.dumps, live.model)
                if await self.store.save_snapshot(live.tenant, live.name, uid, seq, blob):
                    live.snap_seq = max(live.snap_seq, seq)
                    if self.compacted is not None:
                        incarnation = int(live.record.get("incarnation", 0))
                        await self.compacted(live.tenant, live.name, incarnation, seq)
            finally:
                await self.store.release_lock(lock)
        except Exception:
            log.exception("compaction of %s/%s failed", live.tenant, live.name)
        finally:
            live.compacting = False

    async def drain(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _learn_failed(index: int, count: int, error: str) -> ApiError:
    which = f"sample {index}" if count > 1 else "this sample"
    return unprocessable(
        f"the model cannot learn {which} ({error}); nothing was learned", "learn_failed"
    )


def answer_of(blueprint: Blueprint, prediction: Any, extra: Any) -> dict[str, Any]:
    """The answer body of the model's task: a prediction (and proba), a detector's score (and
    is_anomaly), a clusterer's cluster (shared/unsupervised.py)."""
    if blueprint.task in learning.UNSUPERVISED:
        return unsupervised.answer(blueprint.task, prediction, extra)
    return finite_answer(prediction, extra)


def finite_answer(prediction: Any, proba: dict[str, float] | None) -> dict[str, Any]:
    """A prediction as answered: a non-finite number becomes null, with `degraded: true`."""
    if proba is None and type(prediction) is float and math.isfinite(prediction):
        return {"prediction": prediction}  # a regressor's usual answer: nothing to replace
    answer: dict[str, Any] = {"prediction": numbers.finite_or_none(prediction)}
    degraded = not numbers.output_is_finite(prediction)
    if proba is not None:
        degraded = degraded or not numbers.output_is_finite(proba)
        answer["proba"] = {k: numbers.finite_or_none(v) for k, v in proba.items()}
    if degraded:
        answer["degraded"] = True
    return answer


def describe_model(
    model: Any, blueprint: Blueprint, version: int, seq: int | None
) -> dict[str, Any]:
    """A model as a protocol describes it: its task, whether it reads raw text, and the
    features it has learned with their kinds (shared/learning.py SCHEMA_ATTR)."""
    return {
        "task": blueprint.task,
        "text_input": blueprint.text_input,
        "features": learning.schema_of(model),
        "model_version": version,
        "seq": seq,
    }


def _finite_forecast(forecast: list[Any] | None, **rest: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"forecast": forecast, **rest}
    if forecast is not None and not numbers.output_is_finite(forecast):
        answer["forecast"] = [numbers.finite_or_none(v) for v in forecast]
        answer["degraded"] = True
    return answer


@dataclass(eq=False)
class _Queued:
    """One predict_learn waiting for a group commit; its future gets (the checked x, the
    answer, the outcomes waiting to be folded, the model's uid) or the request's error."""

    x: Any
    y: Any
    future: asyncio.Future[tuple[Any, dict[str, Any], int, str]]
    paired: dict[str, Any] | None = None  # a shadow's: the champion's answer


def _lineage(paired: dict[str, Any] | None, live: LiveModel) -> dict[str, Any] | None:
    """The champion's answer as a shadow logs it, with the shadow's uid: a restarted shadow
    (a new uid) starts a new comparison."""
    return None if paired is None else {**paired, "g": live.uid}


class _ModelLock:
    """`async with models._locked(t, n) as live`: the warm model, held exclusively."""

    def __init__(self, models: OnlineModels, tenant: str, name: str) -> None:
        self.models, self.tenant, self.name = models, tenant, name
        self.live: LiveModel | None = None

    async def __aenter__(self) -> LiveModel:
        while True:
            live = await self.models._live(self.tenant, self.name)
            # bounded by the request's deadline: a waiter never waits out every request
            # queued ahead of it (shared/deadline.py)
            await deadline.acquire(live.lock, f"model '{self.name}'")
            if self.models._cache.get((self.tenant, self.name)) is live:
                self.live = live
                return live
            live.lock.release()  # evicted or replaced while we waited; take the new one

    async def __aexit__(self, *exc: object) -> None:
        assert self.live is not None
        self.live.lock.release()


class _LabelFailed(Exception):
    """A label whose kept x or whose y is invalid for the model (before anything learned)."""

    def __init__(self, index: int, error: ApiError) -> None:
        super().__init__(error.message)
        self.index, self.error = index, error


class _LabelGone(Exception):
    """A kept prediction was labelled or expired between the fetch and the append."""

    def __init__(self, prediction_id: str, reason: str) -> None:
        super().__init__(prediction_id)
        self.prediction_id, self.reason = prediction_id, reason


def _labelled_pair(live: LiveModel, found: Kept, y: Any) -> tuple[Any, Any]:
    # json.loads keeps the keys in the order they arrived at predict time: River sums over a
    # dict in key order, so the label learns exactly the x that was predicted
    x = learning.check_x(live.blueprint, json.loads(found.x))
    return x, learning.check_y(live.blueprint, y)


def _fetch_error(prediction_id: str, status: str) -> ApiError:
    if status == "labelled":
        return already_labelled(prediction_id)
    return prediction_not_found(prediction_id)


def _idempotency_conflict() -> ApiError:
    return conflict(
        "this Idempotency-Key was used with another request body", "idempotency_conflict"
    )
