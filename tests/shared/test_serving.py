"""The data plane (shared/serving.py) on memory://: every learning verb feeds the challenger's
shadow, pinned predictions go to the frozen versions and are reported to the monitor."""

from __future__ import annotations

import itertools
from typing import Any

from river import datasets

from shared.challenger import Challengers, shadow_name
from shared.labels import Label
from shared.online import OnlineModels
from shared.schemas import ModelSpec, Sample
from shared.serving import Serving
from shared.state import MemoryStateStore
from shared.state.predictions import MemoryKeptPredictions

SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
SAMPLES = list(itertools.islice(datasets.TrumpApproval(), 100))


class Recorder:
    """A monitor that keeps what it is told (the Observer hooks)."""

    def __init__(self) -> None:
        self.predictions: list[tuple[str, str, str, Any, dict[str, Any]]] = []
        self.batches: list[tuple[str, str, list[Any], dict[str, Any]]] = []

    def predicted(
        self, tenant: str, name: str, route: str, started: float, x: Any, answer: dict[str, Any]
    ) -> None:
        self.predictions.append((tenant, name, route, x, answer))

    def predicted_batch(
        self, tenant: str, name: str, started: float, instances: list[Any], answer: dict[str, Any]
    ) -> None:
        self.batches.append((tenant, name, instances, answer))

    def scored(
        self,
        tenant: str,
        name: str,
        started: float,
        x: Any,
        answer: dict[str, Any],
        pending: int,
        y: Any = None,
    ) -> None:
        pass

    def learned(self, tenant: str, name: str, started: float, count: int) -> None:
        pass

    def labelled(
        self,
        tenant: str,
        name: str,
        started: float,
        count: int,
        pending: int,
        labels: Any = (),
    ) -> None:
        pass


class Frozen:
    """Pinned versions: every alias names version 7, which always predicts 42."""

    async def resolve(self, tenant: str, name: str, version: str | None, alias: str | None) -> int:
        return int(version) if version is not None else 7

    async def predict_version(self, tenant: str, name: str, version: int, x: Any) -> dict[str, Any]:
        return {"prediction": 42.0, "model_version": version, "seq": None}

    async def predict_version_batch(
        self, tenant: str, name: str, version: int, instances: list[Any]
    ) -> dict[str, Any]:
        results = [{"prediction": 42.0} for _ in instances]
        return {"results": results, "model_version": version, "seq": None}

    async def describe_version(self, tenant: str, name: str, version: int) -> dict[str, Any]:
        return {"task": "regression", "text_input": False, "features": {}, "model_version": version}

    async def version_numbers(self, tenant: str, name: str) -> list[int]:
        return [7]


async def never_promote(tenant: str, model: str, blob: bytes, meta: dict[str, Any]) -> int:
    raise AssertionError("no promotion without a margin")


async def no_comparison(tenant: str, shadow: str, lineage: str) -> None:
    return None  # a regressor here: compared by counters, never folded


async def _serving(monitor: Recorder | None = None) -> tuple[Serving, Challengers, bytes]:
    store = MemoryStateStore()
    models = OnlineModels(store)
    record, blob = OnlineModels.prepare(ModelSpec.model_validate(SPEC))
    assert await models.install("t", record, blob)
    challengers = Challengers(
        models, never_promote, no_comparison, state=store, promote_margin=None, window=10
    )
    recorder = monitor if monitor is not None else Recorder()
    kept = MemoryKeptPredictions(store, ttl_seconds=3600, max_kept=1000)
    return Serving(models, challengers, Frozen(), recorder, kept), challengers, blob


