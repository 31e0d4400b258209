"""Lifecycle and ingest numbers: batch predict rows/s against River in-process, activation
time, and observations/s through ingest with three subscribed models."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd

from bench.inprocess import Sample, trained_model
from bench.load import TENANT
from bench.scenario import LINREG, THROUGHPUT, Job, create_and_learn, drive
from bench.servers import Server

BATCH_ROWS = 10_000
ACTIVATIONS = 10
INGEST_MODELS = {
    "lag_linear": LINREG,
    "lag_pa": [{"kind": "standard_scaler", "params": {}}, {"kind": "pa_regressor", "params": {}}],
    # not KNN: its index rebuild when the window fills (~1.5 s, River's own) would swamp
    # a 2 s measurement of what ingest itself costs
    "lag_tree": [{"kind": "hoeffding_tree_regressor", "params": {}}],
}


@dataclass(frozen=True)
class Extra:
    case: str
    value: float
    unit: str
    detail: str


def batch_predict(server: Server, samples: list[Sample]) -> list[Extra]:
    """One request of BATCH_ROWS rows, best of 5, against predict_one / predict_many loops."""
    create_and_learn(server.url, "batch_lin", LINREG, samples)
    rows = [samples[i % len(samples)][0] for i in range(BATCH_ROWS)]
    body = json.dumps({"instances": rows}).encode()
    timings = []
    with httpx.Client(base_url=server.url, headers={"X-Tenant-ID": TENANT}, timeout=120) as http:
        for _ in range(5):
            start = time.perf_counter()
            answer = http.post(
                "/api/v1/models/batch_lin/predict/batch",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            timings.append(time.perf_counter() - start)
            assert answer.status_code == 200, answer.text
    served = BATCH_ROWS / min(timings)
    model = trained_model(LINREG, samples)
    start = time.perf_counter()
    for x in rows:
        model.predict_one(x)
    one_by_one = BATCH_ROWS / (time.perf_counter() - start)
    start = time.perf_counter()
    model.predict_many(pd.DataFrame.from_records(rows))
    vectorised = BATCH_ROWS / (time.perf_counter() - start)
    return [
        Extra("batch predict 10k rows, HTTP", served, "rows/s", "one request, JSON in and out"),
        Extra("River predict_one loop", one_by_one, "rows/s", "in-process"),
        Extra("River predict_many", vectorised, "rows/s", "in-process, DataFrame built"),
    ]


def activation(server: Server, samples: list[Sample]) -> list[Extra]:
    """Snapshot a version, then time activations (every instance reloads from the artifact)."""
    create_and_learn(server.url, "act_lin", LINREG, samples)
    timings = []
    with httpx.Client(base_url=server.url, headers={"X-Tenant-ID": TENANT}, timeout=60) as http:
        assert http.post("/api/v1/models/act_lin/versions").status_code == 201
        for n in range(ACTIVATIONS):
            version = 1 + n % 2
            start = time.perf_counter()
            done = http.post(f"/api/v1/models/act_lin/versions/{version}/activate")
            timings.append(time.perf_counter() - start)
            assert done.status_code == 200, done.text
            http.post("/api/v1/models/act_lin/predict", json={"x": samples[0][0]})
    return [
        Extra(
            "activate a version",
            statistics.median(timings) * 1000,
            "ms",
            f"median of {ACTIVATIONS}, file registry, memory:// state",
        )
    ]


def ingest(server: Server, work: Path) -> list[Extra]:
    """Closed-loop observations to one series fanned out to three lag regressors."""
    with httpx.Client(base_url=server.url, headers={"X-Tenant-ID": TENANT}, timeout=60) as http:
        for name, steps in INGEST_MODELS.items():
            created = http.post("/api/v1/models", json={"name": name, "steps": steps})
            assert created.status_code == 201, created.text
        subscribed = http.put(
            "/api/v1/series/bench/models", json={"models": list(INGEST_MODELS), "n_lags": 12}
        )
        assert subscribed.status_code == 200, subscribed.text
        for value in range(12):
            http.post("/api/v1/series/bench/observations", json={"value": float(value)})
    bodies = work / "observations.jsonl"
    bodies.write_text("".join(json.dumps({"value": 100.0 + i % 37}) + "\n" for i in range(200)))
    result = drive(Job("ingest", server, "/api/v1/series/bench/observations", bodies, THROUGHPUT))
    return [
        Extra(
            "ingest observations, 3 models",
            result.rps,
            "obs/s",
            f"{THROUGHPUT.concurrency} connections, p50 {result.p50_ms:.2f} ms",
        )
    ]


def table(extras: list[Extra]) -> str:
    lines = [f"{'case':<36}{'value':>14}  {'unit':<7}detail", "-" * 90]
    lines += [f"{e.case:<36}{e.value:>14,.1f}  {e.unit:<7}{e.detail}" for e in extras]
    return "\n".join(lines)
