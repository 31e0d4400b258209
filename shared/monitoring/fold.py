"""Folding outcomes into the shared Ledger: read, apply in seq order, compare-and-set.

Any instance may fold (a serving instance in the background once FOLD_EVERY outcomes wait,
or any instance answering GET metrics/drift); the first to store a generation wins and the
others re-read, so the ledger advances exactly once over each outcome. The winner publishes
the drift episodes its outcomes opened, so an episode is announced once.
"""

from __future__ import annotations

import logging
import pickle
from collections import OrderedDict
from concurrent.futures import Executor

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


class Folder:
    def __init__(self, store: OutcomeFolds, events: EventBus, cpu: Executor | None = None) -> None:
        self.store = store
        self.events = events
        self.cpu = cpu  # CPU_WORKERS (shared/executors.py)
        # the ledger this process stored last, by model: skips unpickling when nobody else
        # folded in between (the generation tells)
        self._cache: OrderedDict[tuple[str, str], tuple[int, Ledger]] = OrderedDict()

    async def fold(self, tenant: str, name: str) -> Ledger:
        """Bring the model's ledger up to date with every outcome logged so far."""
        ledger = Ledger()
        for _ in range(MAX_ROUNDS):
            batch = await self.store.read_outcomes(tenant, name, FOLD_BATCH)
            threaded = len(batch.outcomes) > THREAD_ABOVE
            # a ledger handed out may still be read by a caller: a thread only ever works
            # on a fresh copy
            ledger = self._load(tenant, name, batch, cached=not threaded)
            if not batch.outcomes:
                return ledger
            self._cache.pop((tenant, name), None)  # about to change: not the stored one
            if threaded:
                opened = await run_in(self.cpu, ledger.apply, batch.outcomes)
                blob = await run_in(self.cpu, pickle.dumps, ledger, pickle.HIGHEST_PROTOCOL)
            else:
                opened = ledger.apply(batch.outcomes)
                blob = pickle.dumps(ledger, pickle.HIGHEST_PROTOCOL)
            consumed = len(batch.outcomes)
            if not await self.store.save_outcomes(tenant, name, batch.generation, consumed, blob):
                continue  # another instance folded first: start again from its ledger
            self._remember(tenant, name, batch.generation + 1, ledger)
            DRIFT.labels(tenant, name).set(1 if ledger.drift_open() else 0)
            await self._announce(tenant, name, opened)
            if consumed < FOLD_BATCH:
                return ledger
        return ledger

    def forget(self, tenant: str) -> None:
        for key in [k for k in self._cache if k[0] == tenant]:
            del self._cache[key]

    def _load(self, tenant: str, name: str, batch: OutcomeBatch, *, cached: bool) -> Ledger:
        known = self._cache.get((tenant, name)) if cached else None
        if known is not None and known[0] == batch.generation:
            self._cache.move_to_end((tenant, name))
            return known[1]
        if batch.state is None:
            return Ledger()
        try:
            return pickle.loads(batch.state)
        except Exception:  # written by an incompatible release: start over, loudly
            log.exception("monitoring state of %s/%s is unreadable; starting afresh", tenant, name)
            return Ledger()

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
