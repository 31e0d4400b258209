"""State-store round trips per request, counted by Valkey itself, not estimated.

A fixed number of requests, one at a time (no contention), on a warm model; Valkey's
INFO before and after. Round trips are `total_reads_processed` (one read per request a client
sends: a pipeline or a Lua call is one, three separate GETs are three); the per-command counts
are INFO commandstats, which also counts the commands a Lua script runs, so their sum can
exceed the round trips. Two snapshots taken back to back give what the INFO calls themselves
add, which is taken off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench.load import TENANT

REQUESTS = 200
WARM = 20


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


def snapshot(client: InfoClient) -> Snapshot:
    reads = int(client.info("stats")["total_reads_processed"])
    stats = client.info("commandstats")
    return Snapshot(reads, {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})


def per_request(before: Snapshot, after: Snapshot, idle: Snapshot, requests: int) -> Counts:
    """(after - before - idle) / requests; `idle` is the difference of two back-to-back
    snapshots (what taking a snapshot adds), as a Snapshot of differences."""
    names = sorted(set(after.commands) | set(before.commands))
    moved = {}
    for name in names:
        calls = after.commands.get(name, 0) - before.commands.get(name, 0)
        calls -= idle.commands.get(name, 0)
        if calls:
            moved[name] = calls / requests
    reads = after.reads - before.reads - idle.reads
    return Counts(reads / requests, moved)


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
        idle = difference(snapshot(client), snapshot(client))
        before = snapshot(client)
        send(REQUESTS, WARM)
        after = snapshot(client)
    return per_request(before, after, idle, REQUESTS)


def text(counts: Counts) -> str:
    return ", ".join(f"{name} {calls:.2f}" for name, calls in counts.commands.items())
