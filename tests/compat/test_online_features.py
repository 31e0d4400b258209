"""Seeds 000/001, feature service: info, add (dense lag features), series/{series_id}."""

from __future__ import annotations

import httpx

from tests.compat.conftest import OTHER

FEATURES = "/api/v1/online/features"
ZEROS = {f"in_{i}": 0.0 for i in range(1, 13)}


async def test_info_reports_max_lags_and_the_output_schema(client: httpx.AsyncClient) -> None:
    info = (await client.get(f"{FEATURES}/info")).json()
    assert info == {
        "service": "feature_service",
        "max_lags": 12,
        "output_format": "model_ready_in_1_to_in_12",
        "series_info": {},
    }
    await client.post(f"{FEATURES}/add", json={"series_id": "default", "value": 125.0})
    info = (await client.get(f"{FEATURES}/info")).json()
    assert info["series_info"] == {
        "default": {"length": 1, "latest_value": 125.0, "available_lags": 1}
    }


async def test_add_as_the_seed_documents(client: httpx.AsyncClient) -> None:
    answer = await client.post(f"{FEATURES}/add", json={"series_id": "default", "value": 115.0})
    assert answer.status_code == 200
    assert answer.json() == {
        "series_id": "default",
        "features": ZEROS,
        "target": 115.0,
        "available_lags": 0,
    }
    await client.post(f"{FEATURES}/add", json={"series_id": "default", "value": 120.0})
    body = await client.post(f"{FEATURES}/add", json={"series_id": "default", "value": 125.0})
    assert body.json() == {
        "series_id": "default",
        "features": {**ZEROS, "in_1": 120.0, "in_2": 115.0},
        "target": 125.0,
        "available_lags": 2,
    }
    series = (await client.get(f"{FEATURES}/series/default")).json()
    assert series == {
        "series_id": "default",
        "length": 3,
        "latest_value": 125.0,
        "available_lags": 3,
    }


async def test_add_equals_the_core_observation(client: httpx.AsyncClient) -> None:
    assert (await client.put("/api/v1/series/b", json={})).status_code == 200
    for value in [3.0, 1.5, 4.0, 1.0, 5.5, 9.0, 2.0, 6.5, 5.0, 3.5, 5.0, 8.0, 9.75, 7.0]:
        compat = await client.post(f"{FEATURES}/add", json={"series_id": "a", "value": value})
        core = await client.post("/api/v1/series/b/observations", json={"value": value})
        [entry] = core.json()["observations"]
        assert compat.json()["features"] == {**ZEROS, **entry["features"]}
        assert compat.json()["available_lags"] == entry["available_lags"]
        assert compat.json()["target"] == entry["target"]


async def test_unknown_series_is_404_and_tenants_are_isolated(client: httpx.AsyncClient) -> None:
    missing = await client.get(f"{FEATURES}/series/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "series_not_found"
    await client.post(f"{FEATURES}/add", json={"series_id": "mine", "value": 1.0})
    assert (await client.get(f"{FEATURES}/series/mine", headers=OTHER)).status_code == 404
    assert (await client.get(f"{FEATURES}/info", headers=OTHER)).json()["series_info"] == {}
    bad = await client.post(f"{FEATURES}/add", json={"series_id": "x", "value": "high"})
    assert bad.status_code == 422


async def test_the_seed_pipeline_next_add_predict_learn(client: httpx.AsyncClient) -> None:
    """`curl /next | jq '{series_id, value: .target}' | curl /add | jq '{features, target}'
    | curl /predict_learn`, with our paths."""
    predictions = []
    for _ in range(15):
        observation = (await client.get("/api/v1/online/ingestion/stream/next")).json()
        added = await client.post(
            f"{FEATURES}/add", json={"series_id": "manual_test", "value": observation["target"]}
        )
        features = added.json()
        learned = await client.post(
            "/api/v1/online/models/linear_regression/predict_learn",
            json={"features": features["features"], "target": features["target"]},
        )
        assert learned.status_code == 200
        predictions.append(learned.json()["prediction"])
    assert len(predictions) == 15 and predictions[-1] != 0.0
