"""Heavy learn batches in worker processes (shared/learn_process.py; issue 13, the noisy
neighbour): exactly River, a failing sample refused whole, and the per-tenant bound.

The worker processes only run in a process with the fixed hash seed, so the HTTP cases run a
real server (tests/servers.py starts it as deployed); the reference runs in its own process
with the same seed (tests/river_reference.py).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared import hashseed
from shared.catalog import build_model
from shared.errors import ApiError
from shared.learn_process import HeavyLearns, SampleFailed, learn_pickled
from tests.river_reference import FOREST_BATCHES, FOREST_PROBES, reference, trump
from tests.security.test_specs import BAD_X, GOOD, MLP
from tests.servers import AppProcess

FOREST = {
    "steps": [{"kind": "adaptive_random_forest_regressor", "params": {"n_models": 3, "seed": 7}}]
}
MIN_SAMPLES = 2  # every batch of two samples or more goes to a worker process


def children(pid: int) -> list[int]:
    """The direct children of a process, from /proc (Linux)."""
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.fixture
def server(app_factory: Callable[..., AppProcess]) -> AppProcess:
    env = {"STATE_URL": "memory://", "LEARN_PROCESS_MIN_SAMPLES": str(MIN_SAMPLES)}
    return app_factory(env)


def batch(samples: list[tuple[dict[str, Any], Any]]) -> dict[str, Any]:
    return {"samples": [{"x": x, "y": y} for x, y in samples]}


def test_heavy_batches_learned_in_a_worker_process_equal_river(server: AppProcess) -> None:
    assert server.process is not None
    assert children(server.process.pid) == []  # no worker before the first heavy batch
    learned = sum(FOREST_BATCHES)
    samples = trump(learned + FOREST_PROBES)
    with httpx.Client(base_url=server.url, headers={"X-Tenant-ID": "acme"}, timeout=120) as http:
        made = http.post("/api/v1/models", json={"name": "forest", **FOREST})
        assert made.status_code == 201, made.text
        start = 0
        for size in FOREST_BATCHES:
            answer = http.post("/api/v1/models/forest/learn", json=batch(samples[start:][:size]))
            assert answer.status_code == 200, answer.text
            assert answer.json() == {
                "learned": size,
                "first_seq": start + 1,
                "last_seq": start + size,
            }
            start += size
        # the batches went to the learn workers (the fork server and its worker)
        assert children(server.process.pid) != []
        served = [
            http.post("/api/v1/models/forest/predict", json={"x": x}).json()
            for x, _ in samples[learned:]
        ]
    assert [s["prediction"] for s in served] == reference("forest", hashseed.HASH_SEED)
    assert {s["seq"] for s in served} == {learned}


def test_a_failing_sample_in_a_worker_refuses_the_whole_batch(server: AppProcess) -> None:
    with httpx.Client(base_url=server.url, headers={"X-Tenant-ID": "acme"}, timeout=60) as http:
        assert http.post("/api/v1/models", json={"name": "m", **MLP}).status_code == 201
        assert http.post("/api/v1/models/m/learn", json=batch(GOOD[:1])).status_code == 200
        before = http.get("/api/v1/models/m").json()

        refused = http.post("/api/v1/models/m/learn", json=batch([GOOD[1], (BAD_X, 2.0)]))
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "learn_failed"
        assert error["message"].startswith("the model cannot learn sample 1 (")
        assert "nothing was learned" in error["message"]
        assert http.get("/api/v1/models/m").json() == before

        # the live model is the one before the refused batch: it learns on from there
        assert http.post("/api/v1/models/m/learn", json=batch(GOOD[1:])).json()["first_seq"] == 2
        probe = {"a": 0.25, "b": -0.5}
        served = http.post("/api/v1/models/m/predict", json={"x": probe}).json()
    _, model = build_model(MLP)
    for x, y in GOOD:
        model.learn_one(x, y)
    assert served["prediction"] == model.predict_one(probe)


def test_the_worker_function_learns_in_order_or_names_the_failing_sample() -> None:
    blueprint, model = build_model(MLP)
    assert blueprint is not None
    blob = pickle.dumps(model)
    learned = pickle.loads(learn_pickled(blob, blueprint, GOOD))
    for x, y in GOOD:
        model.learn_one(x, y)
    probe = {"a": 0.5, "b": 1.5}
    assert learned.predict_one(probe) == model.predict_one(probe)

    failed = pickle.loads(learn_pickled(blob, blueprint, [GOOD[0], (BAD_X, 2.0)]))
    assert isinstance(failed, SampleFailed)
    assert failed.index == 1


def test_heavy_learns_are_bounded_per_tenant() -> None:
    heavy = HeavyLearns(min_samples=10, per_tenant=1)
    with heavy.admitted("a", 9), heavy.admitted("a", 9):
        assert heavy.active("a") == 0  # short batches are not counted
    with heavy.admitted("a", 10):
        assert heavy.active("a") == 1
        with pytest.raises(ApiError) as over, heavy.admitted("a", 10):
            pass
        assert over.value.status == 429
        assert over.value.code == "learn_quota_exceeded"
        assert over.value.headers["Retry-After"] == "1"
        with heavy.admitted("b", 10):  # another tenant has its own count
            assert heavy.active("b") == 1
    assert heavy.active("a") == heavy.active("b") == 0
