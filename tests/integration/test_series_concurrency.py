"""4 app processes x 8 clients posting observations to one series on Valkey: no lost update,
and every lag window is a contiguous run of the one global order."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.servers import AppProcess

pytestmark = pytest.mark.slow
H = {"X-Tenant-ID": "acme"}
CLIENTS, POSTS, LAGS = 8, 40, 5


def test_concurrent_observations_never_interleave_lags(
    redis_url: str, app_factory: Callable[..., AppProcess]
) -> None:
    apps = [app_factory({"STATE_URL": redis_url}) for _ in range(4)]
    assert (
        httpx.put(f"{apps[0].url}/api/v1/series/s", json={"n_lags": LAGS}, headers=H).status_code
        == 200
    )

    def client(worker: int) -> list[dict]:
        entries = []
        with httpx.Client(headers=H, timeout=30) as http:
            for n in range(POSTS):
                value = float(worker * 1000 + n)  # unique, so the global order can be rebuilt
                base = apps[(worker + n) % len(apps)].url
                r = http.post(f"{base}/api/v1/series/s/observations", json={"value": value})
                assert r.status_code == 200, r.text
                entries += r.json()["observations"]
        return entries

    with ThreadPoolExecutor(CLIENTS) as pool:
        entries = [e for share in pool.map(client, range(CLIENTS)) for e in share]

    assert sorted(e["count"] for e in entries) == list(range(1, CLIENTS * POSTS + 1))
    order = {e["count"]: e["value"] for e in entries}  # the atomic order the store applied
    for e in entries:
        earlier = [order[c] for c in range(e["count"] - 1, max(0, e["count"] - 1 - LAGS), -1)]
        assert list(e["features"].values()) == earlier  # a contiguous run, most recent first
    # each client's own values appear in the order it sent them
    for worker in range(CLIENTS):
        mine = [c for c in sorted(order) if order[c] // 1000 == worker]
        assert [order[c] for c in mine] == sorted(order[c] for c in mine)
    final = httpx.get(f"{apps[3].url}/api/v1/series/s", headers=H).json()
    assert final["count"] == CLIENTS * POSTS
    assert final["window"] == [order[c] for c in range(CLIENTS * POSTS, CLIENTS * POSTS - LAGS, -1)]
