"""G2: 4 app processes on one Valkey, 8 concurrent clients, 2,000 learns: none lost, none
applied twice, and every instance holds exactly the replay of the log."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis
from river import linear_model, preprocessing

from tests.servers import AppProcess

pytestmark = pytest.mark.slow
SPEC = {"name": "shared", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
TOTAL, CLIENTS = 2000, 8


def sample(i: int) -> tuple[dict[str, float], float]:
    rng = random.Random(i)
    x = {"a": rng.uniform(-5, 5), "b": rng.uniform(0, 10), "i": float(i % 17)}
    return x, 2.0 * x["a"] - 0.5 * x["b"] + rng.gauss(0, 0.1)


def test_concurrent_learns_from_four_processes(
    redis_url: str, app_factory: Callable[..., AppProcess]
) -> None:
    # SNAPSHOT_EVERY=150 makes instances compact (snapshot + trim) while the load runs.
    apps = [app_factory({"STATE_URL": redis_url, "SNAPSHOT_EVERY": "150"}) for _ in range(4)]
    headers = {"X-Tenant-ID": "acme"}
    assert httpx.post(f"{apps[0].url}/api/v1/models", json=SPEC, headers=headers).status_code == 201

    def client(worker: int) -> list[tuple[int, int, Any]]:
        """Send this worker's share, alternating instances and learn / predict_learn."""
        acked: list[tuple[int, int, Any]] = []  # (seq, sample id, prediction or None)
        with httpx.Client(headers=headers, timeout=30) as http:
            for n, i in enumerate(range(worker, TOTAL, CLIENTS)):
                base = apps[(worker + n) % len(apps)].url
                x, y = sample(i)
                if n % 2:
                    r = http.post(
                        f"{base}/api/v1/models/shared/predict_learn", json={"x": x, "y": y}
                    )
                    assert r.status_code == 200, r.text
                    acked.append((r.json()["seq"], i, r.json()["prediction"]))
                else:
                    r = http.post(f"{base}/api/v1/models/shared/learn", json={"x": x, "y": y})
                    assert r.status_code == 200, r.text
                    assert r.json()["learned"] == 1
                    acked.append((r.json()["first_seq"], i, None))
        return acked

    with ThreadPoolExecutor(CLIENTS) as pool:
        acked = sorted(a for share in pool.map(client, range(CLIENTS)) for a in share)

    # exactly-once: the acknowledged seqs are 1..2000, each sample once
    assert [seq for seq, _, _ in acked] == list(range(1, TOTAL + 1))
    assert sorted(i for _, i, _ in acked) == list(range(TOTAL))

    # replay the log order in-process; every prequential prediction was made on exactly the
    # state before its sample, whichever instance served it
    local = preprocessing.StandardScaler() | linear_model.LinearRegression()
    for _, i, prediction in acked:
        x, y = sample(i)
        if prediction is not None:
            assert prediction == local.predict_one(x)
        local.learn_one(x, y)

    probes = [sample(10_000 + k)[0] for k in range(5)]
    expected = [local.predict_one(x) for x in probes]
    for app in apps:
        info = httpx.get(f"{app.url}/api/v1/models/shared", headers=headers).json()
        assert info["seq"] == TOTAL
        got = [
            httpx.post(
                f"{app.url}/api/v1/models/shared/predict", json={"x": x}, headers=headers
            ).json()
            for x in probes
        ]
        assert [g["prediction"] for g in got] == expected
        assert all(g["seq"] == TOTAL for g in got)

    # instances compacted while the load ran: a newer snapshot exists and the log was trimmed
    state = redis.Redis.from_url(redis_url).hgetall("ml:{acme:shared}:state")
    assert int(state[b"snap_seq"]) >= 150 and int(state[b"trimmed"]) == int(state[b"snap_seq"])

    # a cold instance (snapshot + tail after compaction) converges to the same model
    cold = app_factory({"STATE_URL": redis_url})
    got = [
        httpx.post(
            f"{cold.url}/api/v1/models/shared/predict", json={"x": x}, headers=headers
        ).json()["prediction"]
        for x in probes
    ]
    assert got == expected
