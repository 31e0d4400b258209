"""The state store contract, run against both backends (memory and a real Valkey)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.state import MemoryStateStore, StateStore
from shared.state.base import Idempotency
from tests.conftest import STATE_BACKENDS, redis_store_for


@pytest.fixture(params=STATE_BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryStateStore()
        return
    redis_store = redis_store_for(request, request.param)
    yield redis_store
    await redis_store.close()


async def test_create_is_exclusive_and_scoped_by_tenant(store: StateStore) -> None:
    assert await store.create_model("a", "m", "u1", '{"name": "m"}', b"snap0")
    assert not await store.create_model("a", "m", "u2", '{"name": "m"}', b"other")
    assert await store.create_model("b", "m", "u3", '{"name": "m", "t": "b"}', b"snap0")
    assert await store.list_records("a") == ['{"name": "m"}']
    assert await store.get_record("b", "m") == '{"name": "m", "t": "b"}'
    assert await store.get_record("c", "m") is None
    assert await store.delete_model("a", "m")
    assert not await store.delete_model("a", "m")
    assert await store.list_records("a") == []
    assert await store.load("a", "m") is None


async def test_append_read_load(store: StateStore) -> None:
    await store.create_model("t", "m", "u", "{}", b"snap0")
    appended = await store.append("t", "m", "u", 0, ["s1", "s2"], expected=False, idempotency=None)
    assert (appended.status, appended.first, appended.last, appended.entries) == (
        "appended",
        1,
        2,
        [],
    )
    # a caller at seq 1 that appends gets the entry it missed
    behind = await store.append("t", "m", "u", 1, ["s3"], expected=False, idempotency=None)
    assert behind.status == "appended" and [e.data for e in behind.entries] == ["s2"]
    assert [e.seq for e in (await store.read_log("t", "m", "u", 1)).entries] == [2, 3]
    assert (await store.read_log("t", "m", "u", 3)).entries == []
    snapshot = await store.load("t", "m")
    assert snapshot is not None
    assert (snapshot.seq, snapshot.blob, [e.data for e in snapshot.tail]) == (
        0,
        b"snap0",
        ["s1", "s2", "s3"],
    )
    assert await store.log_length("t", "m") == 3


async def test_conditional_append_and_idempotency(store: StateStore) -> None:
    await store.create_model("t", "m", "u", "{}", b"snap0")
    key = Idempotency("k1", "hash-a")
    first = await store.append(
        "t", "m", "u", 0, ["s1"], expected=True, idempotency=key, response="R1"
    )
    assert first.status == "appended"
    # expected=True from a stale position: nothing appended, the missing entries come back
    stale = await store.append("t", "m", "u", 0, ["s2"], expected=True, idempotency=None)
    assert stale.status == "behind" and [e.data for e in stale.entries] == ["s1"]
    assert await store.log_length("t", "m") == 1
    replay = await store.append(
        "t", "m", "u", 1, ["s1"], expected=True, idempotency=key, response="R2"
    )
    assert (replay.status, replay.first, replay.last, replay.response) == ("replay", 1, 1, "R1")
    clash = await store.append(
        "t", "m", "u", 1, ["s9"], expected=True, idempotency=Idempotency("k1", "hash-b")
    )
    assert clash.status == "conflict"
    assert await store.log_length("t", "m") == 1


async def test_snapshot_trims_and_stale_callers_reload(store: StateStore) -> None:
    await store.create_model("t", "m", "u", "{}", b"snap0")
    await store.append(
        "t", "m", "u", 0, [f"s{i}" for i in range(1, 6)], expected=False, idempotency=None
    )
    assert await store.save_snapshot("t", "m", "u", 3, b"snap3")
    assert not await store.save_snapshot("t", "m", "u", 2, b"older")  # never goes back
    assert not await store.save_snapshot("t", "m", "u", 9, b"future")  # never ahead of the log
    snapshot = await store.load("t", "m")
    assert snapshot is not None and snapshot.seq == 3 and snapshot.blob == b"snap3"
    assert [e.seq for e in snapshot.tail] == [4, 5]
    assert (await store.read_log("t", "m", "u", 2)).status == "stale"
    assert (await store.read_log("t", "m", "u", 3)).status == "ok"
    assert (
        await store.append("t", "m", "u", 1, ["x"], expected=False, idempotency=None)
    ).status == "stale"


async def test_recreated_model_is_a_new_model(store: StateStore) -> None:
    await store.create_model("t", "m", "u1", "{}", b"a")
    await store.append("t", "m", "u1", 0, ["s1"], expected=False, idempotency=Idempotency("k", "h"))
    await store.delete_model("t", "m")
    assert (await store.read_log("t", "m", "u1", 1)).status == "missing"
    assert (
        await store.append("t", "m", "u1", 1, ["s"], expected=False, idempotency=None)
    ).status == "missing"
    await store.create_model("t", "m", "u2", "{}", b"b")
    assert (await store.read_log("t", "m", "u1", 1)).status == "stale"  # old uid → reload
    fresh = await store.append(
        "t", "m", "u2", 0, ["s1"], expected=False, idempotency=Idempotency("k", "h")
    )
    assert fresh.status == "appended" and fresh.first == 1  # old idempotency keys do not leak


async def test_lock_is_exclusive(store: StateStore) -> None:
    assert await store.try_lock("{t:m}:compact", 10_000)
    assert not await store.try_lock("{t:m}:compact", 10_000)
    assert await store.try_lock("{t:n}:compact", 10_000)


async def test_replace_starts_a_new_generation(store: StateStore) -> None:
    await store.create_model("t", "m", "u1", "{}", b"v1")
    await store.append("t", "m", "u1", 0, ["s1", "s2"], expected=False, idempotency=None)
    assert await store.replace_model("t", "m", "u2", '{"version": 2}', b"v2") == 2
    assert (await store.read_log("t", "m", "u1", 2)).status == "stale"  # warm instances reload
    snapshot = await store.load("t", "m")
    assert snapshot is not None
    assert (snapshot.uid, snapshot.seq, snapshot.blob, snapshot.tail) == ("u2", 2, b"v2", [])
    nxt = await store.append("t", "m", "u2", 2, ["s3"], expected=True, idempotency=None)
    assert (nxt.status, nxt.first) == ("appended", 3)  # seq keeps counting
    assert await store.replace_model("t", "ghost", "u", "{}", b"") is None


async def test_docs_and_counters(store: StateStore) -> None:
    await store.put_doc("job", "a", "j1", '{"status": "queued"}', 60)
    assert await store.get_doc("job", "a", "j1") == '{"status": "queued"}'
    assert await store.get_doc("job", "b", "j1") is None
    await store.add_counters("cmp", "a", "m", {"n": 1, "abs": 0.5})
    await store.add_counters("cmp", "a", "m", {"n": 1, "abs": 0.25})
    assert await store.get_counters("cmp", "a", "m") == {"n": 2.0, "abs": 0.75}
    await store.reset_counters("cmp", "a", "m")
    assert await store.get_counters("cmp", "a", "m") == {}
