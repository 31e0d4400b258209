"""The process's named, bounded thread pools: blocking work never runs on the event loop, and
one kind of work cannot starve another (issue 11: isolation of work).

- `cpu` (CPU_WORKERS): model builds, learn batches and cold loads, large batch predictions,
  monitoring folds, pickling.
- `io` (IO_WORKERS): registry and data-set file / GCS I/O, the local event log.
- `jobs` (JOB_WORKERS): training jobs, end to end (reading their data included), so twelve
  jobs queue behind each other and never in front of a create's registry write.

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
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    from shared.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")


class Executors:
    """The three pools, sized by settings."""

    def __init__(self, cpu_workers: int, io_workers: int, job_workers: int) -> None:
        self.cpu = ThreadPoolExecutor(cpu_workers, thread_name_prefix="ml-cpu")
        self.io = ThreadPoolExecutor(io_workers, thread_name_prefix="ml-io")
        self.jobs = ThreadPoolExecutor(job_workers, thread_name_prefix="ml-job")

    @classmethod
    def from_settings(cls, settings: Settings) -> Executors:
        return cls(settings.cpu_workers, settings.io_workers, settings.job_workers)

    def shutdown(self) -> None:
        """Drop queued work and let running threads finish on their own (they cannot be
        interrupted); the event loop does not wait for them."""
        for pool in (self.cpu, self.io, self.jobs):
            pool.shutdown(wait=False, cancel_futures=True)


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
