"""Group commit: concurrent predict_learns of one model in one instance are appended together
(one Lua call on Redis), and each is still predicted on exactly the state before its sample
in log order — G1 holds per sample (architecture.md §4)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from river import datasets, linear_model, preprocessing

from shared.errors import ApiError
from shared.online import OnlineModels
from shared.schemas import ModelSpec
from shared.state import MemoryStateStore, RedisStateStore
from shared.state.interfaces import StateStore
from tests.conftest import STATE_BACKENDS, redis_store_for

SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}


@pytest.fixture(params=STATE_BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryStateStore()
        return
    redis_store = redis_store_for(request, request.param)
    yield redis_store
    await redis_store.close()


def replay(log: list[tuple[dict, float]]) -> list[float]:
    """River's prequential predictions over the log order, in-process."""
    local = preprocessing.StandardScaler() | linear_model.LinearRegression()
    predictions = []
    for x, y in log:
        predictions.append(local.predict_one(x))
        local.learn_one(x, y)
    return predictions


async def test_concurrent_predict_learns_equal_the_prequential_replay_of_the_log(
    store: StateStore,
) -> None:
    one, other = OnlineModels(store), OnlineModels(store)  # two instances on one store
    record, blob = OnlineModels.prepare(ModelSpec.model_validate(SPEC))
    assert await one.install("t", record, blob)
    samples = [(dict(x), float(y)) for x, y in datasets.TrumpApproval()][:120]
    bad = len(samples) // 2  # an invalid y fails its own request alone

    async def send(index: int, x: dict, y: float) -> dict | ApiError:
        models = other if index % 7 == 0 else one  # contention from another instance too
        try:
            return await models.predict_learn("t", "m", x, "oops" if index == bad else y, None)
        except ApiError as exc:
            return exc

    answers = await asyncio.gather(*(send(i, x, y) for i, (x, y) in enumerate(samples)))

    failed = answers[bad]
    assert isinstance(failed, ApiError) and failed.status == 422
    served = [a for a in answers if not isinstance(a, ApiError)]
    assert len(served) == len(samples) - 1
    assert sorted(a["seq"] for a in served) == list(range(1, len(served) + 1))

    read = await store.read_log("t", "m", record["uid"], 0)
    log = [tuple(json.loads(entry.data)) for entry in read.entries]
    expected = replay(log)
    by_seq = {a["seq"]: a["prediction"] for a in served}
    assert [by_seq[seq] for seq in range(1, len(log) + 1)] == expected  # == floats
    # the monitoring stream: each outcome is the answer given, in seq order
    outcomes = (await store.read_outcomes("t", "m", 1000)).outcomes
    assert [json.loads(o)[2]["p"] for o in outcomes] == expected
    assert [json.loads(o)[0] for o in outcomes] == list(range(1, len(log) + 1))


async def test_one_instance_commits_concurrent_predict_learns_in_few_appends(
    redis_url: str,
) -> None:
    store = RedisStateStore(redis_url)
    models = OnlineModels(store)
    record, blob = OnlineModels.prepare(ModelSpec.model_validate({**SPEC, "name": "g"}))
    assert await models.install("t", record, blob)
    await models.predict_learn("t", "g", {"a": 1.0}, 1.0, None)  # warm
    client = store.connection.client
    before = int((await client.info("commandstats"))["cmdstat_evalsha"]["calls"])
    await asyncio.gather(
        *(models.predict_learn("t", "g", {"a": float(i)}, float(i), None) for i in range(40))
    )
    calls = int((await client.info("commandstats"))["cmdstat_evalsha"]["calls"]) - before
    assert calls < 10, calls  # grouped: far fewer Lua calls than requests
    assert await store.log_length("t", "g") == 41
    await store.close()
