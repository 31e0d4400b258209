"""Folding outcomes into the shared Ledger: read, apply in seq order, compare-and-set.

Any instance may fold (a serving instance in the background once FOLD_EVERY outcomes wait,
or any instance answering GET metrics/drift); the first to store a generation wins and the
others re-read, so the ledger advances exactly once over each outcome. The winner publishes
the drift episodes its outcomes opened, so an episode is announced once.

A serving instance's background fold is River's cost per outcome (~65 us for a regressor's
metrics, windows and drift detectors): in a thread it holds the GIL every request needs. So a
large batch is folded in a worker process when there is one (LEARN_PROCESSES, the pool heavy
learns use): the stored ledger's bytes and the outcomes go there, the new ledger's bytes come
back. The same code on the same bytes gives the same floats; without a pool, or if a worker
died, the batch is folded in a thread as before.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections import OrderedDict
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from shared.events import EventBus
from shared.executors import run_in
from shared.monitoring.ledger import Episode, Ledger
from shared.monitoring.prometheus import DRIFT
from shared.state.base import OutcomeBatch
from shared.state.interfaces import OutcomeFolds

log = logging.getLogger("ml.monitoring")

# Outcomes waiting before the instance that appended one folds them. Whoever folds pays
# River's cost once per outcome (~40 us for a regressor, ~90 us for a binary classifier's
# 16 metrics); a monitoring instance answering the dashboard usually gets there first, so
# serving instances fold only models nobody watches, bounding the list.
FOLD_EVERY = 1000
FOLD_BATCH = 2000  # outcomes read per round trip
MAX_ROUNDS = 64
THREAD_ABOVE = 200  # fold larger batches in a thread, off the event loop
CACHE_SIZE = 256


def ledger_of(state: bytes | None, where: str) -> Ledger:
    """The stored ledger, or a fresh one (none yet, or written by an incompatible release:
    then it starts over, loudly)."""
    if state is None:
        return Ledger()
    try:
        ledger: Ledger = pickle.loads(state)
    except Exception:
        log.exception("monitoring state of %s is unreadable; starting afresh", where)
        return Ledger()
    return ledger


def fold_pickled(
    state: bytes | None, outcomes: list[str], where: str
) -> tuple[bytes, list[Episode], bool]:
    """In a worker process: the stored ledger with the outcomes applied, as bytes to store,
    the episodes they opened, and whether drift is open."""
    ledger = ledger_of(state, where)
    opened = ledger.apply(outcomes)
    return pickle.dumps(ledger, pickle.HIGHEST_PROTOCOL), opened, ledger.drift_open()


# a folded batch: the ledger's bytes to store, the episodes opened, whether drift is open, and
# the ledger itself (None when folded in a worker for nobody to read)
_Folded = tuple[bytes, list[Episode], bool, Ledger | None]


class WorkerPool(Protocol):
    """The worker processes (shared/executors.py's Executors): made on first use, dropped
    once one of them died."""

    def learn_pool(self) -> ProcessPoolExecutor | None: ...

    def drop_learn_pool(self, broken: ProcessPoolExecutor) -> None: ...


class Folder:
    def __init__(
        self,
        store: OutcomeFolds,
        events: EventBus,
        cpu: Executor | None = None,
        workers: WorkerPool | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.cpu = cpu  # CPU_WORKERS (shared/executors.py)
        self.workers = workers
        # the ledger this process stored last, by model: skips unpickling when nobody else
        # folded in between (the generation tells)
        self._cache: OrderedDict[tuple[str, str], tuple[int, Ledger]] = OrderedDict()

    async def fold(self, tenant: str, name: str) -> Ledger:
        """Bring the model's ledger up to date with every outcome logged so far."""
        ledger = await self._fold(tenant, name, answer=True)
        assert ledger is not None  # answering, every round makes one
        return ledger

    async def advance(self, tenant: str, name: str) -> None:
        """Fold, for nobody to read (a serving instance's background fold): a batch folded
        in a worker process is not unpickled here."""
        await self._fold(tenant, name, answer=False)

    async def _fold(self, tenant: str, name: str, *, answer: bool) -> Ledger | None:
        ledger: Ledger | None = None
        for _ in range(MAX_ROUNDS):
            batch = await self.store.read_outcomes(tenant, name, FOLD_BATCH)
            threaded = len(batch.outcomes) > THREAD_ABOVE
            folded = await self._in_worker(tenant, name, batch, answer) if threaded else None
            if folded is None:
                # a ledger handed out may still be read by a caller: a thread only ever
                # works on a fresh copy
                ledger = self._load(tenant, name, batch, cached=not threaded)
                if not batch.outcomes:
                    return ledger
                self._cache.pop((tenant, name), None)  # about to change: not the stored one
                folded = await self._in_thread(ledger, batch.outcomes, threaded)
            blob, opened, drift_open, ledger = folded
            if not await self._store(tenant, name, batch, blob, ledger, drift_open, opened):
                continue  # another instance folded first: start again from its ledger
            if len(batch.outcomes) < FOLD_BATCH:
                return ledger
        return ledger

    async def _in_thread(self, ledger: Ledger, outcomes: list[str], threaded: bool) -> _Folded:
        """Apply the outcomes to `ledger`, in the CPU pool if `threaded`."""
        if threaded:
            opened = await run_in(self.cpu, ledger.apply, outcomes)
            blob = await run_in(self.cpu, pickle.dumps, ledger, pickle.HIGHEST_PROTOCOL)
        else:
            opened = ledger.apply(outcomes)
            blob = pickle.dumps(ledger, pickle.HIGHEST_PROTOCOL)
        return blob, opened, ledger.drift_open(), ledger

    async def _in_worker(
        self, tenant: str, name: str, batch: OutcomeBatch, answer: bool
    ) -> _Folded | None:
        """fold_pickled in a worker process, the ledger unpickled here only if `answer`;
        None if there is no pool or it could not run there (then: a thread)."""
        pool = self.workers.learn_pool() if self.workers is not None else None
        if pool is None:
            return None
        folded = await self._fold_in_process(pool, tenant, name, batch)
        if folded is None:
            return None
        blob, opened, drift_open = folded
        ledger = await run_in(self.cpu, ledger_of, blob, f"{tenant}/{name}") if answer else None
        return blob, opened, drift_open, ledger

    async def _store(
        self,
        tenant: str,
        name: str,
        batch: OutcomeBatch,
        blob: bytes,
        ledger: Ledger | None,
        drift_open: bool,
        opened: list[Episode],
    ) -> bool:
        """Compare-and-set the folded ledger; False if another instance stored first."""
        consumed = len(batch.outcomes)
        if not await self.store.save_outcomes(tenant, name, batch.generation, consumed, blob):
            return False
        if ledger is not None:
            self._remember(tenant, name, batch.generation + 1, ledger)
        DRIFT.labels(tenant, name).set(1 if drift_open else 0)
        await self._announce(tenant, name, opened)
        return True

    async def _fold_in_process(
        self, pool: ProcessPoolExecutor, tenant: str, name: str, batch: OutcomeBatch
    ) -> tuple[bytes, list[Episode], bool] | None:
        """fold_pickled in a worker; None if it could not run there (then: a thread)."""
        self._cache.pop((tenant, name), None)  # about to change: not the stored one
        loop = asyncio.get_running_loop()
        where = f"{tenant}/{name}"
        try:
            # not run_in: its contextvars wrapper cannot be pickled to another process
            return await loop.run_in_executor(
                pool, fold_pickled, batch.state, batch.outcomes, where
            )
        except BrokenProcessPool:
            log.warning("a worker process died; folding %s in a thread", where)
            if self.workers is not None:
                self.workers.drop_learn_pool(pool)
            return None
        except Exception:
            log.exception("folding %s in a worker process failed; folding in a thread", where)
            return None

    def forget(self, tenant: str) -> None:
        for key in [k for k in self._cache if k[0] == tenant]:
            del self._cache[key]

    def _load(self, tenant: str, name: str, batch: OutcomeBatch, *, cached: bool) -> Ledger:
        known = self._cache.get((tenant, name)) if cached else None
        if known is not None and known[0] == batch.generation:
            self._cache.move_to_end((tenant, name))
            return known[1]
        return ledger_of(batch.state, f"{tenant}/{name}")

    def _remember(self, tenant: str, name: str, generation: int, ledger: Ledger) -> None:
        self._cache[tenant, name] = (generation, ledger)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    async def _announce(self, tenant: str, name: str, opened: list[Episode]) -> None:
        for episode in opened:
            try:
                await self.events.publish(
                    tenant,
                    "drift.detected",
                    {"model": name, **episode.as_dict()},
                    subject=name,
                    source="/online-ml/monitoring",
                )
            except Exception:
                log.exception("could not publish drift.detected for %s/%s", tenant, name)