async def test_every_learning_verb_feeds_the_shadow() -> None:
    serving, challengers, blob = await _serving()
    record = await serving.models.record("t", "m")
    # the challenger is the champion's own version: fed the same stream, it must stay equal
    await challengers.start("t", "m", 1, record, blob)
    learned = [Sample(x=x, y=y) for x, y in SAMPLES[:30]]
    await serving.learn("t", "m", learned, None)
    for x, y in SAMPLES[30:60]:
        await serving.predict_learn("t", "m", x, y, None)
    await serving.learn("t", "m", [Sample(x=x, y=y) for x, y in SAMPLES[60:90]], None)
    # delayed labels are learned samples too
    ids = [(await serving.predict("t", "m", x))["prediction_id"] for x, _ in SAMPLES[90:]]
    labels = [Label(pid, y) for pid, (_, y) in zip(ids, SAMPLES[90:], strict=True)]
    assert (await serving.label("t", "m", labels, None))["learned"] == 10

    models = serving.models
    assert await models.seq_of("t", shadow_name("m")) == await models.seq_of("t", "m") == 100
    compared = await challengers.compare("t", "m", 1, 1)
    assert compared["champion"]["n"] == 30
    assert compared["champion"] == compared["challenger"]
    probe = SAMPLES[0][0]
    assert await models.predict("t", shadow_name("m"), probe) == {
        **await models.predict("t", "m", probe),
        "model_version": 1,
    }


async def test_without_a_challenger_nothing_is_shadowed() -> None:
    serving, challengers, _ = await _serving()
    answer = await serving.learn("t", "m", [Sample(x=x, y=y) for x, y in SAMPLES[:5]], None)
    assert answer["learned"] == 5
    await serving.predict_learn("t", "m", *SAMPLES[5], None)
    assert not await challengers.active("t", "m")
    assert await serving.models.store.get_record("t", shadow_name("m")) is None


async def test_a_pinned_predict_reads_the_frozen_version_and_is_reported() -> None:
    monitor = Recorder()
    serving, _, _ = await _serving(monitor)
    x = SAMPLES[0][0]
    pinned = await serving.predict("t", "m", x, alias="champion")
    prediction_id = pinned.pop("prediction_id")  # kept for a later label like every one
    assert prediction_id
    assert pinned == {"prediction": 42.0, "model_version": 7, "seq": None}
    # audited with its id, so a later label joins it
    audited = {**pinned, "prediction_id": prediction_id}
    assert monitor.predictions == [("t", "m", "predict", x, audited)]
    assert (await serving.predict("t", "m", x, version="3"))["model_version"] == 3
    live = await serving.predict("t", "m", x)  # the live model: reported by OnlineModels
    assert live["seq"] == 0 and len(monitor.predictions) == 2


async def test_a_batch_equals_predict_row_for_row() -> None:
    serving, _, _ = await _serving()
    await serving.learn("t", "m", [Sample(x=x, y=y) for x, y in SAMPLES[:60]], None)
    xs = [x for x, _ in SAMPLES[60:]] * 2  # 60 rows: offloaded to the CPU pool (over 32)
    batch = await serving.predict_batch("t", "m", xs)
    singles = [(await serving.predict("t", "m", x))["prediction"] for x in xs]
    assert [r["prediction"] for r in batch["results"]] == singles  # float for float


async def test_a_pinned_batch_reads_the_frozen_version_and_is_reported() -> None:
    monitor = Recorder()
    serving, _, _ = await _serving(monitor)
    xs = [x for x, _ in SAMPLES[:3]]
    batch = await serving.predict_batch("t", "m", xs, version="5", ids=["a", "b", "c"])
    assert batch == {
        "results": [{"prediction": 42.0, "prediction_id": i} for i in "abc"],  # kept as asked
        "model_version": 5,
        "seq": None,
    }
    assert monitor.batches == [("t", "m", xs, batch)]
    assert (await serving.describe("t", "m", version="5"))["model_version"] == 5
    assert await serving.versions("t", "m") == [7]


async def test_describe_tells_the_features_learned_with_their_kinds() -> None:
    serving, _, _ = await _serving()
    assert (await serving.describe("t", "m"))["features"] == {}
    samples = [
        Sample(x={"b": 1, "a": True}, y=1.0),
        Sample(x={"b": 2.5, "a": False, "c": 3}, y=2.0),  # b: an int, then a float
    ]
    await serving.learn("t", "m", samples, None)
    described = await serving.describe("t", "m")
    assert described["features"] == {"b": "float", "a": "bool", "c": "int"}
    assert list(described["features"]) == ["b", "a", "c"]  # the order first seen
    assert described["task"] == "regression" and described["text_input"] is False
    assert described["seq"] == 2
