"""State-store round trips per request, counted by Valkey itself, not estimated.

A fixed number of requests, one at a time (no contention), on a warm model; Valkey's
INFO before and after. Round trips are `total_reads_processed` (one read per request a client
sends: a pipeline or a Lua call is one, three separate GETs are three); the per-command counts
are INFO commandstats, which also counts the commands a Lua script runs, so their sum can
exceed the round trips. Taken off: what the INFO calls themselves add (two snapshots back to
back), and what other clients of the same Valkey do meanwhile (two snapshots as far apart as
the requests took, with no request between; the bench's other servers sit idle then). A
server's own timed flushes (audit rows, counters) happen only because requests came, so they
count.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench.load import TENANT

REQUESTS = 200
WARM = 20
# longer than a server's buffered writes wait (monitoring's FLUSH_DELAY is 0.05 s)
SETTLE_SECONDS = 0.5


class InfoClient(Protocol):
    def info(self, section: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Snapshot:
    reads: int
    commands: dict[str, int]  # calls by command name ("get", "evalsha", "client|setinfo")


@dataclass(frozen=True)
class Counts:
    round_trips: float  # per request
    commands: dict[str, float]  # calls per request by command name, only those that moved
    background: float = 0.0  # reads per request by other clients, taken off round_trips


def snapshot(client: InfoClient) -> Snapshot:
    reads = int(client.info("stats")["total_reads_processed"])
    stats = client.info("commandstats")
    return Snapshot(reads, {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})


def per_request(before: Snapshot, after: Snapshot, idle: Snapshot, requests: int) -> Counts:
    """(after - before - idle) / requests; `idle` is a Snapshot of differences: what moved
    between two snapshots without any of the requests counted."""
    names = sorted(set(after.commands) | set(before.commands))
    moved = {}
    for name in names:
        calls = after.commands.get(name, 0) - before.commands.get(name, 0)
        calls -= idle.commands.get(name, 0)
        if calls:
            moved[name] = calls / requests
    reads = after.reads - before.reads - idle.reads
    return Counts(reads / requests, moved, idle.reads / requests)


def difference(first: Snapshot, second: Snapshot) -> Snapshot:
    names = set(first.commands) | set(second.commands)
    commands = {n: second.commands.get(n, 0) - first.commands.get(n, 0) for n in names}
    return Snapshot(second.reads - first.reads, commands)


def count(client: InfoClient, url: str, path: str, bodies: Path, headers: bool = True) -> Counts:
    """REQUESTS POSTs of the bodies (one JSON per line, cycling) after WARM unmeasured ones."""
    lines = [json.loads(line) for line in bodies.read_text().splitlines() if line]
    extra = {"X-Tenant-ID": TENANT} if headers else {}
    with httpx.Client(base_url=url, headers=extra, timeout=30) as http:

        def send(n: int, start: int) -> None:
            for i in range(start, start + n):
                answer = http.post(path, json=lines[i % len(lines)])
                if answer.status_code >= 300:
                    raise RuntimeError(f"{url}{path}: {answer.status_code} {answer.text}")

        send(WARM, 0)
        time.sleep(SETTLE_SECONDS)  # the warm-up's timed flushes land before the count
        before = snapshot(client)
        started = time.perf_counter()
        send(REQUESTS, WARM)
        time.sleep(SETTLE_SECONDS)  # and the counted requests' flushes inside it
        after = snapshot(client)
        quiet = snapshot(client)
        time.sleep(time.perf_counter() - started)
        idle = difference(quiet, snapshot(client))
    return per_request(before, after, idle, REQUESTS)


def text(counts: Counts) -> str:
    return ", ".join(f"{name} {calls:.2f}" for name, calls in counts.commands.items())
