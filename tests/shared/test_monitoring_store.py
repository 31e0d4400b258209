"""The monitoring part of the state store contract, against both backends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from shared.state import MemoryStateStore, StateStore
from shared.state.base import Idempotency, MonitorWrite
from tests.conftest import STATE_BACKENDS, redis_store_for


@pytest.fixture(params=STATE_BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryStateStore()
        return
    redis_store = redis_store_for(request, request.param)
    yield redis_store
    await redis_store.close()


def sample(i: int) -> str:
    return json.dumps([{"a": float(i)}, float(i) * 2])


async def test_outcome_is_logged_with_its_append_and_only_then(store: StateStore) -> None:
    await store.create_model("t", "m", "u", "{}", b"snap0")
    first, pending = await store.append_outcome(
        "t", "m", "u", 0, sample(1), '{"p":1}', idempotency=None
    )
    assert (first.status, first.first, first.last, pending) == ("appended", 1, 1, 1)
    # a plain learn in between takes seq 2 and logs no outcome
    await store.append("t", "m", "u", 1, [sample(2)], expected=False, idempotency=None)
    behind, pending = await store.append_outcome(
        "t", "m", "u", 1, sample(3), '{"p":3}', idempotency=None
    )
    assert (behind.status, [e.seq for e in behind.entries], pending) == ("behind", [2], 0)
    key = Idempotency("k", "h")
    third, pending = await store.append_outcome(
        "t", "m", "u", 2, sample(3), '{"p":3}', idempotency=key, response='{"r":3}'
    )
    assert (third.status, third.first, pending) == ("appended", 3, 2)
    replay, pending = await store.append_outcome(
        "t", "m", "u", 3, sample(3), '{"p":"again"}', idempotency=key, response="x"
    )
    assert (replay.status, replay.response, pending) == ("replay", '{"r":3}', 0)
    batch = await store.read_outcomes("t", "m", 10)
    assert (batch.generation, batch.state) == (0, None)
    assert [json.loads(o) for o in batch.outcomes] == [
        [1, [{"a": 1.0}, 2.0], {"p": 1}],
        [3, [{"a": 3.0}, 6.0], {"p": 3}],
    ]
    assert await store.log_length("t", "m") == 3


async def test_missing_or_stale_model_logs_no_outcome(store: StateStore) -> None:
    result, pending = await store.append_outcome(
        "t", "none", "u", 0, sample(1), "{}", idempotency=None
    )
    assert (result.status, pending) == ("missing", 0)
    await store.create_model("t", "m", "u", "{}", b"snap0")
    result, pending = await store.append_outcome(
        "t", "m", "old", 0, sample(1), "{}", idempotency=None
    )
    assert (result.status, pending) == ("stale", 0)
    assert (await store.read_outcomes("t", "m", 10)).outcomes == []


async def test_fold_is_compare_and_set(store: StateStore) -> None:
    await store.create_model("t", "m", "u", "{}", b"snap0")
    for i in range(3):
        await store.append_outcome("t", "m", "u", i, sample(i), "{}", idempotency=None)
    batch = await store.read_outcomes("t", "m", 2)
    assert len(batch.outcomes) == 2
    assert await store.save_outcomes("t", "m", batch.generation, 2, b"state-1")
    assert not await store.save_outcomes("t", "m", batch.generation, 2, b"lost the race")
    after = await store.read_outcomes("t", "m", 10)
    assert (after.generation, after.state, len(after.outcomes)) == (1, b"state-1", 1)
    assert not await store.save_outcomes("t", "gone", 0, 0, b"x")  # no model, no state


async def test_monitor_fields_keep_maxima_and_add_counts(store: StateStore) -> None:
    await store.create_model("t", "m", "u", "{}", b"snap0")
    write = MonitorWrite(
        latest={("t", "m"): {"last": 5.0}, ("t", "gone"): {"last": 1.0}},
        counts={("t", "m"): {"calls:predict": 2, "ms:predict": 0.5}},
    )
    await store.write_monitoring(write, 100)
    await store.write_monitoring(
        MonitorWrite(latest={("t", "m"): {"last": 3.0}}, counts={("t", "m"): {"calls:predict": 1}}),
        100,
    )
    assert await store.read_monitor("t", "m") == {
        "last": 5.0,
        "calls:predict": 3.0,
        "ms:predict": 0.5,
    }
    assert await store.read_monitor("t", "gone") == {}  # a deleted model is not recreated


async def test_audit_is_per_tenant_bounded_newest_first(store: StateStore) -> None:
    await store.write_monitoring(MonitorWrite(audit={"a": ["1", "2", "3"], "b": ["x"]}), 4)
    await store.write_monitoring(MonitorWrite(audit={"a": ["4", "5"]}), 4)
    assert await store.read_audit("a", 0, 9) == ["5", "4", "3", "2"]
    assert await store.read_audit("a", 1, 2) == ["4", "3"]
    assert await store.read_audit("b", 0, 9) == ["x"]
    assert await store.clear_audit("a") == 4
    assert await store.read_audit("a", 0, 9) == []
    assert await store.read_audit("b", 0, 9) == ["x"]


async def test_delete_drops_the_models_monitoring(store: StateStore) -> None:
    await store.create_model("t", "m", "u", "{}", b"snap0")
    await store.append_outcome("t", "m", "u", 0, sample(1), "{}", idempotency=None)
    await store.save_outcomes("t", "m", 0, 0, b"state")
    await store.write_monitoring(MonitorWrite(counts={("t", "m"): {"calls:predict": 1}}), 10)
    assert await store.delete_model("t", "m")
    await store.create_model("t", "m", "u2", "{}", b"snap0")
    batch = await store.read_outcomes("t", "m", 10)
    assert (batch.generation, batch.state, batch.outcomes) == (0, None, [])
    assert await store.read_monitor("t", "m") == {}
