"""The bench's floor function does the work it stands for: River's answer, learned in order."""

from __future__ import annotations

import httpx
import orjson
from river.datasets import TrumpApproval

from bench import floor
from bench.floor_app import app as floor_app
from bench.inprocess import trained_model


async def test_floor_predicts_and_learns_exactly_as_river() -> None:
    samples = [(dict(x), float(y)) for x, y in TrumpApproval()]
    river = trained_model(floor.STEPS, samples[: floor.N_LEARN])
    transport = httpx.ASGITransport(app=floor_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://floor") as client:
        for x, y in samples[floor.N_LEARN : floor.N_LEARN + 20]:
            answer = await client.post("/", content=orjson.dumps({"x": x, "y": y}))
            assert answer.json() == {"prediction": river.predict_one(x)}
            river.learn_one(x, y)
        x = samples[0][0]
        answer = await client.post("/", content=orjson.dumps({"x": x}))
        assert answer.json() == {"prediction": river.predict_one(x)}
