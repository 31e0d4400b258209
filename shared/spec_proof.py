"""A spec is proven before it is created: built, then one synthetic sample learned and
predicted, off the event loop (in a proof worker process when there is one), within
SPEC_PROOF_SECONDS and MAX_MODEL_BYTES.

A spec River accepts at construction but fails on at learn or predict time (an invalid
tokenizer regex, an unknown MLP activation) is a 422 with River's message, never a model that
answers 500 on every call or acknowledges learns it never makes.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import threading
import time
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import pebble

from shared import learning, model_pickle
from shared.catalog import Blueprint
from shared.errors import ApiError, unavailable, unprocessable
from shared.executors import IsolatedProcesses, run_in
from shared.online import OnlineModels
from shared.schemas import ModelSpec
from shared.settings import Settings, get_settings

log = logging.getLogger("ml.spec_proof")
_POLL_SECONDS = 0.05  # how often a waiting proof thread looks whether its caller has gone
# past a proof's budget, how long before its future is given up on: a worker is started and
# the proof stopped within it, unless the pool under it was stopped
WAIT_SLACK_SECONDS = 30.0
T = TypeVar("T")


class SpecProver:
    """Proves specs off the event loop: in a thread of the CPU pool (`cpu`), which hands the
    build and trial to a proof worker process when one is up (`workers`, PROOF_PROCESSES:
    building a big ensemble holds the GIL for tens of milliseconds, which every other
    tenant's requests would wait behind), else proves in the thread itself.

    A proof in a worker that outlives SPEC_PROOF_SECONDS has its process stopped, and one
    that ends its process (out of memory, a crash in native code) fails alone: both are its
    spec's 422, other tenants' proofs in the pool go on. The first proof of a process starts
    the workers (their fork server loads River: a second or two) and is proven in its thread
    meanwhile, so no create waits for that start-up."""

    def __init__(self, cpu: Executor | None, workers: IsolatedProcesses | None = None) -> None:
        self.cpu = cpu
        self.workers = workers
        # a thread hands its proof on only once a worker is free, so a proof that has begun
        # (what the budget times) never waits in the pool's queue behind another
        self._free = threading.BoundedSemaphore(max(1, workers.processes if workers else 1))
        self._lock = threading.Lock()
        self._starting: tuple[pebble.ProcessPool, Future[int]] | None = None
        self._ever_started = False

    async def prove(self, spec: ModelSpec) -> tuple[dict[str, Any], bytes]:
        """The model's record and snapshot 0, once the spec has learned and predicted a
        sample: a flood of proofs waits for a CPU thread (503 `busy` past the budget), a
        proof slower than SPEC_PROOF_SECONDS is a 422."""
        settings = get_settings()
        budget = settings.spec_proof_seconds
        loop = asyncio.get_running_loop()
        began = asyncio.Event()
        # set once the caller has gone (a 503, or the request cancelled): a thread still
        # waiting for a worker gives up instead of proving for nobody
        abandoned = threading.Event()

        def work() -> tuple[dict[str, Any], bytes]:
            pool = self._started_pool(budget, abandoned)
            if pool is None:  # the process's first proofs, while the workers start
                if abandoned.is_set():
                    raise _busy()
                loop.call_soon_threadsafe(began.set)
                return proven(spec, settings)
            while not self._free.acquire(timeout=_POLL_SECONDS):
                if abandoned.is_set():
                    raise _busy()
            try:
                if abandoned.is_set():
                    raise _busy()
                loop.call_soon_threadsafe(began.set)
                return self._in_worker(pool, spec, settings)
            finally:
                self._free.release()

        task = asyncio.ensure_future(run_in(self.cpu, work))
        try:
            try:
                await asyncio.wait_for(began.wait(), budget)
            except TimeoutError:
                raise _busy() from None
            try:
                return await asyncio.wait_for(asyncio.shield(task), budget)
            except TimeoutError:
                # in a worker, the proof's process is stopped at the same budget; in the
                # thread (the first proofs of a process) it runs to its end
                raise _too_slow(budget) from None
        except BaseException:
            abandoned.set()
            task.cancel()  # still queued: it never runs
            task.add_done_callback(_consume)
            raise

    def _started_pool(self, budget: float, abandoned: threading.Event) -> pebble.ProcessPool | None:
        """The proof pool once its workers have answered. The first time, None until then
        (the pool is made and its workers started in the background, and the first proofs
        run in their thread); a pool made again later (its processes could not start, or it
        broke) is waited for, up to `budget`: no proof runs in the serving process after
        the workers first answered."""
        pool = self.workers.pool() if self.workers is not None else None
        if pool is None:
            if self._ever_started:  # shut down (a runtime going): never in this process
                raise unavailable("the proof worker processes have stopped; retry", 2)
            return None
        with self._lock:
            if self._starting is None or self._starting[0] is not pool:
                self._starting = (pool, _start(pool))
            started = self._starting[1]
        if not started.done() and self._ever_started:
            deadline = time.monotonic() + budget
            while not started.done():
                if abandoned.is_set() or time.monotonic() > deadline:
                    raise _busy()
                time.sleep(_POLL_SECONDS)
        if not started.done():
            return None
        if started.exception() is not None:  # it could not start: start another next time
            log.warning("the proof worker processes did not start: %s", started.exception())
            assert self.workers is not None
            self.workers.drop(pool)
            if self._ever_started:
                raise unavailable("the proof worker processes did not start; retry", 2)
            return None
        self._ever_started = True
        return pool

    def _in_worker(
        self, pool: pebble.ProcessPool, spec: ModelSpec, settings: Settings
    ) -> tuple[dict[str, Any], bytes]:
        """`proven` in a worker process, waited for in this thread (the GIL let go); the
        process is stopped once the proof has run SPEC_PROOF_SECONDS."""
        budget = settings.spec_proof_seconds
        assert self.workers is not None
        try:
            try:
                return _waited(
                    self.workers.schedule(proven_in_worker, (spec, settings), budget), budget
                )
            except BrokenProcessPool:  # the pool broke before the proof began: a new one
                self.workers.drop(pool)
                again = self.workers.schedule(proven_in_worker, (spec, settings), budget)
                return _waited(again, budget)
        except TimeoutError:
            raise _too_slow(budget) from None
        except BrokenProcessPool:
            raise unavailable("the proof worker processes are failing; retry", 2) from None
        except pebble.ProcessExpired as exc:
            # the spec's own doing (memory, native code): never retried in this process
            log.warning("a proof ended its worker process (exit code %s)", exc.exitcode)
            raise unprocessable(
                f"the spec's proof ended its worker process (exit code {exc.exitcode}); "
                "a smaller model may fit MAX_MODEL_BYTES",
                "spec_failed",
            ) from None


def _waited(future: pebble.ProcessFuture[T], budget: float) -> T:
    """The proof's result. Its process is stopped at its budget (TimeoutError); past that
    and WAIT_SLACK_SECONDS the future itself is given up on (a pool stopped under it never
    settles it), so no thread waits for good."""
    try:
        return future.result(timeout=budget + WAIT_SLACK_SECONDS)
    except TimeoutError:
        if future.done():  # the proof's own timeout: its process was stopped
            raise
        future.cancel()
        raise unavailable("the proof worker processes did not answer; retry", 2) from None


def _busy() -> ApiError:
    return unavailable("every CPU worker is busy; retry", retry_after=2, code="busy")


def _too_slow(budget: float) -> ApiError:
    return unprocessable(
        f"the spec did not build, learn and predict one sample within "
        f"SPEC_PROOF_SECONDS ({budget:g} s)",
        "spec_too_slow",
    )


def _start(pool: pebble.ProcessPool) -> Future[int]:
    """Start the workers of `pool` in a thread of its own (the first task waits until the
    fork server has loaded River); done once a worker has answered a first call."""
    started: Future[int] = Future()

    def start() -> None:
        try:
            started.set_result(pool.schedule(int).result())
        except BaseException as exc:  # a worker that died starting: reported, not raised
            started.set_exception(exc)

    threading.Thread(target=start, name="ml-proof-start", daemon=True).start()
    return started


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" warning


def proven(spec: ModelSpec, settings: Settings) -> tuple[dict[str, Any], bytes]:
    """Build, size, learn two synthetic samples and predict one (synchronous)."""
    started = time.perf_counter()
    record, blob = OnlineModels.prepare(spec)
    _check_size(len(blob), settings)
    blueprint = Blueprint(**record["blueprint"])
    trial = pickle.loads(blob)  # snapshot 0 stays the fresh estimator
    try:
        for x, y in synthetic(blueprint, record["spec"]):
            learning.learn(trial, blueprint, x, y)
        # y: what a univariate detector scores (every other model predicts from x alone)
        learning.predict(trial, blueprint, *synthetic(blueprint, record["spec"])[0])
    except ApiError:
        raise
    except Exception as exc:
        raise unprocessable(
            f"the spec fails on a sample: {type(exc).__name__}: {exc}", "spec_failed"
        ) from None
    _check_size(len(model_pickle.dumps(trial)), settings)
    if time.perf_counter() - started > settings.spec_proof_seconds:
        raise _too_slow(settings.spec_proof_seconds)
    return record, blob


def proven_in_worker(spec: ModelSpec, settings: Settings) -> tuple[dict[str, Any], bytes]:
    """`proven` in a proof worker process. What it raises comes back pickled: an ApiError
    with its fields; anything else (a bug, answered 500 as in a thread) as a RuntimeError
    naming it, since not every exception unpickles from its args (one that does not would
    break the pool for every proof queued with it)."""
    try:
        return proven(spec, settings)
    except ApiError:
        raise
    except Exception as exc:
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from exc


def _check_size(size: int, settings: Settings) -> None:
    if size > settings.max_model_bytes:
        raise unprocessable(
            f"the model pickles to {size} bytes; MAX_MODEL_BYTES is {settings.max_model_bytes}",
            "model_too_large",
        )


def synthetic(blueprint: Blueprint, spec: dict[str, Any]) -> list[tuple[Any, Any]]:
    """Two samples shaped as the model expects: text or features, and a fitting target."""
    if blueprint.task == "forecasting":
        return [(None, 1.0), (None, 2.0)]
    if blueprint.text_input:
        xs: list[Any] = ["online learning proves a spec", "a second short text sample"]
    else:
        # numbers only: a spec declares no features, and every kind takes numbers (string
        # features are checked per sample: a learn that raises is refused, learn_failed)
        named = _named_features(spec)  # features a step reads by name (agg's on / by)
        xs = [
            {"f0": 0.5, "f1": -1.25, **dict.fromkeys(named, 1.0)},
            {"f0": 1.5, "f1": 0.75, **dict.fromkeys(named, 2.0)},
        ]
    if blueprint.task == "regression" or blueprint.scores_target:
        ys: list[Any] = [1.0, 2.0]
    elif blueprint.task in learning.UNSUPERVISED:
        ys = [None, None]  # detectors and clusterers learn x alone
    elif blueprint.binary_only:
        ys = [True, False]
    else:
        params = spec["steps"][-1].get("params", {})
        # a sampler learns only the labels of its desired_dist
        classes = params.get("classes") or list(params.get("desired_dist") or {})
        ys = list(classes[:2]) if isinstance(classes, list) and len(classes) >= 2 else ["a", "b"]
    return list(zip(xs, ys, strict=True))


def _named_features(spec: dict[str, Any]) -> list[str]:
    """The feature names a spec's steps read by name: agg's `on`, agg / target_agg's `by`."""
    names: list[str] = []
    for step in spec["steps"]:
        params = step.get("params") or {}
        for value in (params.get("on"), params.get("by")):
            if isinstance(value, str):
                names.append(value)
            elif isinstance(value, list):
                names.extend(v for v in value if isinstance(v, str))
    return names
