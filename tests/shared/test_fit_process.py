"""Training jobs fitted in a worker process (JOB_PROCESSES, shared/training/jobs.py): the
same version as River in-process, a failure raised in the worker fails the job with its
message, and the worker runs WORKER_NICE steps below the server's CPU priority.

Worker processes only run in a process with the fixed hash seed, so the HTTP cases run a
real server (tests/servers.py starts it as deployed).
"""

from __future__ import annotations

import itertools
import os
import pickle
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from river import datasets, linear_model, metrics, preprocessing

from shared.catalog import build_model
from shared.errors import ApiError
from shared.state.series import IdempotencyConflict
from shared.training.fit import (
    PROGRESS,
    FitCrashed,
    FitOptions,
    fit,
    fit_in_worker,
    read_progress,
)
from tests.servers import AppProcess

LINEAR = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
NICE = 7


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (Linux): the children of each of its threads
    (a pool made in a worker thread has its fork server started by that thread)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def niceness(pid: int) -> int:
    # /proc/<pid>/stat: the 19th field is the nice value (after the command's parentheses)
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


@pytest.fixture
def server(app_factory: Callable[..., AppProcess]) -> AppProcess:
    return app_factory({"STATE_URL": "memory://", "WORKER_NICE": str(NICE)})


def finished(http: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = http.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_a_job_fitted_in_a_worker_process_equals_river(server: AppProcess) -> None:
    assert server.process is not None
    before = set(descendants(server.process.pid))
    with httpx.Client(base_url=server.url, headers={"X-Tenant-ID": "acme"}, timeout=60) as http:
        assert http.post("/api/v1/models", json=LINEAR).status_code == 201
        body = {"dataset": "TrumpApproval", "test_size": 0.2, "activate": True}
        submitted = http.post("/api/v1/models/m/train", json=body)
        assert submitted.status_code == 202, submitted.text
        job = finished(http, submitted.json()["id"])
        # the fit ran in a worker process (nothing else of this server starts one: no
        # heavy learn, no fold), below the server's priority
        workers = set(descendants(server.process.pid)) - before
        assert NICE in {niceness(pid) for pid in workers}
        assert niceness(server.process.pid) == 0
        x, _ = next(iter(datasets.TrumpApproval()))
        live = http.post("/api/v1/models/m/predict", json={"x": x}).json()
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0
    local = preprocessing.StandardScaler() | linear_model.LinearRegression()
    rows = list(itertools.islice(datasets.TrumpApproval(), 1001))
    for xi, yi in rows[:801]:
        local.learn_one(xi, yi)
    mae = metrics.MAE()
    for xi, yi in rows[801:]:
        mae.update(yi, local.predict_one(xi))
    assert job["metrics"]["mae"] == mae.get()
    assert live["model_version"] == job["version"]
    assert live["prediction"] == local.predict_one(x)


def test_a_failure_in_the_worker_fails_the_job_and_a_dead_worker_is_replaced(
    server: AppProcess,
) -> None:
    assert server.process is not None
    with httpx.Client(base_url=server.url, headers={"X-Tenant-ID": "acme"}, timeout=60) as http:
        assert http.post("/api/v1/models", json=LINEAR).status_code == 201
        body = {"dataset": "TrumpApproval", "test_size": 0.9999}
        job = finished(http, http.post("/api/v1/models/m/train", json=body).json()["id"])
        assert job["status"] == "failed"
        assert "nothing left to train on" in job["error"]
        # the worker pool is still whole: the next job is fitted
        body = {"dataset": "TrumpApproval", "test_size": 0.5}
        again = finished(http, http.post("/api/v1/models/m/train", json=body).json()["id"])
        assert again["status"] == "succeeded", again
        # fit workers killed while idle (the OOM killer, say): the next job gets new ones
        workers = [p for p in descendants(server.process.pid) if niceness(p) == NICE]
        assert workers
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in workers):
            assert time.monotonic() < deadline, "the killed workers did not go"
            time.sleep(0.05)
        third = finished(http, http.post("/api/v1/models/m/train", json=body).json()["id"])
        assert third["status"] == "succeeded", third["error"]
        assert third["metrics"] == again["metrics"]


def cpu_ticks(pid: int) -> int:
    # /proc/<pid>/stat: utime and stime, the 14th and 15th fields
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def busy_worker(workers: list[int]) -> int:
    """The one of `workers` using the CPU (a fit under way)."""
    before = {pid: cpu_ticks(pid) for pid in workers}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.2)
        busy = [pid for pid in workers if cpu_ticks(pid) - before[pid] >= 10]  # 0.1 s of CPU
        if busy:
            return busy[0]
    raise AssertionError("no fit worker got busy")


