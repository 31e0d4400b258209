"""Riders (shared/state/riders.py): buffered monitoring written in the round trip of a request's
own store call, counted by Valkey itself (INFO total_reads_processed)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis

from shared.events.bus import LocalEventLog
from shared.monitoring.monitor import Monitor
from shared.state import MemoryStateStore, RedisStateStore
from shared.state.base import MonitorWrite, Ride

WRITE = MonitorWrite(
    audit={"t": ['{"row":1}', '{"row":2}']},
    latest={("t", "m"): {"last_prediction": 5.0}},
    counts={("t", "m"): {"predictions": 2.0}},
)

LOADS = MonitorWrite(counts={("t", "nothing"): {"predictions": 1.0}})  # no model: no write


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStateStore]:
    store = RedisStateStore(redis_url)
    await store.create_model("t", "m", "u", "{}", b"snap0")
    await store.write_monitoring(LOADS, 10)  # the touch script is loaded
    await store.read_log("t", "m", "u", 0)  # and the read, the connection open
    yield store
    await store.close()


@pytest.fixture
def info(redis_url: str) -> Callable[[], int]:
    """The server's reads so far (each INFO counts itself once)."""
    client = redis.Redis.from_url(redis_url)

    def reads() -> int:
        return int(client.info("stats")["total_reads_processed"])

    return reads


def one_ride(batch: MonitorWrite, landed: list[BaseException | None]) -> Callable[[], Ride | None]:
    handed: list[Ride] = []

    def take() -> Ride | None:
        if handed:
            return None
        handed.append(Ride(batch, 10, landed.append))
        return handed[0]

    return take


async def test_a_ride_costs_the_request_no_round_trip(
    store: RedisStateStore, info: Callable[[], int]
) -> None:
    landed: list[BaseException | None] = []
    leave = store.ride_along(one_ride(WRITE, landed))
    before = info()
    read = await store.read_log("t", "m", "u", 0)
    assert info() - before == 2  # the request's call, the second INFO
    assert read.status == "ok" and landed == [None]
    assert await store.read_monitor("t", "m") == {"last_prediction": 5.0, "predictions": 2.0}
    assert await store.read_audit("t", 0, 9) == ['{"row":2}', '{"row":1}']
    leave()


async def test_a_flush_is_one_round_trip(store: RedisStateStore, info: Callable[[], int]) -> None:
    before = info()
    await store.write_monitoring(WRITE, 10)
    assert info() - before == 2  # no SCRIPT EXISTS before the pipeline
    assert (await store.read_monitor("t", "m"))["predictions"] == 2.0


async def test_scripts_the_server_lost_are_loaded_again(store: RedisStateStore) -> None:
    landed: list[BaseException | None] = []
    store.ride_along(one_ride(WRITE, landed))
    await store.connection.client.script_flush()
    assert (await store.read_log("t", "m", "u", 0)).status == "ok"
    assert landed == [None]
    assert (await store.read_monitor("t", "m"))["predictions"] == 2.0


async def test_a_riders_error_is_not_the_requests(store: RedisStateStore) -> None:
    await store.connection.client.set("ml:{t}:audit", "not a list")
    landed: list[BaseException | None] = []
    store.ride_along(one_ride(WRITE, landed))
    assert (await store.read_log("t", "m", "u", 0)).status == "ok"
    assert len(landed) == 1 and isinstance(landed[0], redis.ResponseError)
    assert (await store.read_monitor("t", "m"))["predictions"] == 2.0  # the rest was written


async def test_a_failed_call_fails_its_riders(redis_url: str) -> None:
    store = RedisStateStore(redis_url)
    await store.create_model("t", "m", "u", "{}", b"snap0")
    landed: list[BaseException | None] = []
    store.ride_along(one_ride(WRITE, landed))
    await store.connection.client.client_kill_filter(skipme=False)  # every connection drops
    with pytest.raises(Exception):  # noqa: B017 (whatever the request answers, 503 or a retry)
        await store.read_log("t", "m", "u", 0)
    await store.close()
    assert len(landed) == 1 and landed[0] is not None


async def test_memory_and_cluster_never_ask(cluster_url: str) -> None:
    asked: list[int] = []

    def take() -> Ride | None:
        asked.append(1)
        return None

    memory = MemoryStateStore()
    memory.ride_along(take)
    await memory.create_model("t", "m", "u", "{}", b"snap0")
    await memory.read_log("t", "m", "u", 0)
    cluster = RedisStateStore(cluster_url)
    cluster.ride_along(take)
    await cluster.create_model("t", "m", "u", "{}", b"snap0")
    await cluster.read_log("t", "m", "u", 0)
    await cluster.close()
    assert asked == []


async def test_the_monitor_hands_its_buffer_to_the_next_call_in_order(
    store: RedisStateStore, tmp_path: Path, info: Callable[[], int]
) -> None:
    monitor = Monitor(store, LocalEventLog(tmp_path), audit_max_rows=100, ride_after_seconds=0.0)
    monitor.predicted("t", "m", "predict", time.perf_counter(), {"a": 1.0}, {"prediction": 1})
    before = info()
    await store.read_log("t", "m", "u", 0)  # carries the buffer: nothing was awaited before
    assert info() - before == 2
    assert (await store.read_monitor("t", "m"))["predictions"] == 1.0
    monitor.predicted("t", "m", "predict", time.perf_counter(), {"a": 2.0}, {"prediction": 2})
    await monitor.flush()  # nothing in flight: written at once, after the first
    rows = [json.loads(r) for r in await store.read_audit("t", 0, 9)]
    assert [r["output"] for r in rows] == [{"prediction": 2}, {"prediction": 1}]
    await monitor.close()
    assert (await store.read_log("t", "m", "u", 0)).status == "ok"  # it stopped asking
