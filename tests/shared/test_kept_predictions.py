"""Kept predictions (delayed labels), the contract of both backends side by side: keep, fetch,
the atomic label (append + outcome + labelled mark), expiry, bounds, pending, forget."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest

from shared.state import MemoryStateStore, RedisStateStore, StateStore
from shared.state.base import Idempotency
from shared.state.predictions import (
    Kept,
    KeptPredictions,
    LabelWrite,
    MemoryKeptPredictions,
    RedisKeptPredictions,
)
from tests.conftest import STATE_BACKENDS, redis_store_for

X = '{"b":2.0,"a":1.0}'  # kept as sent: key order included


@pytest.fixture(params=STATE_BACKENDS)
async def backends(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[StateStore, KeptPredictions]]:
    if request.param == "memory":
        store = MemoryStateStore()
        yield store, MemoryKeptPredictions(store, ttl_seconds=3600, max_kept=3)
        return
    redis_store = redis_store_for(request, request.param)
    yield redis_store, RedisKeptPredictions(redis_store.connection, 3600, 3)
    await redis_store.close()


def outcome(p: float) -> str:
    return json.dumps({"v": 1, "t": 1.0, "p": p, "q": None})


def write(pid: str, kept: Kept, y: float) -> LabelWrite:
    return LabelWrite(pid, kept.token, kept.outcome, f"[{kept.x},{y}]")


async def fetch_one(kept: KeptPredictions, pid: str) -> Kept | str:
    return (await kept.fetch("t", "m", "u", [pid], time.time(), None)).kept[pid]


async def test_keep_fetch_label_once(backends: tuple[StateStore, KeptPredictions]) -> None:
    store, kept = backends
    await store.create_model("t", "m", "u", "{}", b"snap0")
    assert await kept.keep("t", "m", [("p1", X, outcome(1.5)), ("p2", X, outcome(2.5))]) == [
        True,
        True,
    ]
    found = await fetch_one(kept, "p1")
    assert isinstance(found, Kept) and found.x == X and found.outcome == outcome(1.5)
    assert await fetch_one(kept, "nope") == "missing"
    assert (await kept.pending("t", "m", time.time())).count == 2

    done = await kept.label("t", "m", "u", 0, [write("p1", found, 3.0)], time.time(), None, "", 60)
    assert (done.result.status, done.result.first, done.result.last) == ("appended", 1, 1)
    assert done.pending_outcomes == 1
    log = await store.read_log("t", "m", "u", 0)
    assert [e.data for e in log.entries] == [f"[{X},3.0]"]
    outcomes = (await store.read_outcomes("t", "m", 10)).outcomes
    assert outcomes == [f"[1,[{X},3.0],{outcome(1.5)}]"]  # the prediction made at predict time

    assert await fetch_one(kept, "p1") == "labelled"
    again = await kept.label("t", "m", "u", 1, [write("p1", found, 3.0)], time.time(), None, "", 60)
    assert (again.gone, again.reason) == ("p1", "labelled")
    assert await kept.keep("t", "m", [("p1", X, outcome(9.0))]) == [False]  # no reuse
    assert (await kept.pending("t", "m", time.time())).count == 1
    assert await store.log_length("t", "m") == 1


async def test_a_label_is_conditional_on_the_log_and_on_the_keep(
    backends: tuple[StateStore, KeptPredictions],
) -> None:
    store, kept = backends
    await store.create_model("t", "m", "u", "{}", b"snap0")
    await kept.keep("t", "m", [("p", X, outcome(1.0))])
    found = await fetch_one(kept, "p")
    assert isinstance(found, Kept)
    await store.append("t", "m", "u", 0, ["[{},1.0]"], expected=False, idempotency=None)
    behind = await kept.label("t", "m", "u", 0, [write("p", found, 2.0)], time.time(), None, "", 60)
    assert behind.result.status == "behind" and await fetch_one(kept, "p") != "labelled"
    # kept again under the same id (a new prediction): the old token no longer labels it
    await kept.keep("t", "m", [("p", X, outcome(5.0))])
    stale = await kept.label("t", "m", "u", 1, [write("p", found, 2.0)], time.time(), None, "", 60)
    assert (stale.gone, stale.reason) == ("p", "missing")
    assert await store.log_length("t", "m") == 1


async def test_two_concurrent_labels_of_one_id_learn_it_once(
    backends: tuple[StateStore, KeptPredictions],
) -> None:
    store, kept = backends
    await store.create_model("t", "m", "u", "{}", b"snap0")
    await kept.keep("t", "m", [("p", X, outcome(1.0))])
    found = await fetch_one(kept, "p")
    assert isinstance(found, Kept)
    now = time.time()
    first, second = await asyncio.gather(
        kept.label("t", "m", "u", 0, [write("p", found, 1.0)], now, None, "", 60),
        kept.label("t", "m", "u", 0, [write("p", found, 2.0)], now, None, "", 60),
    )
    assert sorted([first.result.status, second.result.status]) == ["appended", "missing"]
    assert await store.log_length("t", "m") == 1


async def test_idempotency_key_replays_the_first_answer(
    backends: tuple[StateStore, KeptPredictions],
) -> None:
    store, kept = backends
    await store.create_model("t", "m", "u", "{}", b"snap0")
    await kept.keep("t", "m", [("p", X, outcome(1.0))])
    found = await fetch_one(kept, "p")
    assert isinstance(found, Kept)
    key = Idempotency("k", "h1")
    first = await kept.label("t", "m", "u", 0, [write("p", found, 1.0)], time.time(), key, "A", 60)
    assert first.result.status == "appended"
    assert (await kept.fetch("t", "m", "u", ["p"], time.time(), key)).replay == "A"
    retry = await kept.label("t", "m", "u", 1, [write("p", found, 1.0)], time.time(), key, "B", 60)
    assert (retry.result.status, retry.result.response) == ("replay", "A")
    other = Idempotency("k", "h2")
    assert (await kept.fetch("t", "m", "u", ["p"], time.time(), other)).conflict
    # another lineage (an activation: a new uid) is a new write
    assert (await kept.fetch("t", "m", "u2", ["p"], time.time(), key)).replay is None


async def test_expiry_bound_and_forget(backends: tuple[StateStore, KeptPredictions]) -> None:
    store, kept = backends
    await store.create_model("t", "m", "u", "{}", b"snap0")
    await kept.keep("t", "m", [(f"p{i}", X, outcome(float(i))) for i in range(5)])
    # max_kept=3: the two oldest went
    assert [await fetch_one(kept, f"p{i}") == "missing" for i in range(5)] == [
        True,
        True,
        False,
        False,
        False,
    ]
    pending = await kept.pending("t", "m", time.time())
    assert pending.count == 3 and pending.oldest_at is not None
    found = await fetch_one(kept, "p4")
    assert isinstance(found, Kept)
    later = time.time() + 3601  # past the TTL: expired, whether or not swept yet
    assert (await kept.fetch("t", "m", "u", ["p4"], later, None)).kept["p4"] == "missing"
    assert (await kept.pending("t", "m", later)).count == 0
    gone = await kept.label("t", "m", "u", 0, [write("p4", found, 1.0)], later, None, "", 60)
    assert gone.gone == "p4" and await store.log_length("t", "m") == 0
    await kept.forget("t", "m")
    assert await fetch_one(kept, "p4") == "missing"
    assert (await kept.pending("t", "m", time.time())).count == 0


async def test_tenants_and_models_are_apart(backends: tuple[StateStore, KeptPredictions]) -> None:
    _, kept = backends
    await kept.keep("a", "m", [("p", X, outcome(1.0))])
    assert (await kept.fetch("b", "m", "u", ["p"], time.time(), None)).kept["p"] == "missing"
    assert (await kept.fetch("a", "n", "u", ["p"], time.time(), None)).kept["p"] == "missing"


async def test_keep_fresh_keeps_only_a_prediction_made_on_the_whole_log(
    backends: tuple[StateStore, KeptPredictions],
) -> None:
    store, kept = backends
    await store.create_model("t", "m", "u", "{}", b"snap0")
    assert (await kept.keep_fresh("t", "m", "u", 0, ("p1", X, outcome(1.0)))).status == "kept"
    assert isinstance(await fetch_one(kept, "p1"), Kept)

    await store.append("t", "m", "u", 0, [f"[{X},1.0]"], expected=True, idempotency=None)
    behind = await kept.keep_fresh("t", "m", "u", 0, ("p2", X, outcome(2.0)))
    assert behind.status == "behind" and [(e.seq, e.data) for e in behind.entries] == [
        (1, f"[{X},1.0]")
    ]
    assert await fetch_one(kept, "p2") == "missing"  # nothing kept for a stale prediction
    assert (await kept.keep_fresh("t", "m", "u", 1, ("p2", X, outcome(2.0)))).status == "kept"

    assert (await kept.keep_fresh("t", "m", "other", 1, ("p3", X, outcome(3.0)))).status == (
        "stale"
    )
    assert (await kept.keep_fresh("t", "gone", "u", 0, ("p3", X, outcome(3.0)))).status == (
        "missing"
    )
    found = await fetch_one(kept, "p1")
    assert isinstance(found, Kept)
    await kept.label("t", "m", "u", 1, [write("p1", found, 3.0)], time.time(), None, "", 60)
    assert (await kept.keep_fresh("t", "m", "u", 2, ("p1", X, outcome(4.0)))).status == ("labelled")


async def test_a_group_of_fresh_keeps_answers_each_as_alone(
    backends: tuple[StateStore, KeptPredictions],
) -> None:
    """`keep_fresh_group` checks the log once: moved → every member `behind` with the same
    tail and nothing kept; current → each kept, but an id labelled already `labelled` alone."""
    store, kept = backends
    await store.create_model("t", "m", "u", "{}", b"snap0")
    assert (await kept.keep_fresh("t", "m", "u", 0, ("p0", X, outcome(0.0)))).status == "kept"
    found = await fetch_one(kept, "p0")
    assert isinstance(found, Kept)
    await kept.label("t", "m", "u", 0, [write("p0", found, 5.0)], time.time(), None, "", 60)

    group = [("p1", X, outcome(1.0)), ("p0", X, outcome(9.0)), ("p2", X, outcome(2.0))]
    behind = await kept.keep_fresh_group("t", "m", "u", 0, group)
    assert [b.status for b in behind] == ["behind"] * 3
    assert all([(e.seq, e.data) for e in b.entries] == [(1, f"[{X},5.0]")] for b in behind)
    assert await fetch_one(kept, "p1") == "missing"  # nothing kept for a stale group

    answers = await kept.keep_fresh_group("t", "m", "u", 1, group)
    assert [a.status for a in answers] == ["kept", "labelled", "kept"]
    for pid, p in (("p1", 1.0), ("p2", 2.0)):
        got = await fetch_one(kept, pid)
        assert isinstance(got, Kept) and (got.x, got.outcome) == (X, outcome(p))
    assert await fetch_one(kept, "p0") == "labelled"
    assert [a.status for a in await kept.keep_fresh_group("t", "m", "v", 1, group)] == (
        ["stale"] * 3
    )
    assert [a.status for a in await kept.keep_fresh_group("t", "n", "u", 1, group)] == (
        ["missing"] * 3
    )


async def test_concurrent_fresh_keeps_of_one_model_share_script_calls(redis_url: str) -> None:
    """Group commit on Redis: concurrent keeps of one model at one (uid, seq) go as one script
    call behind the one in flight; another seq is its own group. Each caller gets exactly its
    own item's answer."""
    store = RedisStateStore(redis_url)
    kept = RedisKeptPredictions(store.connection, 3600, 1000)
    await store.create_model("t", "g", "u", "{}", b"snap0")
    assert (await kept.keep_fresh("t", "g", "u", 0, ("done", X, outcome(0.0)))).status == "kept"
    found = await fetch_one_of(kept, "g", "done")
    await kept.label("t", "g", "u", 0, [write("done", found, 5.0)], time.time(), None, "", 60)
    client = store.connection.client
    before = int((await client.info("commandstats"))["cmdstat_evalsha"]["calls"])

    current = [(f"p{i}", X, outcome(float(i))) for i in range(30)] + [("done", X, outcome(1.0))]
    late = [(f"q{i}", X, outcome(float(i))) for i in range(10)]  # made at seq 0: behind
    answers = await asyncio.gather(
        *(kept.keep_fresh("t", "g", "u", 1, item) for item in current),
        *(kept.keep_fresh("t", "g", "u", 0, item) for item in late),
    )

    calls = int((await client.info("commandstats"))["cmdstat_evalsha"]["calls"]) - before
    # per (uid, seq): the first alone at once, all that queued behind it in one call
    assert calls == 4, calls
    assert [a.status for a in answers] == ["kept"] * 30 + ["labelled"] + ["behind"] * 10
    assert all([(e.seq, e.data) for e in a.entries] == [(1, f"[{X},5.0]")] for a in answers[31:])
    got = await kept.fetch("t", "g", "u", [pid for pid, _, _ in current + late], time.time(), None)
    for pid, x, out in current[:30]:
        one = got.kept[pid]
        assert isinstance(one, Kept) and (one.x, one.outcome) == (x, out)
    assert got.kept["done"] == "labelled"
    assert all(got.kept[pid] == "missing" for pid, _, _ in late)
    await store.close()


