"""New specs proven in a proof worker process (PROOF_PROCESSES, shared/spec_proof.py): the
model created there serves as River does, a spec that fails its proof there is the same 422,
and a proof worker that died is replaced.

Worker processes only run in a process with the fixed hash seed, so these run a real server
(tests/servers.py starts it as deployed).
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from river import datasets, linear_model, preprocessing

from tests.servers import AppProcess
from tests.shared.test_fit_process import descendants, niceness

LINEAR = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
BIG = {
    "steps": [
        {
            "kind": "bagging_regressor",
            "params": {"n_models": 20, "model": {"kind": "hoeffding_tree_regressor", "params": {}}},
        }
    ]
}
FAILING = {"name": "bad", "steps": [{"kind": "mlp_regressor", "params": {"activation": "nope"}}]}
NICE = 6


@pytest.fixture
def server(app_factory: Callable[..., AppProcess]) -> AppProcess:
    return app_factory({"STATE_URL": "memory://", "WORKER_NICE": str(NICE)})


def proof_workers(server: AppProcess) -> list[int]:
    assert server.process is not None
    return [p for p in descendants(server.process.pid) if niceness(p) == NICE]


def started_workers(server: AppProcess) -> list[int]:
    """The proof workers, once the first create has started them (in the background)."""
    deadline = time.monotonic() + 30
    while not (workers := proof_workers(server)):
        assert time.monotonic() < deadline, "no proof worker started"
        time.sleep(0.05)
    return workers


def cpu_ticks(pid: int) -> int:
    # /proc/<pid>/stat: utime and stime, the 14th and 15th fields
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_specs_proven_in_a_worker_serve_as_river(server: AppProcess) -> None:
    assert proof_workers(server) == []
    samples = list(itertools.islice(datasets.TrumpApproval(), 20))
    with httpx.Client(base_url=server.url, headers={"X-Tenant-ID": "acme"}, timeout=60) as http:
        # the first create is proven in its thread while the workers start
        assert http.post("/api/v1/models", json={**LINEAR, "name": "first"}).status_code == 201
        workers = started_workers(server)  # below the server's priority
        assert niceness(server.process.pid) == 0  # type: ignore[union-attr]
        before = sum(cpu_ticks(pid) for pid in workers)
        for name in ("big-1", "big-2", "big-3"):  # tens of ms of proof each, in the worker
            created = http.post("/api/v1/models", json={**BIG, "name": name})
            assert created.status_code == 201, created.text
        assert sum(cpu_ticks(pid) for pid in workers) > before
        created = http.post("/api/v1/models", json=LINEAR)
        assert created.status_code == 201, created.text
        for x, y in samples[:-1]:
            sent = http.post("/api/v1/models/m/predict_learn", json={"x": x, "y": y})
            assert sent.status_code == 200, sent.text
        served = http.post("/api/v1/models/m/predict", json={"x": samples[-1][0]}).json()
    local = preprocessing.StandardScaler() | linear_model.LinearRegression()
    for x, y in samples[:-1]:
        local.learn_one(x, y)
    assert served["prediction"] == local.predict_one(samples[-1][0])


def test_a_failing_spec_and_a_dead_worker(server: AppProcess) -> None:
    with httpx.Client(base_url=server.url, headers={"X-Tenant-ID": "acme"}, timeout=60) as http:
        assert http.post("/api/v1/models", json={**LINEAR, "name": "first"}).status_code == 201
        started_workers(server)
        refused = http.post("/api/v1/models", json=FAILING)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "spec_failed"
        assert "'activation' parameter of MLPRegressor" in error["message"]
        assert http.get("/api/v1/models/bad").status_code == 404  # nothing was created
        # the proof worker killed while idle: the next create is still proven and made
        workers = proof_workers(server)
        assert workers
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(os.path.exists(f"/proc/{pid}") for pid in workers):
            assert time.monotonic() < deadline, "the killed workers did not go"
            time.sleep(0.05)
        time.sleep(0.5)  # the pool's manager thread notices the dead worker
        for name in ("after", "again"):
            created = http.post("/api/v1/models", json={**LINEAR, "name": name})
            assert created.status_code == 201, created.text
        refused = http.post("/api/v1/models", json=FAILING)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "spec_failed"


# ~0.7 s of proof on a quiet core (eight layers of 1,024 neurons, 64 MB), past a 0.2 s budget
SLOW = {"steps": [{"kind": "mlp_regressor", "params": {"hidden_layer_sizes": [1024] * 8}}]}


def test_a_proof_past_its_time_has_its_worker_stopped(
    app_factory: Callable[..., AppProcess],
) -> None:
    """A proof still running at SPEC_PROOF_SECONDS is a 422 and its worker process is
    stopped (before, it ran on to its end, holding a CPU thread and a proof slot: two proofs
    that never end left every later create waiting for good); the pool starts another."""
    env = {
        "STATE_URL": "memory://",
        "WORKER_NICE": str(NICE),
        "SPEC_PROOF_SECONDS": "0.2",
        "MAX_MODEL_BYTES": str(2**30),
    }
    server = app_factory(env)
    with httpx.Client(base_url=server.url, headers={"X-Tenant-ID": "acme"}, timeout=60) as http:
        # starts the workers (proven in its thread, which may take longer than 0.2 s: the
        # serving process imports the estimator's modules at its first build)
        http.post("/api/v1/models", json={**LINEAR, "name": "first"})
        before = set(started_workers(server))
        for name in ("slow-1", "slow-2", "slow-3"):  # more than PROOF_PROCESSES (2)
            refused = http.post("/api/v1/models", json={**SLOW, "name": name})
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["code"] == "spec_too_slow"
        deadline = time.monotonic() + 15
        while before & set(proof_workers(server)) or len(proof_workers(server)) < 2:
            assert time.monotonic() < deadline, "the stopped workers were not replaced"
            time.sleep(0.05)
        # nothing is left spinning: the workers now are idle
        time.sleep(0.5)
        workers = proof_workers(server)
        ticks = {pid: cpu_ticks(pid) for pid in workers}
        time.sleep(0.5)
        assert all(cpu_ticks(pid) - ticks[pid] < 10 for pid in workers)
        for name in ("after", "again"):
            created = http.post("/api/v1/models", json={**LINEAR, "name": name})
            assert created.status_code == 201, created.text
        assert http.get("/api/v1/models/slow-1").status_code == 404
