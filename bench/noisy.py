"""Noisy neighbour: tenant A's predict_learn req/s while tenant B abuses the same process, as a
ratio of A's quiet req/s, both measured in the same run on the same server (issue 11, item 6).

Tenant B is its own process (`python -m bench.noisy --port P --seconds S`) that keeps up, all at
once, for S seconds:
- big-but-valid creates: a bagging regressor of 20 Hoeffding trees, deleted and created again;
- large learn batches: 1,000 samples a request into an adaptive random forest;
- training jobs: TrumpApproval into a model, the next submitted as soon as one ends;
- 1,100 idle sockets (the issue's count) and 20 slowloris connections sending one header byte
  every 0.5 s, reopened whenever the server closes them.
It prints `ready` once its models exist and its sockets are open, then one JSON line of what it
did. Every loop is bounded by S; loopback only. `--actions creates,learns` keeps up only those
of B's actions (default: all of them), to find which one costs A the most.

Without `--port` it is the measurement on its own (`python -m bench.noisy --actions learns`):
one gateway on memory:// as `make bench` starts it, A's predict_learn alone and with B, the
ratio printed (best of `--rounds` interleaved rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import uvloop
from river.datasets import TrumpApproval

from bench.inprocess import Sample
from bench.load import Result
from bench.scenario import (
    LINREG,
    N_LEARN,
    ROUNDS,
    THROUGHPUT,
    Job,
    Load,
    create_and_learn,
    drive,
    progress,
    write_bodies,
)
from bench.servers import ROOT, Server

B = "noisy-b"
HOST = "127.0.0.1"
IDLE_SOCKETS = 1_100
SLOWLORIS = 20
SLOWLORIS_BYTE_SECONDS = 0.5
LEARN_BATCH = 1_000
BIG_CREATE = [
    {
        "kind": "bagging_regressor",
        "params": {"n_models": 20, "model": {"kind": "hoeffding_tree_regressor", "params": {}}},
    }
]
FOREST = [{"kind": "adaptive_random_forest_regressor", "params": {}}]
TRAINED = [{"kind": "hoeffding_tree_regressor", "params": {}}]
LEAD_SECONDS = 1.5  # B's heavy requests are under way before A's warm-up starts
JSON_HEADERS = {"Content-Type": "application/json"}


# --- tenant B, the abuser process -----------------------------------------------------------
async def creates(http: httpx.AsyncClient, until: float, tally: Counter[str]) -> None:
    i = 0
    while time.perf_counter() < until:
        name = f"big-{i % 4}"
        i += 1
        await http.delete(f"/api/v1/models/{name}")
        answer = await http.post("/api/v1/models", json={"name": name, "steps": BIG_CREATE})
        tally[f"create {answer.status_code}"] += 1


async def learns(http: httpx.AsyncClient, until: float, tally: Counter[str]) -> None:
    samples = [{"x": dict(x), "y": float(y)} for x, y in TrumpApproval()][:LEARN_BATCH]
    body = json.dumps({"samples": samples}).encode()
    while time.perf_counter() < until:
        answer = await http.post("/api/v1/models/forest/learn", content=body, headers=JSON_HEADERS)
        tally[f"learn {LEARN_BATCH} {answer.status_code}"] += 1


async def jobs(http: httpx.AsyncClient, until: float, tally: Counter[str]) -> None:
    while time.perf_counter() < until:
        answer = await http.post("/api/v1/models/trained/train", json={"dataset": "TrumpApproval"})
        tally[f"train job {answer.status_code}"] += 1
        if answer.status_code != 202:
            await asyncio.sleep(0.2)
            continue
        job = answer.json()["id"]
        while time.perf_counter() < until:
            status = (await http.get(f"/api/v1/jobs/{job}")).json().get("status")
            if status in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.2)


async def idle(port: int, until: float, tally: Counter[str], opened: asyncio.Event) -> None:
    writers: list[asyncio.StreamWriter] = []
    try:
        for _ in range(IDLE_SOCKETS):
            try:
                writers.append((await asyncio.open_connection(HOST, port))[1])
            except OSError:
                tally["idle socket refused"] += 1
        tally["idle sockets opened"] = len(writers)
        opened.set()
        await asyncio.sleep(max(0.0, until - time.perf_counter()))
    finally:
        opened.set()
        for writer in writers:
            writer.close()


async def slowloris(port: int, until: float, tally: Counter[str]) -> None:
    header = f"POST /api/v1/models HTTP/1.1\r\nHost: x\r\nX-Tenant-ID: {B}\r\nX-Pad: ".encode()
    header += b"a" * 4000
    while time.perf_counter() < until:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            tally["slowloris refused"] += 1
            await asyncio.sleep(SLOWLORIS_BYTE_SECONDS)
            continue
        tally["slowloris connections"] += 1
        try:
            for byte in header:
                if time.perf_counter() >= until:
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(SLOWLORIS_BYTE_SECONDS)
                if reader.at_eof():
                    tally["slowloris closed by the server"] += 1
                    break
        except ConnectionError:
            tally["slowloris closed by the server"] += 1
        finally:
            writer.close()


async def setup(http: httpx.AsyncClient) -> None:
    for name, steps in (("forest", FOREST), ("trained", TRAINED)):
        await http.delete(f"/api/v1/models/{name}")
        created = await http.post("/api/v1/models", json={"name": name, "steps": steps})
        if created.status_code != 201:
            raise RuntimeError(f"create {name}: {created.status_code} {created.text}")


ACTIONS = ("creates", "learns", "jobs", "idle", "slowloris")


def actions_arg(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in chosen if name not in ACTIONS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(ACTIONS)}; got {text!r}")
    return chosen


async def abuse(port: int, seconds: float, actions: tuple[str, ...] = ACTIONS) -> Counter[str]:
    tally: Counter[str] = Counter()
    headers = {"X-Tenant-ID": B}
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{port}", headers=headers, timeout=120
    ) as http:
        await setup(http)
        until = time.perf_counter() + seconds
        opened = asyncio.Event()
        loops: list[Awaitable[None]] = []
        if "creates" in actions:
            loops.append(creates(http, until, tally))
        if "learns" in actions:
            loops.append(learns(http, until, tally))
        if "jobs" in actions:
            loops.append(jobs(http, until, tally))
        if "idle" in actions:
            loops.append(idle(port, until, tally, opened))
        else:
            opened.set()
        if "slowloris" in actions:
            loops += [slowloris(port, until, tally) for _ in range(SLOWLORIS)]
        tasks = [asyncio.ensure_future(loop) for loop in loops]
        await opened.wait()
        print("ready", flush=True)
        await asyncio.gather(*tasks)
    return tally


def abuser_main(port: int, seconds: float, actions: tuple[str, ...]) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    tally = uvloop.run(abuse(port, seconds, actions))
    print(json.dumps(dict(sorted(tally.items()))), flush=True)


# --- the measurement, run from bench.run ----------------------------------------------------
def with_abuser(
    server: Server,
    seconds: float,
    measure: Callable[[int], Result],
    actions: tuple[str, ...] = ACTIONS,
) -> tuple[Result, dict[str, int]]:
    """`measure(B's pid)` while tenant B's process abuses `server`; A's result and B's tally."""
    argv = [sys.executable, "-m", "bench.noisy", "--port", str(server.port)]
    argv += ["--seconds", str(seconds), "--actions", ",".join(actions)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    ) as abuser:
        assert abuser.stdout is not None
        try:
            if abuser.stdout.readline().strip() != "ready":
                raise RuntimeError("the noisy tenant did not start (see its stderr above)")
            time.sleep(LEAD_SECONDS)
            result = measure(abuser.pid)
            out, _ = abuser.communicate(timeout=seconds + 120)
        finally:
            if abuser.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(abuser.pid, 9)
    if abuser.returncode != 0:
        raise RuntimeError(f"the noisy tenant failed ({abuser.returncode})")
    return result, json.loads(out.strip().splitlines()[-1])


