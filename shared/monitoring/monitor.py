"""The monitor of one process: OnlineModels' observer, and what the monitoring API reads.

On the request path it only buffers: audit rows, per-model counts, latency buckets and
last-seen times go to memory and are written to the state store a few tens of milliseconds
later (all tenants and models together). Once buffered RIDE_AFTER, they ride in the round
trip of the next request's own store call (shared/state/riders.py), so requests that keep
coming pay no round trip for them; if none comes within FLUSH_DELAY, the timer writes them
in one round trip of their own. One write at a time, in order: a ride is not handed over
while a flush runs, and a flush waits for a ride in flight to land. The exact metrics do not
go through this buffer: their input, the outcomes, is logged atomically with each
predict_learn's append (see shared/monitoring/fold.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any

from shared.context import request_id_var
from shared.events import EventBus
from shared.events.live import LivePublisher
from shared.monitoring import audit, latency
from shared.monitoring.comparison import Comparison
from shared.monitoring.fold import FOLD_EVERY, Folder, WorkerPool
from shared.monitoring.hooks import LabelledPrediction
from shared.monitoring.ledger import Ledger
from shared.monitoring.live import LiveSampler
from shared.monitoring.prometheus import (
    ANOMALIES_FLAGGED,
    AUDIT_DROPPED,
    LEARNED,
    OUTBOX_BACKLOG,
    PREDICTIONS,
)
from shared.state.base import MonitorWrite, Ride, StateUnavailable
from shared.state.interfaces import MonitorState

log = logging.getLogger("ml.monitoring")

FLUSH_DELAY = 0.05  # seconds a buffered row waits for others to share its round trip
# seconds buffered before a request's round trip may carry the rows (so a ride carries a
# batch under load, as a flush does); after FLUSH_DELAY the timer writes them alone
RIDE_AFTER = FLUSH_DELAY / 5
FLUSH_NOW = 2000  # buffered predictions that trigger a flush at once
MAX_BUFFERED = 50_000  # beyond this (store down), new rows are dropped, never memory
BACKLOG_EVERY = 5.0  # seconds between two reads of the outbox depth
Key = tuple[str, str]


class Monitor:
    def __init__(
        self,
        store: MonitorState,
        events: EventBus,
        *,
        audit_max_rows: int,
        cpu: Executor | None = None,
        workers: WorkerPool | None = None,
        live: LivePublisher | None = None,
        live_prediction_every: int = 0,
        live_metrics_seconds: float = 5.0,
        live_metrics_max_models: int = 1000,
        ride_after_seconds: float = RIDE_AFTER,
    ) -> None:
        self.store = store
        self.ride_after = ride_after_seconds
        self.events = events
        self.audit_max_rows = audit_max_rows
        self.folder = Folder(store, events, cpu, workers)
        # live `prediction` / `metrics` events for the SSE stream (None: not sent)
        self.live = (
            LiveSampler(
                live,
                self.ledger,
                store,
                every=live_prediction_every,
                metrics_seconds=live_metrics_seconds,
                max_models_per_tick=live_metrics_max_models,
            )
            if live is not None
            else None
        )
        self._pending: list[audit.Pending] = []
        self._buffered = 0
        self._latest: dict[Key, dict[str, float]] = {}
        self._counts: dict[Key, dict[str, float]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._buffered_at = 0.0  # monotonic time the timer was armed: the oldest row's age
        self._riding: asyncio.Future[None] | None = None  # a ride handed over, not landed
        self._flushing: asyncio.Task[None] | None = None  # a flush started, not yet swapped
        self._flush_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._folding: set[Key] = set()
        self._predictions: dict[tuple[str, str, str], Any] = {}  # Prometheus children
        self._learned_children: dict[Key, Any] = {}
        self._backlog_at = 0.0
        self._leave_ride = store.ride_along(self._take_ride)

    # ----- hooks (shared.monitoring.hooks.Observer): buffer only ---------------------------

    def predicted(
        self, tenant: str, name: str, route: str, started: float, x: Any, answer: dict[str, Any]
    ) -> None:
        self._served(tenant, name, route, started, x, answer, items=1)
        if self.live is not None:
            self.live.predicted(tenant, name, route, answer)

    def predicted_batch(
        self, tenant: str, name: str, started: float, instances: list[Any], answer: dict[str, Any]
    ) -> None:
        self._served(tenant, name, "predict_batch", started, instances, answer, len(instances))

    def scored(
        self,
        tenant: str,
        name: str,
        started: float,
        x: Any,
        answer: dict[str, Any],
        pending: int,
        y: Any = None,
    ) -> None:
        now = self._served(tenant, name, "predict_learn", started, x, answer, items=1, y=y)
        self._learned(tenant, name, now, 1)
        self._fold_when(tenant, name, pending)
        if self.live is not None:
            self.live.predicted(tenant, name, "predict_learn", answer, y)
            self.live.learning(tenant, name)

    def _fold_when(self, tenant: str, name: str, pending: int) -> None:
        if pending >= FOLD_EVERY and (tenant, name) not in self._folding:
            self._folding.add((tenant, name))  # now, not when the task starts: one at a time
            self._spawn(self._fold_in_background(tenant, name))

    def learned(self, tenant: str, name: str, started: float, count: int) -> None:
        now = time.time()
        counts = self._counts.setdefault((tenant, name), {})
        latency.record(counts, "learn", (time.perf_counter() - started) * 1000)
        self._learned(tenant, name, now, count)
        self._schedule()
        if self.live is not None:
            self.live.learning(tenant, name)

    def labelled(
        self,
        tenant: str,
        name: str,
        started: float,
        count: int,
        pending: int,
        labels: Sequence[LabelledPrediction] = (),
    ) -> None:
        counts = self._counts.setdefault((tenant, name), {})
        now = time.time()
        ms = (time.perf_counter() - started) * 1000
        latency.record(counts, "label", ms)
        self._learned(tenant, name, now, count)
        if labels and self._buffered + len(labels) <= MAX_BUFFERED:
            request_id = request_id_var.get()
            for prediction_id, outcome, y in labels:  # joined to the predictions when read
                answer = {"prediction_id": prediction_id, "outcome": outcome}
                row = (tenant, name, audit.LABEL, request_id, now, ms, None, answer, False, y)
                self._pending.append(row)
            self._buffered += len(labels)
        elif labels:
            AUDIT_DROPPED.inc(len(labels))
        self._fold_when(tenant, name, pending)
        self._schedule()
        if self.live is not None:
            self.live.learning(tenant, name)

    def failed(self, tenant: str, name: str, route: str, status: int) -> None:
        """A model route answered an error (counted per status class: 4xx or 5xx)."""
        counts = self._counts.setdefault((tenant, name), {})
        for field in (f"errors:{route}:{status // 100}xx", "errors"):
            counts[field] = counts.get(field, 0.0) + 1
        self._schedule()

    # ----- reads ---------------------------------------------------------------------------

    async def ledger(self, tenant: str, name: str) -> Ledger:
        """The model's metrics and drift state, folded up to the newest outcome."""
        return await self.folder.fold(tenant, name)

    async def comparison(self, tenant: str, shadow: str, lineage: str) -> Comparison | None:
        """A challenger's shadow compared with its champion (detectors and clusterers), folded
        up to its newest outcome; None before the shadow of `lineage` scored a sample."""
        compared = (await self.folder.fold(tenant, shadow)).compared()
        return compared if compared is not None and compared.lineage == lineage else None

    async def stats(self, tenant: str, name: str) -> dict[str, float]:
        """Counts, latency buckets and last-seen times, including this process's buffer."""
        await self.flush()
        return await self.store.read_monitor(tenant, name)

    async def recent(self, tenant: str, model: str | None, limit: int) -> list[dict[str, Any]]:
        """The newest audited predictions, newest first (of one model if given), a delayed
        label's actual and error joined to its prediction's row."""
        await self.flush()
        joined = audit.LabelJoin()
        page = max(limit, 200) if model else limit
        start = 0
        while len(joined.predictions) < limit and start < self.audit_max_rows:
            raws = await self.store.read_audit(tenant, start, start + page - 1)
            for raw in raws:
                row = audit.matches(raw, model)
                if row is not None:
                    joined.add(row)
            if len(raws) < page:
                break
            start += page
        return joined.rows(limit)

    async def clear_audit(self, tenant: str) -> int:
        """Delete the tenant's audit rows, buffered ones included."""
        dropped = sum(1 for p in self._pending if p[0] == tenant)
        self._pending = [p for p in self._pending if p[0] != tenant]
        return dropped + await self.store.clear_audit(tenant)

    async def backlog(self) -> int:
        backlog = await self.events.backlog()
        OUTBOX_BACKLOG.set(backlog)
        self._backlog_at = time.monotonic()
        return backlog

    # ----- buffering and flushing ------------------------------------------------------------

    def _served(
        self,
        tenant: str,
        name: str,
        route: str,
        started: float,
        x: Any,
        answer: dict[str, Any],
        items: int,
        y: Any = None,
    ) -> float:
        now = time.time()
        ms = (time.perf_counter() - started) * 1000
        if self._buffered < MAX_BUFFERED:
            batch = route == "predict_batch"
            self._pending.append(
                (tenant, name, route, request_id_var.get(), now, ms, x, answer, batch, y)
            )
            self._buffered += items
        else:
            AUDIT_DROPPED.inc(items)
        key = (tenant, name)
        counts = self._counts.setdefault(key, {})
        latency.record(counts, route, ms)
        counts["predictions"] = counts.get("predictions", 0.0) + items
        self._latest.setdefault(key, {})["last_prediction"] = now
        child = self._predictions.get((tenant, name, route))
        if child is None:  # labels() costs a lock and a tuple per call: resolve it once
            child = self._predictions[tenant, name, route] = PREDICTIONS.labels(tenant, name, route)
        child.inc(items)
        flagged = _flagged(answer)
        if flagged:
            ANOMALIES_FLAGGED.labels(tenant, name).inc(flagged)
        self._schedule()
        return now

    def _learned(self, tenant: str, name: str, now: float, count: int) -> None:
        counts = self._counts.setdefault((tenant, name), {})
        counts["learned"] = counts.get("learned", 0.0) + count
        self._latest.setdefault((tenant, name), {})["last_learn"] = now
        child = self._learned_children.get((tenant, name))
        if child is None:
            child = self._learned_children[tenant, name] = LEARNED.labels(tenant, name)
        child.inc(count)

    def _schedule(self) -> None:
        if self._buffered >= FLUSH_NOW:
            self._start_flush()
        elif self._timer is None:
            self._buffered_at = time.monotonic()
            self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self._start_flush)

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is None:  # one is enough: it takes everything buffered by then
            self._flushing = self._spawn(self.flush())

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _take(self) -> MonitorWrite | None:
        """Everything buffered so far, the buffer emptied (None: nothing was)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending, self._buffered = self._pending, [], 0
        latest, self._latest = self._latest, {}
        counts, self._counts = self._counts, {}
        if not (pending or latest or counts):
            return None
        return MonitorWrite(audit.encode(pending), latest, counts)

    def _take_ride(self) -> Ride | None:
        """Asked by the store before a request's call: the buffer, if due, to ride in it."""
        if self._riding is not None or self._flush_lock.locked():
            return None  # one write at a time, in order
        if not (self._pending or self._latest or self._counts):
            return None
        if time.monotonic() - self._buffered_at < self.ride_after:
            return None
        batch = self._take()
        if batch is None:
            return None
        riding = self._riding = asyncio.get_running_loop().create_future()

        def landed(error: BaseException | None) -> None:
            self._riding = None
            riding.set_result(None)
            if error is not None:
                _dropped(batch, error)

        return Ride(batch, self.audit_max_rows, landed)

    async def flush(self) -> None:
        """Write everything buffered so far (one round trip)."""
        async with self._flush_lock:
            if self._riding is not None:  # its rows are older: they land first
                await asyncio.shield(self._riding)
            self._flushing = None
            batch = self._take()
            if batch is not None:
                try:
                    await self.store.write_monitoring(batch, self.audit_max_rows)
                except StateUnavailable as exc:
                    _dropped(batch, exc)
            if time.monotonic() - self._backlog_at > BACKLOG_EVERY:
                with contextlib.suppress(Exception):  # a gauge is not worth an error
                    await self.backlog()

    async def _fold_in_background(self, tenant: str, name: str) -> None:
        """Keep the outcome list short on serving instances: one of them folds at a time."""
        lock = f"{{{tenant}:{name}}}:fold"
        try:
            if await self.store.try_lock(lock, 30_000):
                try:
                    await self.folder.advance(tenant, name)
                finally:
                    await self.store.release_lock(lock)
        except Exception:
            log.exception("background fold of %s/%s failed", tenant, name)
        finally:
            self._folding.discard((tenant, name))

    async def close(self) -> None:
        """Flush and wait for background work (runtime reset, shutdown)."""
        self._leave_ride()
        if self.live is not None:
            await self.live.close()
        await self.flush()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _dropped(batch: MonitorWrite, error: BaseException) -> None:
    rows = sum(len(r) for r in batch.audit.values())
    AUDIT_DROPPED.inc(rows)
    log.warning("monitoring write failed, %d audit rows dropped: %r", rows, error)


def _flagged(answer: dict[str, Any]) -> int:
    """Anomalies a detector's answer (or batch of answers) flagged."""
    if "results" in answer:
        return sum(1 for r in answer["results"] if r.get("is_anomaly") is True)
    return 1 if answer.get("is_anomaly") is True else 0
