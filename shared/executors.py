"""The process's named, bounded thread pools: blocking work never runs on the event loop, and
one kind of work cannot starve another (issue 11: isolation of work).

- `cpu` (CPU_WORKERS): model builds, learn batches and cold loads, large batch predictions,
  monitoring folds, pickling.
- `io` (IO_WORKERS): registry and data-set file / GCS I/O, the local event log.
- `jobs` (JOB_WORKERS): training jobs, end to end (reading their data included), so twelve
  jobs queue behind each other and never in front of a create's registry write.
- `learn` (LEARN_PROCESSES): worker processes for heavy learn batches
  (shared/learn_process.py) and monitoring folds, started on first use: threads keep the
  event loop free but not the GIL, and a thousand-sample batch into a forest holds it for
  seconds.
- `fits` (JOB_PROCESSES): worker processes that fit training jobs (shared/training/fit.py);
  the job itself (reading its data, saving its version) stays in `jobs`.
- `proofs` (PROOF_PROCESSES): worker processes that prove a new spec (shared/spec_proof.py),
  handed the proof by a `cpu` thread.

All three run WORKER_NICE steps below the serving process's CPU priority. `fits` and `proofs`
run what one tenant's input drives, so each task's end there is its own
(`IsolatedProcesses`): a fit that dies of memory or a proof stopped past its time fails
alone, where a dead worker of a `concurrent.futures` pool fails everything queued in it.

- `monitor` (CPU_WORKERS threads): the monitor's folds of the exact shared metrics, our own
  steady background work, apart from the tenants' (below).

The threads share the GIL with the event loop: each time the loop wants it back (after every
poll for I/O) it waits until the running thread is told to let go, every switch interval. At
CPython's default of 5 ms one busy pool thread made every other request wait 5 ms at each
step (tenant A's predict_learns fell from ~1,300 to ~350 req/s beside tenant B's learn
batches). So while a task of `cpu` or `jobs` runs, the interval is GIL_SWITCH_MS (0.5 ms),
and back to CPython's once none does: held short all the time it cost a busy predict_learn
a third of its rate, the folds then taking a fair share of the GIL from the event loop.

The runtime creates one `Executors` per process and passes the pools to the components
that need them; it shuts them down when it is dropped (tests, a new event loop). A serving
process keeps them to its end: ASGI lifespan is no signal of that (in-process clients send
it per session, and functions-framework never does), and at exit the pools' threads finish
what they run. Nothing uses the event loop's default executor (asyncio.to_thread), whose few
shared threads were the queue everything waited in.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import ForkServerContext
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import pebble

from shared import hashseed

if TYPE_CHECKING:
    from shared.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")


# CPython's interval as the process started (5 ms unless someone changed it before)
USUAL_SWITCH_SECONDS = sys.getswitchinterval()
# what the worker processes' fork server imports once, so each worker starts with River loaded
WORKER_MODULES = [
    "shared.learn_process",
    "shared.monitoring.fold",
    "shared.training.fit",
    "shared.spec_proof",
    "shared.catalog_loaded",
]


class ShortSwitch:
    """The process's GIL switch interval: `short` while at least one tenant task runs in a
    pool, else what it was (CPython's 5 ms). Counted across pools and threads."""

    def __init__(self, short_seconds: float) -> None:
        self.short = short_seconds
        self.usual = USUAL_SWITCH_SECONDS
        self._running = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self._running += 1
            if self._running == 1:
                sys.setswitchinterval(min(self.short, self.usual))

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0:
                sys.setswitchinterval(self.usual)

    def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        with self:
            return fn(*args, **kwargs)


class TenantWorkPool(ThreadPoolExecutor):
    """A thread pool whose tasks run with the short switch interval (builds, learn batches,
    cold loads, training jobs: work a tenant sends, which must not hold up the others)."""

    def __init__(self, workers: int, prefix: str, switch: ShortSwitch | None) -> None:
        super().__init__(workers, thread_name_prefix=prefix)
        self.switch = switch

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        if self.switch is None:
            return super().submit(fn, *args, **kwargs)
        return super().submit(self.switch.run, fn, *args, **kwargs)


class WorkerProcesses:
    """A bounded pool of worker processes made on first use, its processes started as work
    arrives, each `nice` steps below the serving process's CPU priority (`lower_priority`).

    None when `processes` is 0, or when this process does not run with the fixed hash seed:
    a worker (a fresh interpreter, started with the same environment) would not learn
    exactly as it does (shared/hashseed.py)."""

    def __init__(self, processes: int, nice: int) -> None:
        self.processes = processes
        self.nice = nice
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # asked for from the loop and from CPU threads

    def pool(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._pool is None and self.processes > 0 and hashseed.is_fixed():
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=_fork_server(),
                    initializer=lower_priority,
                    initargs=(self.nice,),
                )
            return self._pool

    def drop(self, broken: ProcessPoolExecutor) -> None:
        """Forget a pool whose worker died (it refuses all work after); the next use makes
        a new one."""
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Queued work dropped; idle workers exit."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


class IsolatedProcesses:
    """Worker processes (pebble's ProcessPool) where each task ends on its own: a task past
    the timeout it was scheduled with has its process stopped (`TimeoutError`), a task whose
    process dies fails alone (`pebble.ProcessExpired`), and the pool starts a new process in
    the place of either. Made on first use, under the rules of `WorkerProcesses`; all its
    processes start at the first task, in the thread that schedules it (which waits for the
    fork server the first time: never the event loop)."""

    def __init__(self, processes: int, nice: int) -> None:
        self.processes = processes
        self.nice = nice
        self._pool: pebble.ProcessPool | None = None
        self._lock = threading.Lock()  # pools are asked for from several threads
        self._closed = False  # shut down: no pool is made again

    def pool(self) -> pebble.ProcessPool | None:
        with self._lock:
            if self._closed:
                return None
            if self._pool is None and self.processes > 0 and hashseed.is_fixed():
                self._pool = pebble.ProcessPool(
                    self.processes,
                    initializer=lower_priority,
                    initargs=(self.nice,),
                    context=_fork_server(),
                )
            return self._pool

    def schedule(
        self, fn: Callable[..., T], args: tuple[object, ...], timeout: float | None = None
    ) -> pebble.ProcessFuture[T]:
        """`fn(*args)` in a worker, stopped past `timeout` seconds of running. Blocks while
        the pool's processes start. A pool that broke is replaced first: pebble breaks one
        whose worker died while none ran a task (the OOM killer, say), and its future then
        raises BrokenProcessPool: the task had not begun, so the caller may schedule it
        again (`call_again`)."""
        pool = self.pool()
        if pool is None:
            raise BrokenProcessPool("no worker processes (none configured, or shut down)")
        try:
            return pool.schedule(fn, args, timeout=timeout)
        except RuntimeError:  # "Unexpected error within the Pool": it broke
            self.drop(pool)
            fresh = self.pool()
            if fresh is None:
                raise BrokenProcessPool("the worker processes were shut down") from None
            try:
                return fresh.schedule(fn, args, timeout=timeout)
            except RuntimeError as exc:  # the new pool failed at once too
                raise BrokenProcessPool(str(exc)) from exc

    def drop(self, failed: pebble.ProcessPool) -> None:
        """Forget a pool that cannot run tasks; the next use makes a new one. Only the
        call that detaches it stops it (several threads may see one pool break)."""
        with self._lock:
            if self._pool is not failed:
                return
            self._pool = None
        failed.stop()
        _joined_in_background(failed)

    def shutdown(self) -> None:
        """No new tasks; the processes exit once theirs are done."""
        with self._lock:
            pool, self._pool, self._closed = self._pool, None, True
        if pool is not None:
            pool.close()
            _joined_in_background(pool)


def _joined_in_background(pool: pebble.ProcessPool) -> None:
    """Join a closed or stopped pool in a thread of its own: joining is what ends its
    processes (a stopped pool's at once, a closed one's after their tasks), and it waits."""
    threading.Thread(target=pool.join, name="ml-pool-join", daemon=True).start()


def _fork_server() -> ForkServerContext:
    """A fork server, not fork: forking a process that runs threads can copy a lock some
    other thread holds; the server forks from a clean, single-threaded state. One fork server
    per process: every pool's modules are preloaded in it."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_MODULES)
    return context


class Executors:
    """The thread pools and the worker processes, sized by settings. `switch`: the short GIL
    switch interval the tenant pools run with (None: CPython's throughout)."""

    def __init__(
        self,
        cpu_workers: int,
        io_workers: int,
        job_workers: int,
        learn_processes: int = 0,
        switch: ShortSwitch | None = None,
        *,
        fit_processes: int = 0,
        proof_processes: int = 0,
        worker_nice: int = 0,
    ) -> None:
        self.cpu = TenantWorkPool(cpu_workers, "ml-cpu", switch)
        self.jobs = TenantWorkPool(job_workers, "ml-job", switch)
        self.io = ThreadPoolExecutor(io_workers, thread_name_prefix="ml-io")
        self.monitor = ThreadPoolExecutor(cpu_workers, thread_name_prefix="ml-monitor")
        self.learn = WorkerProcesses(learn_processes, worker_nice)
        self.fits = IsolatedProcesses(fit_processes, worker_nice)
        self.proofs = IsolatedProcesses(proof_processes, worker_nice)

    @classmethod
    def from_settings(cls, settings: Settings) -> Executors:
        return cls(
            settings.cpu_workers,
            settings.io_workers,
            settings.job_workers,
            settings.learn_processes,
            _switch_of(settings.gil_switch_ms / 1000),
            fit_processes=settings.job_processes,
            proof_processes=settings.proof_processes,
            worker_nice=settings.worker_nice,
        )

    def learn_pool(self) -> ProcessPoolExecutor | None:
        """The learn worker processes (heavy learn batches, monitoring folds), or None."""
        return self.learn.pool()

    def drop_learn_pool(self, broken: ProcessPoolExecutor) -> None:
        self.learn.drop(broken)

    def shutdown(self) -> None:
        """Drop queued work and let running threads finish on their own (they cannot be
        interrupted); the event loop does not wait for them. Idle workers exit."""
        for pool in (self.cpu, self.io, self.jobs, self.monitor):
            pool.shutdown(wait=False, cancel_futures=True)
        for workers in (self.learn, self.fits, self.proofs):
            workers.shutdown()


def lower_priority(nice: int) -> None:
    """In a learn worker as it starts: run `nice` steps below the serving process. Where
    the cores are fewer than the busy processes, the kernel then gives the serving process,
    whose requests every tenant waits on, its share first, and the bulk learns the rest;
    on an idle core a worker runs at full speed all the same."""
    if nice:
        os.nice(nice)


_switches: dict[float, ShortSwitch] = {}


def _switch_of(short_seconds: float) -> ShortSwitch:
    """One ShortSwitch per interval in the process (runtimes come and go in tests; their
    counts must not restore an interval another runtime's task still relies on)."""
    return _switches.setdefault(short_seconds, ShortSwitch(short_seconds))


async def run_in(
    executor: Executor | None, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """`fn(*args, **kwargs)` in `executor`, with the caller's contextvars (request id in logs),
    as asyncio.to_thread does for the default pool. `None` is the loop's default executor:
    only for components used outside an app (CLIs, tests) that were given no pool."""
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await loop.run_in_executor(executor, call)


async def run_to_end(
    executor: Executor | None, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """`run_in` for work that mutates something the caller holds a lock on (a live model):
    a thread cannot be stopped, so a cancelled caller still waits for it to end before it
    unwinds and releases the lock; the cancellation is raised after."""
    future = asyncio.ensure_future(run_in(executor, fn, *args, **kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            try:
                await asyncio.wait({future})
            except asyncio.CancelledError:
                continue
        if not future.cancelled():
            future.exception()  # retrieved: its failure is moot, the caller was cancelled
        raise
