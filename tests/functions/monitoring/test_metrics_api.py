"""The metrics, freshness, latency and overview routes over the in-process gateway."""

from __future__ import annotations

import httpx
from river import datasets, metrics, utils

from shared.monitoring.scoring import WINDOWS

SPEC = {"name": "trump", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
REGRESSION = {"mae": metrics.MAE, "mse": metrics.MSE, "rmse": metrics.RMSE, "mape": metrics.MAPE}


def river_metrics(pairs: list[tuple[float, float]]) -> dict[str, object]:
    cumulative = {n: make() for n, make in REGRESSION.items()}
    rolling = {
        w: {n: utils.Rolling(make, window_size=w) for n, make in REGRESSION.items()}
        for w in WINDOWS
    }
    for y, prediction in pairs:
        for group in (cumulative, *rolling.values()):
            for metric in group.values():
                metric.update(y, prediction)
    return {
        "cumulative": {n: m.get() for n, m in cumulative.items()},
        "rolling": {str(w): {n: m.get() for n, m in g.items()} for w, g in rolling.items()},
    }


async def prequential(client: httpx.AsyncClient, samples: list) -> list[tuple[float, float]]:
    pairs = []
    for x, y in samples:
        answer = await client.post("/api/v1/models/trump/predict_learn", json={"x": x, "y": y})
        assert answer.status_code == 200
        pairs.append((y, answer.json()["prediction"]))
    return pairs


async def test_metrics_per_version_equal_river(client: httpx.AsyncClient) -> None:
    samples = list(datasets.TrumpApproval())[:130]
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    first = await prequential(client, samples[:80])
    # a plain learn is not a prediction: it moves the model but is not scored
    learn = {"x": samples[80][0], "y": samples[80][1]}
    assert (await client.post("/api/v1/models/trump/learn", json=learn)).status_code == 200
    version = (await client.post("/api/v1/models/trump/versions", json={})).json()["version"]
    activated = await client.post(f"/api/v1/models/trump/versions/{version}/activate")
    assert activated.status_code == 200
    second = await prequential(client, samples[81:])

    body = (await client.get("/api/v1/models/trump/metrics")).json()
    assert (body["task"], body["active_version"], body["windows"]) == ("regression", 2, [5, 10, 20])
    v1, v2 = body["versions"]
    assert (v1["version"], v1["samples"], v1["first_seq"], v1["last_seq"]) == (1, 80, 1, 80)
    assert (v2["version"], v2["samples"], v2["first_seq"], v2["last_seq"]) == (2, 49, 82, 130)
    for got, pairs in ((v1, first), (v2, second)):
        expected = river_metrics(pairs)
        assert got["cumulative"] == expected["cumulative"]
        assert got["rolling"] == expected["rolling"]
    assert [p["sample"] for p in v1["history"]] == list(range(10, 81, 10))
    assert v1["history"][-1]["mae"] == v1["cumulative"]["mae"]


async def test_freshness_latency_and_overview(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    fresh = (await client.get("/api/v1/models/trump/freshness")).json()
    assert (fresh["seq"], fresh["last_learn_at"], fresh["last_prediction_at"]) == (0, None, None)
    assert fresh["active_version"] == 1 and fresh["active_version_age_seconds"] >= 0
    samples = list(datasets.TrumpApproval())[:30]
    await prequential(client, samples[:20])
    body = {"samples": [{"x": x, "y": y} for x, y in samples[20:]]}
    assert (await client.post("/api/v1/models/trump/learn", json=body)).status_code == 200
    await client.post("/api/v1/models/trump/predict", json={"x": samples[0][0]})
    await client.post("/api/v1/models/trump/predict", json={"x": {"gallup": "high"}})  # a 422

    fresh = (await client.get("/api/v1/models/trump/freshness")).json()
    assert fresh["seq"] == 30 and fresh["samples_since_last_version"] == 30
    assert fresh["seconds_since_last_learn"] >= 0 and fresh["seconds_since_last_prediction"] >= 0
    assert fresh["last_prediction_at"] >= fresh["last_learn_at"]

    routes = (await client.get("/api/v1/models/trump/latency")).json()["routes"]
    assert {r: routes[r]["count"] for r in routes} == {
        "learn": 1,
        "predict": 1,
        "predict_learn": 20,
    }
    for summary in routes.values():
        assert 0 < summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]

    [model] = (await client.get("/api/v1/monitoring/overview")).json()["models"]
    assert (model["name"], model["version"], model["seq"]) == ("trump", 1, 30)
    assert (model["predictions"], model["learned"], model["errors"]) == (21, 30, 1)
    assert model["calls"] == {"learn": 1, "predict": 1, "predict_learn": 20}
    assert model["errors_by_route"] == {"predict:4xx": 1}


async def test_unknown_model_version_and_bad_version(client: httpx.AsyncClient) -> None:
    for route in ("metrics", "drift", "freshness", "latency"):
        response = await client.get(f"/api/v1/models/nope/{route}")
        assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    assert (await client.get("/api/v1/models/trump/drift?version=9")).status_code == 404
    assert (await client.get("/api/v1/models/trump/drift?version=x")).status_code == 400
    empty = (await client.get("/api/v1/models/trump/metrics")).json()
    assert empty["versions"] == [] and empty["folded_seq"] == 0
    assert (await client.get("/api/v1/models/trump/drift")).json()["detected"] is False