def neighbour(
    job: Job,
    rounds: int,
    drive: Callable[[Job], Result],
    actions: tuple[str, ...] = ACTIONS,
) -> tuple[Result, Result, dict[str, int]]:
    """A's best quiet and best noisy round, interleaved; B's tally of its last round."""
    load: Load = job.load
    seconds = LEAD_SECONDS + load.warmup + load.duration + 1.0
    quiet: Result | None = None
    noisy: Result | None = None
    tally: dict[str, int] = {}
    for round_no in range(1, rounds + 1):
        progress(f"noisy neighbour round {round_no}/{rounds}: quiet, then with tenant B")
        calm = drive(job)
        # B's own CPU is sampled too: on a small box the abuser competes for the cores as well
        loud, tally = with_abuser(
            job.server,
            seconds,
            lambda pid: drive(dataclasses.replace(job, pids={**job.pids, "tenant B": pid})),
            actions,
        )
        quiet = calm if quiet is None or calm.rps > quiet.rps else quiet
        noisy = loud if noisy is None or loud.rps > noisy.rps else noisy
    assert quiet is not None and noisy is not None
    return quiet, noisy, tally


def standalone(actions: tuple[str, ...], rounds: int) -> None:
    """The noisy-neighbour rows of `make bench` alone: its server, A's model, the ratio."""
    samples: list[Sample] = [(dict(x), float(y)) for x, y in TrumpApproval()]
    with tempfile.TemporaryDirectory(prefix="bench-noisy-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        bodies = write_bodies(work, samples)
        server = Server("noisy", "functions.gateway:app", {"STATE_URL": "memory://"}, work)
        stack.callback(server.stop)
        server.start()
        server.wait_ready()
        progress(f"server pid {server.pid}, log {server.log}")
        create_and_learn(server.url, "linreg", LINREG, samples[:N_LEARN])
        path = "/api/v1/models/linreg/predict_learn"
        job = Job("noisy", server, path, bodies["xy"], THROUGHPUT)
        quiet, loud, tally = neighbour(job, rounds, drive, actions)
    print(f"B's actions: {','.join(actions)}")
    print(f"A quiet {quiet.rps:,.0f} req/s, with B {loud.rps:,.0f} req/s (errors {loud.errors}),")
    print(f"ratio {loud.rps / quiet.rps:.2f}; A's p99 {quiet.p99_ms:.1f} -> {loud.p99_ms:.1f} ms")
    for name, result in (("alone", quiet), ("with B", loud)):
        shares = ", ".join(f"{k} {v:.0%}" for k, v in result.server_cpu.items())
        print(f"CPU {name}: {shares}, client {result.client_cpu:.0%}, box {result.machine_cpu:.0%}")
    print("tenant B did: " + ", ".join(f"{k} x{v}" for k, v in tally.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, help="abuse this server (else: measure on its own)")
    parser.add_argument("--seconds", type=float, help="how long B abuses (with --port)")
    parser.add_argument(
        "--actions", type=actions_arg, default=ACTIONS, help=f"comma list of {', '.join(ACTIONS)}"
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="measurement rounds")
    args = parser.parse_args()
    if args.port is None:
        standalone(args.actions, args.rounds)
    elif args.seconds is None:
        parser.error("--port needs --seconds")
    else:
        abuser_main(args.port, args.seconds, args.actions)


if __name__ == "__main__":
    main()