async def test_a_cancelled_leader_strands_no_follower(redis_url: str) -> None:
    """The keep in flight is cancelled with followers queued behind it: they are sent all the
    same (a follower cancelled before its group went has its item dropped, not kept)."""
    store = RedisStateStore(redis_url)
    kept = RedisKeptPredictions(store.connection, 3600, 1000)
    await store.create_model("t", "c", "u", "{}", b"snap0")
    await kept.keep_fresh("t", "c", "u", 0, ("warm", X, outcome(0.0)))  # the script loaded

    def keep(pid: str) -> asyncio.Task:
        return asyncio.create_task(kept.keep_fresh("t", "c", "u", 0, (pid, X, outcome(1.0))))

    leader = keep("lead")
    await asyncio.sleep(0)  # its call in flight
    followers = [keep(f"f{i}") for i in range(5)]
    gone = keep("gone")
    await asyncio.sleep(0)  # all queued behind it
    leader.cancel()
    gone.cancel()
    assert [(await f).status for f in followers] == ["kept"] * 5
    with pytest.raises(asyncio.CancelledError):
        await gone
    got = await kept.fetch("t", "c", "u", ["f0", "f4", "gone"], time.time(), None)
    assert isinstance(got.kept["f0"], Kept) and isinstance(got.kept["f4"], Kept)
    assert got.kept["gone"] == "missing"
    await store.close()


