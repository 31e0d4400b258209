"""The process's named, bounded thread pools: blocking work never runs on the event loop, and
one kind of work cannot starve another (issue 11: isolation of work).

- `cpu` (CPU_WORKERS): model builds, learn batches and cold loads, large batch predictions,
  monitoring folds, pickling.
- `io` (IO_WORKERS): registry and data-set file / GCS I/O, the local event log.
- `jobs` (JOB_WORKERS): training jobs, end to end (reading their data included), so twelve
  jobs queue behind each other and never in front of a create's registry write.
- `learn_pool()` (LEARN_PROCESSES): worker processes for heavy learn batches
  (shared/learn_process.py), started on first use: threads keep the event loop free but
  not the GIL, and a thousand-sample batch into a forest holds it for seconds.

The threads share the GIL with the event loop: each time the loop wants it back (after every
poll for I/O) it waits until the running thread is told to let go, every GIL_SWITCH_MS. At
CPython's default of 5 ms one busy pool thread made every other request wait 5 ms at each
step (tenant A's predict_learns fell from ~1,300 to ~350 req/s beside tenant B's learn
batches); the process sets the interval when its pools are made.

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
import sys
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from shared import hashseed

if TYPE_CHECKING:
    from shared.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")


# what the learn workers' fork server imports once, so each worker starts with River loaded
LEARN_WORKER_MODULES = ["shared.learn_process"]


class Executors:
    """The three thread pools and the learn worker processes, sized by settings."""

    def __init__(
        self, cpu_workers: int, io_workers: int, job_workers: int, learn_processes: int = 0
    ) -> None:
        self.cpu = ThreadPoolExecutor(cpu_workers, thread_name_prefix="ml-cpu")
        self.io = ThreadPoolExecutor(io_workers, thread_name_prefix="ml-io")
        self.jobs = ThreadPoolExecutor(job_workers, thread_name_prefix="ml-job")
        self.learn_processes = learn_processes
        self._learn: ProcessPoolExecutor | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Executors:
        sys.setswitchinterval(settings.gil_switch_ms / 1000)
        return cls(
            settings.cpu_workers,
            settings.io_workers,
            settings.job_workers,
            settings.learn_processes,
        )

    def learn_pool(self) -> ProcessPoolExecutor | None:
        """The learn worker processes (made on first use, their processes started as work
        arrives), or None: LEARN_PROCESSES=0, or this process does not run with the fixed hash
        seed, so a worker (a fresh interpreter, started with the same environment) would not
        learn exactly as it does (shared/hashseed.py)."""
        if self._learn is None and self.learn_processes > 0 and hashseed.is_fixed():
            # a fork server, not fork: forking a process that runs threads can copy a lock
            # some other thread holds; the server forks from a clean, single-threaded state
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(LEARN_WORKER_MODULES)
            self._learn = ProcessPoolExecutor(self.learn_processes, mp_context=context)
        return self._learn

    def drop_learn_pool(self, broken: ProcessPoolExecutor) -> None:
        """Forget a pool whose worker died (it refuses all work after); the next use makes
        a new one."""
        if self._learn is broken:
            self._learn = None
        broken.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Drop queued work and let running threads finish on their own (they cannot be
        interrupted); the event loop does not wait for them. Idle learn workers exit."""
        for pool in (self.cpu, self.io, self.jobs):
            pool.shutdown(wait=False, cancel_futures=True)
        if self._learn is not None:
            self._learn.shutdown(wait=False, cancel_futures=True)


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
