"""The bench's floor function does the work it stands for: River's answer, learned in order."""

from __future__ import annotations

import orjson
from river.datasets import TrumpApproval
from starlette.testclient import TestClient

from bench import floor
from bench.floor_app import app as floor_app
from bench.inprocess import trained_model


def test_floor_predicts_and_learns_exactly_as_river() -> None:
    samples = [(dict(x), float(y)) for x, y in TrumpApproval()]
    river = trained_model(floor.STEPS, samples[: floor.N_LEARN])
    with TestClient(floor_app) as client:
        for x, y in samples[floor.N_LEARN : floor.N_LEARN + 20]:
            answer = client.post("/", content=orjson.dumps({"x": x, "y": y}))
            assert answer.json() == {"prediction": river.predict_one(x)}
            river.learn_one(x, y)
        x = samples[0][0]
        assert client.post("/", content=orjson.dumps({"x": x})).json() == {
            "prediction": river.predict_one(x)
        }
