"""A background fold in a worker process stores exactly the ledger a thread would, and falls
back to a thread when the worker died."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from river.datasets import TrumpApproval

from shared.catalog import build_model
from shared.events.bus import LocalEventLog
from shared.monitoring.fold import THREAD_ABOVE, Folder
from shared.monitoring.ledger import Ledger
from shared.monitoring.outcomes import encode_outcome
from shared.state import MemoryStateStore

SAMPLES = 1_000  # past REFERENCE + RECENT: the feature drift compares too
STEPS = [{"kind": "standard_scaler", "params": {}}, {"kind": "linear_regression", "params": {}}]


class Workers:
    """Executors' worker-pool side, over a real process pool; counts what ran there."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("forkserver")
        self.pool: ProcessPoolExecutor | None = ProcessPoolExecutor(1, mp_context=context)
        self.ran: list[str] = []
        self.dropped = 0
        submit = self.pool.submit

        def counted(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
            self.ran.append(fn.__name__)
            return submit(fn, *args, **kwargs)

        self.pool.submit = counted  # type: ignore[method-assign]

    def learn_pool(self) -> ProcessPoolExecutor | None:
        return self.pool

    def drop_learn_pool(self, broken: ProcessPoolExecutor) -> None:
        self.dropped += 1
        broken.shutdown(wait=False, cancel_futures=True)
        self.pool = None


@pytest.fixture
def workers() -> Iterator[Workers]:
    made = Workers()
    yield made
    if made.pool is not None:
        made.pool.shutdown(cancel_futures=True)


async def _served(store: MemoryStateStore) -> None:
    """SAMPLES prequential outcomes of one model, as predict_learn logs them."""
    _, model = build_model({"steps": STEPS})
    await store.create_model("t", "m", "u", "{}", b"snap0")
    for seq, (x, y) in enumerate(list(TrumpApproval())[:SAMPLES]):
        answer = {"prediction": model.predict_one(x), "model_version": 1}
        model.learn_one(x, y)
        sample, outcome = json.dumps([x, y]), encode_outcome(answer, 1_700_000_000.0 + seq)
        await store.append_outcomes("t", "m", "u", seq, [sample], [outcome])


async def _stored(store: MemoryStateStore) -> dict[str, Any]:
    batch = await store.read_outcomes("t", "m", 10)
    assert batch.outcomes == [] and batch.state is not None  # everything folded
    return _report(pickle.loads(batch.state))


def _report(ledger: Ledger) -> dict[str, Any]:
    return {"metrics": ledger.metrics(), "drift": [t.drift() for t in ledger.versions.values()]}


async def _folded_in_a_thread(events: LocalEventLog) -> dict[str, Any]:
    """The reference: the same outcomes folded in a thread, as stored."""
    store = MemoryStateStore()
    await _served(store)
    await Folder(store, events).advance("t", "m")
    return await _stored(store)


async def test_a_worker_folds_exactly_what_a_thread_folds(workers: Workers, tmp_path: Path) -> None:
    events, in_worker = LocalEventLog(tmp_path), MemoryStateStore()
    reference = await _folded_in_a_thread(events)
    await _served(in_worker)
    await Folder(in_worker, events, workers=workers).advance("t", "m")
    assert workers.ran == ["fold_pickled"]  # one batch of SAMPLES (> THREAD_ABOVE) outcomes
    assert SAMPLES > THREAD_ABOVE
    assert await _stored(in_worker) == reference
    assert reference["metrics"]["versions"][0]["samples"] == SAMPLES
    assert reference["drift"][0]["features"]["features"]  # the features were compared


async def test_a_fold_answered_from_a_worker_is_the_stored_ledger(
    workers: Workers, tmp_path: Path
) -> None:
    store = MemoryStateStore()
    await _served(store)
    ledger = await Folder(store, LocalEventLog(tmp_path), workers=workers).fold("t", "m")
    assert workers.ran == ["fold_pickled"]
    assert _report(ledger) == await _stored(store)


async def test_a_dead_worker_falls_back_to_a_thread(workers: Workers, tmp_path: Path) -> None:
    events, store = LocalEventLog(tmp_path), MemoryStateStore()
    reference = await _folded_in_a_thread(events)
    await _served(store)
    assert workers.pool is not None
    workers.pool.submit(os.getpid).result()  # the worker process is up: kill it
    for pid in list(workers.pool._processes):
        os.kill(pid, signal.SIGKILL)
    await Folder(store, events, workers=workers).advance("t", "m")
    assert workers.dropped == 1
    assert await _stored(store) == reference
