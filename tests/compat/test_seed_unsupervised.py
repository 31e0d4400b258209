"""Issue 17 on the seed APIs: a detector or a clusterer has no seed shape, so every seed
route that learns or keeps a prediction answers 4xx for one, and has learned nothing and kept
nothing (the model's seq and its pending labels are unchanged)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

# a detector that scores y itself (gaussian_scorer learned a seed target), and a clusterer;
# named as the engine names a symbol's model, so its routes reach them too
MODELS = {
    "detector": {"kind": "gaussian_scorer"},
    "clusterer": {"kind": "kmeans", "params": {"n_clusters": 2}},
}
NAME = "market-AAPL"
X = {"in_1": 0.01, "in_2": -0.02}
# (method, path, body, where the error is: the answer or its first per-item result)
ROUTES: dict[str, tuple[str, str, Any, str]] = {
    "online_train": (
        "POST",
        f"/api/v1/online/models/{NAME}/train",
        {"features": X, "target": 1.5},
        "answer",
    ),
    "online_predict": ("POST", f"/api/v1/online/models/{NAME}/predict", {"features": X}, "answer"),
    "online_predict_learn": (
        "POST",
        f"/api/v1/online/models/{NAME}/predict_learn",
        {"features": X, "target": 1.5},
        "answer",
    ),
    "ml_predict": ("POST", f"/api/v1/ml/models/{NAME}/predict", {"input_data": X}, "answer"),
    "ml_predict_batch": (
        "POST",
        f"/api/v1/ml/models/{NAME}/predict/batch",
        {"input_data": [X, X]},
        "answer",
    ),
    "engine_predict": ("GET", "/api/v1/engine/predict?symbol=AAPL", None, "answer"),
    "engine_predict_batch": (
        "POST",
        "/api/v1/engine/predict/batch",
        {"symbols": ["AAPL"]},
        "item",
    ),
}


async def _state(client: httpx.AsyncClient) -> tuple[int, int]:
    """The model's log position and its kept predictions waiting for a label."""
    fresh = await client.get(f"/api/v1/models/{NAME}/freshness")
    assert fresh.status_code == 200, fresh.text
    body = fresh.json()
    return body["seq"], body["pending_labels"]


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_seed_routes_refuse_detectors_and_clusterers_before_anything_happens(
    client: httpx.AsyncClient, model: str, route: str
) -> None:
    created = await client.post("/api/v1/models", json={"name": NAME, **MODELS[model]})
    assert created.status_code == 201, created.text
    before = await _state(client)
    method, path, body, where = ROUTES[route]
    for _ in range(3):  # the reviewer's reproduction: three tries learned three samples
        answer = await client.request(method, path, json=body)
        if where == "item":
            assert answer.status_code == 200, answer.text
            [result] = answer.json()["results"]
            assert result["error"]["code"] == "unsupported_task"
        else:
            assert 400 <= answer.status_code < 500, answer.text
            assert answer.json()["error"]["code"] == "unsupported_task"
    assert await _state(client) == before
