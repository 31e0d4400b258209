"""The process's pools: tenant work (cpu, jobs) runs with the short GIL switch interval, and
only while some of it runs; the monitor's folds and I/O leave CPython's interval alone."""

from __future__ import annotations

import sys
import threading

import pytest

from shared.executors import USUAL_SWITCH_SECONDS, Executors, ShortSwitch, run_in

SHORT = 0.0005


@pytest.fixture
def executors() -> Executors:
    pools = Executors(2, 2, 2, switch=ShortSwitch(SHORT))
    yield pools
    pools.shutdown()


async def test_tenant_pools_run_with_the_short_interval_and_restore_it(
    executors: Executors,
) -> None:
    assert sys.getswitchinterval() == USUAL_SWITCH_SECONDS
    assert await run_in(executors.cpu, sys.getswitchinterval) == SHORT
    assert await run_in(executors.jobs, sys.getswitchinterval) == SHORT
    assert sys.getswitchinterval() == USUAL_SWITCH_SECONDS  # none runs any more
    assert await run_in(executors.monitor, sys.getswitchinterval) == USUAL_SWITCH_SECONDS
    assert await run_in(executors.io, sys.getswitchinterval) == USUAL_SWITCH_SECONDS


async def test_the_interval_stays_short_until_the_last_tenant_task_ends(
    executors: Executors,
) -> None:
    started, release = threading.Event(), threading.Event()

    def hold() -> float:
        started.set()
        release.wait(10)
        return sys.getswitchinterval()

    held = executors.jobs.submit(hold)
    started.wait(10)
    assert await run_in(executors.cpu, sys.getswitchinterval) == SHORT
    assert sys.getswitchinterval() == SHORT  # the job still runs
    release.set()
    assert held.result(10) == SHORT
    assert sys.getswitchinterval() == USUAL_SWITCH_SECONDS


async def test_a_failing_task_restores_the_interval(executors: Executors) -> None:
    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError):
        await run_in(executors.cpu, fail)
    assert sys.getswitchinterval() == USUAL_SWITCH_SECONDS