async def fetch_one_of(kept: KeptPredictions, name: str, pid: str) -> Kept:
    found = (await kept.fetch("t", name, "u", [pid], time.time(), None)).kept[pid]
    assert isinstance(found, Kept)
    return found


async def test_memory_records_stay_bounded() -> None:
    """In one process nothing else expires the records: labelled ids are bounded by the kept
    bound and TTL, Idempotency-Key answers by their TTL — and the forgotten stay refused."""
    store = MemoryStateStore()
    kept = MemoryKeptPredictions(store, ttl_seconds=3600, max_kept=3)
    await store.create_model("t", "m", "u", "{}", b"snap0")
    now = time.time()
    for i in range(6):
        await kept.keep("t", "m", [(f"p{i}", X, outcome(float(i)))])
        found = await fetch_one(kept, f"p{i}")
        assert isinstance(found, Kept)
        key = Idempotency(f"k{i}", "h")
        done = await kept.label("t", "m", "u", i, [write(f"p{i}", found, 1.0)], now, key, "A", 60)
        assert done.result.status == "appended"
    model = kept._models["t", "m"]
    assert len(model.labelled) <= 3 and len(model.answers) == 6
    # an early-forgotten labelled id is refused all the same (it is no longer kept)
    again = await kept.label("t", "m", "u", 6, [write("p0", found, 1.0)], now, None, "", 60)
    assert again.gone == "p0" and await store.log_length("t", "m") == 6
    await kept.pending("t", "m", now + 61)  # any access prunes
    assert len(model.answers) == 0
