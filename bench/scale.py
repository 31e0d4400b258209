"""Scale-out on a Valkey Cluster (issue 16): predict_learn throughput of N instances (N = 1,
2, 4 processes) sharing one cluster of three primaries and three replicas, as a ratio to one
instance; and what STATE_MIN_REPLICAS=1 costs per write, as a ratio to 0.

Every instance serves the gateway (all functions) on `redis+cluster://`; MODELS models spread
over the shards by their hash tags, each always driven through the same instance (as a load
balancer with affinity would), so instances add throughput rather than contend on one model's
log. On a 2-core box the instances, the six cluster nodes and the load client share two cores:
the ratio says how much of the machine more instances turn into answers, not what a fleet of
machines would.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from bench.inprocess import Sample
from bench.load import Result
from bench.scenario import (
    LATENCY,
    LINREG,
    THROUGHPUT,
    Job,
    Load,
    best_of,
    create_and_learn,
    progress,
)
from bench.servers import Server
from tests.valkey_cluster import ValkeyCluster

INSTANCES = (1, 2, 4)
MODELS = 8  # at least two per shard, two connections each at THROUGHPUT
GATEWAY = "functions.gateway:app"


@dataclass(frozen=True)
class ScaleRow:
    case: str
    rps: float
    p50_ms: float
    ratio: float  # req/s ÷ one instance's; for STATE_MIN_REPLICAS, p50 ÷ N=0's (the cost)
    detail: str


def _path(model: str) -> str:
    return f"/api/v1/models/{model}/predict_learn"


def _servers(cluster: ValkeyCluster, work: Path, stack: contextlib.ExitStack) -> list[Server]:
    """max(INSTANCES) instances with STATE_MIN_REPLICAS=0, then one with 1; started at once."""
    env = {"STATE_URL": cluster.url}
    servers = [Server(f"scale-{i}", GATEWAY, env, work) for i in range(max(INSTANCES))]
    servers.append(Server("scale-wait", GATEWAY, {**env, "STATE_MIN_REPLICAS": "1"}, work))
    for server in servers:
        stack.callback(server.stop)
        server.start()
    for server in servers:
        server.wait_ready()
    return servers


def _spread_job(key: str, servers: list[Server], models: list[str], bodies: Path) -> Job:
    """Model i through instance i % len(servers)."""
    targets = [(servers[i % len(servers)], _path(m)) for i, m in enumerate(models)]
    (first, path), rest = targets[0], targets[1:]
    pids = {s.name: s.pid for s in servers[1:]}
    return Job(key, first, path, bodies, THROUGHPUT, pids=pids, also=rest)


def _row(case: str, result: Result, base: Result, detail: str, latency: bool = False) -> ScaleRow:
    ratio = result.p50_ms / base.p50_ms if latency else result.rps / base.rps
    return ScaleRow(case, result.rps, result.p50_ms, ratio, detail)


def measure(work: Path, samples: list[Sample], bodies: Path) -> list[ScaleRow]:
    with contextlib.ExitStack() as stack:
        progress("scale: a Valkey Cluster of 3 primaries + 3 replicas, 5 instances")
        cluster = ValkeyCluster(work / "cluster").start()
        stack.callback(cluster.stop)
        servers = _servers(cluster, work, stack)
        models = [f"scale{i}" for i in range(MODELS)]
        for model in models:
            create_and_learn(servers[0].url, model, LINREG, samples)
        jobs = [_spread_job(f"n{n}", servers[:n], models, bodies) for n in INSTANCES]
        wait = servers[-1]
        single = Load(LATENCY.concurrency, LATENCY.warmup, LATENCY.duration)
        jobs += [
            Job("wait0", servers[0], _path(models[0]), bodies, single),
            Job("wait1", wait, _path(models[0]), bodies, single),
        ]
        best = best_of(jobs)
    one = best["n1"]
    rows = [
        _row(
            f"predict_learn, {n} instance{'s' if n > 1 else ''}",
            best[f"n{n}"],
            one,
            f"{MODELS} models, x{THROUGHPUT.concurrency}, errors {best[f'n{n}'].errors}",
        )
        for n in INSTANCES
    ]
    rows.append(
        _row("predict_learn, STATE_MIN_REPLICAS=0", best["wait0"], best["wait0"], "x1", True)
    )
    rows.append(
        _row(
            "predict_learn, STATE_MIN_REPLICAS=1",
            best["wait1"],
            best["wait0"],
            f"x1, WAIT 1 after each append, errors {best['wait1'].errors}",
            True,
        )
    )
    return rows


def table(rows: list[ScaleRow]) -> str:
    width = max(len(r.case) for r in rows)
    lines = [f"{'case'.ljust(width)}  {'req/s':>8}  {'p50 ms':>7}  {'ratio':>6}  detail"]
    for r in rows:
        lines.append(
            f"{r.case.ljust(width)}  {r.rps:8,.0f}  {r.p50_ms:7.2f}  {r.ratio:6.2f}  {r.detail}"
        )
    return "\n".join(lines)
