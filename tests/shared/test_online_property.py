"""Property: any interleaving of learn / predict_learn / predict across several instances over
one state store gives, sample for sample, what River gives on the log order."""

from __future__ import annotations

import asyncio
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from river import linear_model, preprocessing

from shared.online import OnlineModels
from shared.schemas import ModelSpec, Sample
from shared.state import MemoryStateStore

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)
operation = st.tuples(
    st.integers(0, 2),  # which instance
    st.sampled_from(["learn", "predict_learn", "predict", "learn_many"]),
    st.fixed_dictionaries({"a": finite, "b": finite}),
    finite,
)


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(operation, min_size=1, max_size=40), snapshot_every=st.integers(1, 8))
def test_instances_agree_with_river_on_log_order(ops: list, snapshot_every: int) -> None:
    asyncio.run(_scenario(ops, snapshot_every))


async def _scenario(ops: list, snapshot_every: int) -> None:
    store = MemoryStateStore()
    instances = [OnlineModels(store, snapshot_every=snapshot_every) for _ in range(3)]
    spec = ModelSpec.model_validate(
        {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
    )
    record, blob = OnlineModels.prepare(spec)
    assert await instances[0].install("t", record, blob)
    seen: list[tuple[int, dict, float, float | None]] = []  # (seq, x, y, prediction)

    async def run(op: tuple) -> None:
        which, kind, x, y = op
        await asyncio.sleep(0)
        models = instances[which]
        if kind == "predict":
            await models.predict("t", "m", x)
        elif kind == "predict_learn":
            answer = await models.predict_learn("t", "m", x, y, None)
            seen.append((answer["seq"], x, y, answer["prediction"]))
        else:
            copies = 2 if kind == "learn_many" else 1
            done = await models.learn("t", "m", [Sample(x=x, y=y)] * copies, None)
            seen.extend((done["first_seq"] + k, x, y, None) for k in range(copies))

    await asyncio.gather(*(run(op) for op in ops))
    for models in instances:
        await models.drain()

    seen.sort(key=lambda s: s[0])
    assert [s[0] for s in seen] == list(range(1, len(seen) + 1))
    local = preprocessing.StandardScaler() | linear_model.LinearRegression()
    # JSON round trip, exactly as the log stores samples
    for _, x, y, prediction in seen:
        x = json.loads(json.dumps(x))
        if prediction is not None:
            assert prediction == local.predict_one(x)
        local.learn_one(x, y)
    probe = {"a": 1.5, "b": -2.0}
    for models in instances:
        assert (await models.predict("t", "m", probe))["prediction"] == local.predict_one(probe)
