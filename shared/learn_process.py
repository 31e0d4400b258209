"""Heavy learn batches: learned in a worker process, bounded per tenant (README: Isolation of
work; issue 13, the noisy neighbour).

A learn batch of LEARN_PROCESS_MIN_SAMPLES or more (a thousand samples into a forest: seconds
of CPU) learned in a thread of the serving process holds the GIL that every other tenant's
request needs. So it is learned in a worker process (LEARN_PROCESSES of them, started on
first use) on a copy of the live model: the model is pickled, the worker unpickles it, learns
the samples in order and sends it back pickled, and the caller installs the copy as the live
model, still under the model's lock. The copy is exactly the live model learned in place: a
pickle round trip is what every snapshot and every other instance's replay relies on, and the
workers run with the same fixed hash seed (shared/hashseed.py). A model that cannot be
pickled, or a worker that died, falls back to the CPU threads.

`HeavyLearns` counts each tenant's heavy batches queued or running in this instance: one more
than MAX_HEAVY_LEARNS_PER_TENANT answers 429 `learn_quota_exceeded` with Retry-After, at once,
before anything is learned, so one tenant cannot fill the workers' queue for the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from shared import learning, model_pickle
from shared.catalog import Blueprint
from shared.errors import ApiError
from shared.executors import Executors, run_in, run_to_end

log = logging.getLogger("ml.learn_process")

QUOTA_RETRY_AFTER = "1"  # seconds: a batch takes a few seconds at most to make room


class SampleFailed(Exception):
    """The sample at `index` raised in learn_one: nothing of the batch is kept."""

    def __init__(self, index: int, error: str) -> None:
        super().__init__(index, error)  # its args: what unpickling calls it with again
        self.index = index
        self.error = error  # "TypeName: message", as the caller words its 422


def learn_pickled(blob: bytes, blueprint: Blueprint, pairs: list[tuple[Any, Any]]) -> bytes:
    """In the worker: the pickled model after learning `pairs` in order, or a pickled
    SampleFailed (an exception raised here would be pickled with its traceback)."""
    model = pickle.loads(blob)
    for index, (x, y) in enumerate(pairs):
        try:
            learning.learn(model, blueprint, x, y)
        except Exception as exc:
            failed = SampleFailed(index, f"{type(exc).__name__}: {exc}")
            return pickle.dumps(failed, pickle.HIGHEST_PROTOCOL)
    return model_pickle.dumps(model)


class ProcessLearner:
    """Learns heavy batches on copies of live models in the worker processes."""

    def __init__(self, executors: Executors, min_samples: int) -> None:
        self.executors = executors
        self.min_samples = min_samples

    def takes(self, samples: int) -> bool:
        """Whether a batch this long is learned in a worker process (if there are any)."""
        return samples >= self.min_samples and self.executors.learn_pool() is not None

    async def learn(self, model: Any, blueprint: Blueprint, pairs: list[tuple[Any, Any]]) -> Any:
        """A copy of `model` that has learned `pairs` in order, or None if it cannot be
        learned in a process (not picklable, no pool, a worker died): then the caller learns
        in place. Raises SampleFailed; `model` itself is never touched."""
        pool = self.executors.learn_pool()
        if pool is None:
            return None
        cpu: Executor = self.executors.cpu
        try:
            # run_to_end: it reads the live model, whose lock the caller holds until it ends
            blob = await run_to_end(cpu, model_pickle.dumps, model)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
            return None
        loop = asyncio.get_running_loop()
        try:
            # not run_in: its contextvars wrapper cannot be pickled to another process
            learned = await loop.run_in_executor(pool, learn_pickled, blob, blueprint, pairs)
        except BrokenProcessPool:
            log.warning("a learn worker process died; learning this batch in a thread")
            self.executors.drop_learn_pool(pool)
            return None
        except Exception:  # e.g. the learned model too deep to pickle back: learn in place
            log.exception("learning in a worker process failed; learning in a thread")
            return None
        copy = await run_in(cpu, pickle.loads, learned)
        if isinstance(copy, SampleFailed):
            raise copy
        return copy


class HeavyLearns:
    """Each tenant's heavy learn batches queued or running in this instance, bounded."""

    def __init__(self, min_samples: int, per_tenant: int) -> None:
        self.min_samples = min_samples
        self.per_tenant = per_tenant
        self._active: Counter[str] = Counter()

    def active(self, tenant: str) -> int:
        return self._active[tenant]

    @contextlib.contextmanager
    def admitted(self, tenant: str, samples: int) -> Iterator[None]:
        """Count a heavy batch while it runs; 429 if the tenant has too many already."""
        if samples < self.min_samples:
            yield
            return
        if self._active[tenant] >= self.per_tenant:
            raise ApiError(
                429,
                "learn_quota_exceeded",
                f"this tenant already has {self._active[tenant]} learn batches of "
                f"{self.min_samples} samples or more under way (MAX_HEAVY_LEARNS_PER_TENANT "
                f"is {self.per_tenant}); retry when one has finished",
                {"Retry-After": QUOTA_RETRY_AFTER},
            )
        self._active[tenant] += 1
        try:
            yield
        finally:
            self._active[tenant] -= 1
            if self._active[tenant] <= 0:
                del self._active[tenant]
