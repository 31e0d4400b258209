"""The floor under our predict: River and a JSON codec inside a functions-framework function,
with none of the platform (no tenant, no validation, no log, no monitoring, no audit).

`predict` answers `model.predict_one(x)`; `predict_learn` also learns the sample and, when
FLOOR_REDIS_URL is set, appends it to a Valkey list with one round trip (what our
predict_learn's one Lua call is at least). Both ratios over the echo are ceilings: no
served function that does the work can do better in the same framework.
"""

from __future__ import annotations

import os

import functions_framework.aio
import orjson
from river.datasets import TrumpApproval
from starlette.requests import Request
from starlette.responses import Response

from shared.catalog import build_model

N_LEARN = 500
STEPS = [{"kind": "standard_scaler", "params": {}}, {"kind": "linear_regression", "params": {}}]

_, model = build_model({"steps": STEPS})
for x, y in list(TrumpApproval())[:N_LEARN]:
    model.learn_one(x, y)

_redis = None
if url := os.environ.get("FLOOR_REDIS_URL"):
    import redis.asyncio as aioredis

    _redis = aioredis.Redis.from_url(url)


@functions_framework.aio.http
async def app(request: Request) -> Response:
    body = orjson.loads(await request.body())
    x = body["x"]
    answer = {"prediction": model.predict_one(x)}
    if "y" in body:
        model.learn_one(x, body["y"])
        if _redis is not None:
            await _redis.rpush("floor:log", orjson.dumps(body))
    return Response(orjson.dumps(answer), media_type="application/json")