def test_a_fit_whose_process_dies_fails_alone(server: AppProcess) -> None:
    """A fit's process killed mid-fit (out of memory, say) fails that job only: the fit in
    the other worker goes on, and so do the jobs after (a concurrent.futures pool failed
    every fit it held once one of its processes died)."""
    assert server.process is not None
    # a second or so of fit (trees would do too, but River's regression tree does not
    # pickle once a leaf has seen ~700 ordered values: its E-BST splitter is that deep)
    forest = {
        "kind": "bagging_regressor",
        "params": {"n_models": 60, "model": {"kind": "linear_regression", "params": {}}},
    }
    with httpx.Client(base_url=server.url, headers={"X-Tenant-ID": "acme"}, timeout=60) as http:
        for name in ("a", "b"):
            created = http.post("/api/v1/models", json={"name": name, "steps": [forest]})
            assert created.status_code == 201, created.text
        body = {"dataset": "TrumpApproval", "test_size": 0.1}
        first = http.post("/api/v1/models/a/train", json=body).json()["id"]
        deadline = time.monotonic() + 30
        while (
            len(workers := [p for p in descendants(server.process.pid) if niceness(p) == NICE]) < 2
        ):
            assert time.monotonic() < deadline, "the fit workers did not start"
            time.sleep(0.05)
        victim = busy_worker(workers)
        second = http.post("/api/v1/models/b/train", json=body).json()["id"]
        os.kill(victim, signal.SIGKILL)
        killed, other = finished(http, first), finished(http, second)
        assert killed["status"] == "failed", killed
        assert "worker process ended (exit code -9)" in killed["error"]
        assert other["status"] == "succeeded", other["error"]
        again = finished(http, http.post("/api/v1/models/a/train", json=body).json()["id"])
        assert again["status"] == "succeeded", again
        assert again["metrics"] == other["metrics"]  # the same spec, data and split


class _TwoArguments(Exception):
    """An exception that does not unpickle from its args (as some libraries' do)."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what} failed: {why}")


class _Exploding:
    def learn_one(self, x: dict[str, Any], y: float) -> None:
        raise _TwoArguments("learn_one", "on purpose")


def test_any_other_failure_in_the_worker_comes_back_picklable(tmp_path: Path) -> None:
    shared = tmp_path / "progress"
    shared.write_bytes(b"")
    blueprint, _ = build_model({"steps": LINEAR["steps"]})
    assert blueprint is not None
    with pytest.raises(TypeError):
        pickle.loads(pickle.dumps(_TwoArguments("a", "b")))  # what would break the pool
    rows = [({"a": 1.0}, 1.0), ({"a": 2.0}, 2.0)]
    with pytest.raises(FitCrashed) as crashed:
        fit_in_worker(
            str(shared), pickle.dumps(_Exploding()), blueprint, rows, FitOptions(0.5, False, 0)
        )
    sent = pickle.loads(pickle.dumps(crashed.value))
    assert sent.kind == "_TwoArguments"
    assert str(sent) == "_TwoArguments: learn_one failed: on purpose"


def test_the_worker_function_reports_its_progress_through_the_file(tmp_path: Path) -> None:
    shared = tmp_path / "progress"
    shared.write_bytes(b"")
    with shared.open("rb") as read:
        assert read_progress(read.fileno()) == 0.0  # nothing written yet
        blueprint, model = build_model({"steps": LINEAR["steps"]})
        assert blueprint is not None
        snapshot = pickle.dumps(model)
        rows = [(dict(x), float(y)) for x, y in itertools.islice(datasets.TrumpApproval(), 200)]
        options = FitOptions(test_size=0.25, shuffle=False, seed=0)
        in_worker = fit_in_worker(str(shared), snapshot, blueprint, rows, options)
        assert read_progress(read.fileno()) == 1.0
    assert len(shared.read_bytes()) == PROGRESS.size
    seen: list[float] = []
    in_thread = fit(snapshot, blueprint, rows, options, seen.append)
    assert in_worker.metrics == in_thread.metrics and in_worker.blob == in_thread.blob
    assert seen[-1] == 1.0


def test_an_api_error_crosses_a_process_boundary_whole() -> None:
    sent = ApiError(429, "learn_quota_exceeded", "too many", {"Retry-After": "1"})
    received = pickle.loads(pickle.dumps(sent))
    assert type(received) is ApiError
    assert (received.status, received.code, received.message, received.headers) == (
        429,
        "learn_quota_exceeded",
        "too many",
        {"Retry-After": "1"},
    )
    assert str(received) == "too many"


def test_an_api_error_of_a_subclass_with_its_own_constructor_crosses_whole() -> None:
    sent = IdempotencyConflict()
    received = pickle.loads(pickle.dumps(sent))
    assert type(received) is IdempotencyConflict
    assert (received.status, received.code, received.message) == (
        sent.status,
        sent.code,
        sent.message,
    )
