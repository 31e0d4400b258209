"""Closed-loop HTTP/1.1 load generator on raw asyncio streams, run as its own process.

`python -m bench.load --port P --path /x --bodies FILE --concurrency 16 ...` prints one JSON
line of results. Raw streams over uvloop, with every request pre-encoded, because httpx
tops out near the echo server's rate on a 2-core box and would flatten the ratios we want.
Each connection sends one request, reads the whole response, and sends the next.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import uvloop

TENANT = "bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Window:
    """The measured interval: requests that start inside it are the ones counted."""

    start: float
    end: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


@dataclass
class Result:
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    client_cpu: float
    server_cpu: dict[str, float]
    machine_cpu: float  # every process on the box, to expose load we did not start


def encode(path: str, port: int, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nX-Tenant-ID: {TENANT}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one Content-Length framed response; return its status and whether the server keeps
    the connection open (gunicorn's sync workers, which serve chantilly, close it each time)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lowered.index(b"\r\n", at + 2)
        await reader.readexactly(int(lowered[at + 17 : end]))
    return status, b"\r\nconnection: close\r\n" not in lowered


async def worker(port: int, requests: list[bytes], offset: int, window: Window) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while (sent := time.perf_counter()) < window.end:
            writer.write(requests[i % len(requests)])
            i += 1
            try:
                status, keep_alive = await read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                # The server dropped the connection: count it and reconnect, keep the load up.
                window.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if sent >= window.start:
                window.latencies.append(time.perf_counter() - sent)
                window.errors += status >= 300
            if not keep_alive:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_seconds() -> float:
    """Busy CPU time of the whole machine (/proc/stat cpu line less idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


async def cpu_usage(pids: dict[str, int], window: Window) -> tuple[float, dict[str, float], float]:
    """Share of one core used by this client, by each server and by the machine."""
    await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
    own, machine = time.process_time(), machine_seconds()
    theirs = {name: cpu_seconds(pid) for name, pid in pids.items()}
    await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
    span = window.end - window.start
    servers = {name: (cpu_seconds(pid) - theirs[name]) / span for name, pid in pids.items()}
    client = (time.process_time() - own) / span
    return client, servers, (machine_seconds() - machine) / span


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def measure(
    targets: list[tuple[int, list[bytes]]],
    concurrency: int,
    warmup: float,
    duration: float,
    pids: dict[str, int],
) -> Result:
    """Connection c drives targets[c % len(targets)]: (a server's port, its requests)."""
    now = time.perf_counter()
    window = Window(now + warmup, now + warmup + duration)
    cpu = asyncio.ensure_future(cpu_usage(pids, window))
    workers = []
    for c in range(concurrency):
        port, requests = targets[c % len(targets)]
        step = max(1, len(requests) // concurrency)  # connections start at different samples
        workers.append(worker(port, requests, c * step, window))
    await asyncio.gather(*workers)
    client_cpu, server_cpu, machine_cpu = await cpu
    ordered = sorted(window.latencies)
    count = len(ordered)
    return Result(
        requests=count,
        errors=window.errors,
        rps=count / duration,
        p50_ms=percentile(ordered, 0.50) * 1e3,
        p99_ms=percentile(ordered, 0.99) * 1e3,
        mean_ms=(sum(ordered) / count * 1e3) if count else float("nan"),
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        machine_cpu=machine_cpu,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    # more targets, PORT:PATH: several models spread over several instances, each model
    # always on the same one (connection c drives target c % the number of targets)
    parser.add_argument("--also", action="append", default=[], help="PORT:PATH")
    parser.add_argument("--bodies", type=Path, required=True, help="one JSON body per line")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--pid", action="append", default=[], help="name=pid to sample CPU of")
    args = parser.parse_args()
    bodies = args.bodies.read_bytes().splitlines()
    pairs = [(args.port, args.path)]
    pairs += [(int(port), path) for port, path in (item.split(":", 1) for item in args.also)]
    targets = [
        (port, [encode(path, port, body) for body in bodies if body]) for port, path in pairs
    ]
    pids = {name: int(pid) for name, pid in (item.split("=", 1) for item in args.pid)}
    result = uvloop.run(measure(targets, args.concurrency, args.warmup, args.duration, pids))
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
