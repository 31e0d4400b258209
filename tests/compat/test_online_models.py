"""Seeds 000/001, model services: train, predict, predict_learn, predict_many, model_metrics,
metrics, info, each equal to the core call it maps to."""

from __future__ import annotations

import math
from typing import Any

import httpx
import river
from river import linear_model, metrics, preprocessing, utils

from tests.compat.conftest import OTHER

MODELS = "/api/v1/online/models"
LINEAR = {"steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}


def stream(n: int) -> list[tuple[dict[str, float], float]]:
    """Lag-shaped samples of a trending, seasonal series."""
    values = [100 + 2 * t + 10 * math.sin(t / 2) for t in range(n + 3)]
    return [
        ({"in_1": values[t - 1], "in_2": values[t - 2], "in_3": values[t - 3]}, values[t])
        for t in range(3, n + 3)
    ]


async def make(client: httpx.AsyncClient, name: str) -> None:
    assert (await client.post("/api/v1/models", json={"name": name, **LINEAR})).status_code == 201


async def test_seed_examples_on_a_preset_model(client: httpx.AsyncClient) -> None:
    """The seeds' curl bodies, verbatim; the preset model is created on first use."""
    trained = await client.post(
        f"{MODELS}/linear_regression/train",
        json={"features": {"in_1": 125.0, "in_2": 120.0, "in_3": 115.0}, "target": 130.0},
    )
    assert trained.json() == {"message": "Model trained successfully"}
    core = (await client.get("/api/v1/models/linear_regression")).json()
    assert core["seq"] == 1 and core["spec"]["steps"][-1]["kind"] == "linear_regression"
    predicted = await client.post(
        f"{MODELS}/linear_regression/predict",
        json={"features": {"in_1": 130.0, "in_2": 125.0, "in_3": 120.0}},
    )
    [point] = predicted.json()["forecast"]
    assert set(point) == {"value", "prediction_id"} and isinstance(point["value"], float)
    # the forecast is kept: its truth, once known, is a delayed label
    label = {"prediction_id": point["prediction_id"], "y": 131.0}
    labelled = await client.post("/api/v1/models/linear_regression/labels", json=label)
    assert labelled.status_code == 200 and labelled.json()["learned"] == 1
    learned = await client.post(
        f"{MODELS}/linear_regression/predict_learn",
        json={"features": {"in_1": 135.0, "in_2": 130.0, "in_3": 125.0}, "target": 140.0},
    )
    assert set(learned.json()) == {"prediction"}
    info = (await client.get(f"{MODELS}/linear_regression/info")).json()
    assert info["model_name"] == "linear_regression" and info["forecast_horizon"] == 1
    assert info["regression_model"] is True and "neural_network" in info["available_models"]
    # as the seed documents it: the library's version, a string; the registry's beside it
    assert info["model_version"] == river.__version__ and isinstance(info["model_version"], str)
    assert isinstance(info["registry_version"], int) and info["registry_version"] >= 0


async def test_every_preset_builds_and_learns(client: httpx.AsyncClient) -> None:
    info = (await client.get(f"{MODELS}/knn_regressor/info")).json()
    for name in info["available_models"]:
        sample = {"features": {"in_1": 1.0, "in_2": 2.0}, "target": 3.0}
        answer = await client.post(f"{MODELS}/{name}/predict_learn", json=sample)
        assert answer.status_code == 200, (name, answer.text)


async def test_predict_and_predict_learn_equal_the_core(client: httpx.AsyncClient) -> None:
    await make(client, "via_compat")
    await make(client, "via_core")
    for x, y in stream(30):
        compat = await client.post(
            f"{MODELS}/via_compat/predict_learn", json={"features": x, "target": y}
        )
        core = await client.post("/api/v1/models/via_core/predict_learn", json={"x": x, "y": y})
        assert compat.json()["prediction"] == core.json()["prediction"]
    x = {"in_1": 150.0, "in_2": 148.0, "in_3": 146.0}
    compat = await client.post(f"{MODELS}/via_compat/predict", json={"features": x})
    core = await client.post("/api/v1/models/via_core/predict", json={"x": x})
    [point] = compat.json()["forecast"]
    assert point["value"] == core.json()["prediction"] and point["prediction_id"]


async def test_predict_many_is_the_recursive_forecast(client: httpx.AsyncClient) -> None:
    await make(client, "lagged")
    await client.put("/api/v1/series/s", json={"n_lags": 3})
    await client.put("/api/v1/series/s/models", json={"models": ["lagged"]})
    for value in [100 + 2 * t + 10 * math.sin(t / 2) for t in range(40)]:
        await client.post("/api/v1/online/features/add", json={"series_id": "s", "value": value})
    series = (await client.get("/api/v1/series/s")).json()
    many = await client.post(f"{MODELS}/lagged/predict_many", json={"features": series["features"]})
    core = await client.post("/api/v1/models/lagged/forecast", json={"series": "s", "horizon": 5})
    assert many.status_code == 200
    assert [p["value"] for p in many.json()["forecast"]] == core.json()["forecast"]
    assert len(many.json()["forecast"]) == 5
    bad = await client.post(f"{MODELS}/lagged/predict_many", json={"features": {"in_2": 1.0}})
    assert bad.status_code == 422


async def test_model_metrics_are_the_monitoring_ledger(client: httpx.AsyncClient) -> None:
    await make(client, "scored")
    model = preprocessing.StandardScaler() | linear_model.LinearRegression()
    mae, mse, rolling = metrics.MAE(), metrics.MSE(), utils.Rolling(metrics.MAE, window_size=5)
    last: dict[str, Any] = {}
    for x, y in stream(25):
        expected = model.predict_one(x)
        mae.update(y, expected)
        mse.update(y, expected)
        rolling.update(y, expected)
        model.learn_one(x, y)
        answer = await client.post(
            f"{MODELS}/scored/predict_learn", json={"features": x, "target": y}
        )
        last = {"prediction": answer.json()["prediction"], "actual": y}
    summary = (await client.get(f"{MODELS}/scored/model_metrics")).json()
    default = summary["default"]
    assert default["count"] == 25
    assert math.isclose(default["mae"], mae.get(), rel_tol=1e-12)
    assert math.isclose(default["mse"], mse.get(), rel_tol=1e-12)
    assert math.isclose(default["mae_5"], rolling.get(), rel_tol=1e-12)
    assert {"rmse", "mape", "rmse_10", "mape_20"} <= set(default)
    assert default["last_prediction"] == last["prediction"]
    assert default["last_actual"] == last["actual"]
    assert default["last_error"] == last["actual"] - last["prediction"]
    assert summary["model_info"]["model_name"] == "scored"
    core = (await client.get("/api/v1/models/scored/metrics")).json()
    assert core["versions"][-1]["cumulative"]["mae"] == default["mae"]
    text = (await client.get(f"{MODELS}/scored/metrics")).text
    assert f'ml_model_mae{{model="scored",series="default"}} {default["mae"]!r}' in text
    assert 'ml_model_predictions_total{model="scored",series="default"} 25.0' in text


async def test_unknown_models_and_tenants(client: httpx.AsyncClient) -> None:
    body = {"features": {"in_1": 1.0}, "target": 2.0}
    missing = await client.post(f"{MODELS}/not_a_preset/predict_learn", json=body)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    await make(client, "private")
    await client.post(f"{MODELS}/private/train", json=body)
    x = {"features": body["features"]}
    other = await client.post(f"{MODELS}/private/predict", json=x, headers=OTHER)
    assert other.status_code == 404
    other = await client.get(f"{MODELS}/private/model_metrics", headers=OTHER)
    assert other.status_code == 404
    bad = await client.post(f"{MODELS}/private/train", json={"features": {"in_1": 1.0}})
    assert bad.status_code == 422
