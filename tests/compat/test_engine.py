"""Seeds 002/004, ML engine: features, admin train (async) and its status, models and
versions, activation, predict (single and batch with per-symbol failure), monitoring, audit,
admin key, tenant isolation — on River's SP500Stocks (no network)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from river import datasets

from tests.compat.conftest import ADMIN, OTHER, eventually

ENGINE_PREFIXES = ("", "/api/v1", "/api/v1/engine")


def sp500(symbol: str) -> list[float]:
    return [x[symbol] for x, _ in datasets.SP500Stocks()]


async def train(client: httpx.AsyncClient, prefix: str = "", **body: Any) -> dict[str, Any]:
    started = await client.post(f"{prefix}/admin/train", headers=ADMIN, json=body or None)
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "running"
    return await eventually(
        lambda: client.get(f"{prefix}/admin/train/status", headers=ADMIN),
        lambda b: b["status"] != "running",
    )


@pytest.mark.parametrize("prefix", ENGINE_PREFIXES)
async def test_features_are_the_lags_of_the_returns(client: httpx.AsyncClient, prefix: str) -> None:
    body = (await client.get(f"{prefix}/features", params={"symbol": "aapl"})).json()
    returns = sp500("AAPL")
    assert body["symbol"] == "AAPL" and body["n_lags"] == 12
    assert body["features"] == {f"in_{i}": returns[-i] for i in range(1, 13)}
    assert body["source"] == "river:SP500Stocks"
    missing = await client.get(f"{prefix}/features", params={"symbol": "NOPE"})
    assert missing.status_code == 404
    assert (await client.get(f"{prefix}/features")).status_code == 400


async def test_admin_routes_need_the_key(client: httpx.AsyncClient) -> None:
    for prefix in ENGINE_PREFIXES:
        for method, path in [
            ("POST", "/admin/train"),
            ("GET", "/admin/train/status"),
            ("POST", "/admin/activate/v1"),
            ("POST", "/admin/reload"),
            ("DELETE", "/admin/audit/clear"),
        ]:
            if prefix == "/api/v1" and path == "/admin/reload":
                continue  # the core's own admin reload (tested with the core)
            url = f"{prefix}{path}"
            missing = await client.request(method, url)
            assert missing.status_code == 401, url
            wrong = await client.request(method, url, headers={"X-API-Key": "wrong"})
            assert wrong.status_code == 403, url


async def test_train_predict_activate_monitor(client: httpx.AsyncClient) -> None:
    status = (await client.get("/admin/train/status", headers=ADMIN)).json()
    assert status == {"status": "idle", "version": None}
    done = await train(client)
    assert done["version"] == "v1" and done["status"] == "succeeded", done
    assert set(done["symbols"]) == {"AAPL", "MSFT"}
    assert done["params"]["lookback"] == 300 and done["params"]["cv_folds"] == 5
    assert done["symbols"]["AAPL"]["model_version"] == 2  # v1 of the core model is untrained
    assert {"mae", "rmse", "r2"} <= set(done["metrics"])

    listed = (await client.get("/models")).json()
    assert listed["available_versions"] == ["v1"] and listed["active_version"] == "v1"
    for path in ("/models/v1", "/model/v1", "/api/v1/model/1", "/api/v1/engine/models/v1"):
        detail = await client.get(path)
        assert detail.json()["version"] == "v1" and detail.json()["active"] is True, path
    assert (await client.get("/models/v9")).status_code == 404

    # predict = the core's prediction with the active version, on the same features
    predicted = (await client.get("/predict", params={"symbol": "AAPL"})).json()
    features = (await client.get("/features", params={"symbol": "AAPL"})).json()["features"]
    core = await client.post(
        "/api/v1/models/market-AAPL/predict", params={"alias": "active"}, json={"x": features}
    )
    assert predicted["prediction"] == core.json()["prediction"]
    assert predicted["model"] == "market-AAPL" and predicted["model_version"] == 2
    for prefix in ("/api/v1", "/api/v1/engine"):
        again = (await client.get(f"{prefix}/predict", params={"symbol": "AAPL"})).json()
        assert again["prediction"] == predicted["prediction"]

    # v2, then roll back to v1 (public route) and forward to v2 (admin route)
    second = await train(client, "/api/v1", symbols=["AAPL"], lookback=200)
    assert second["version"] == "v2" and second["symbols"]["AAPL"]["model_version"] == 3
    assert (await client.get("/models")).json()["active_version"] == "v2"
    rolled = (await client.post("/models/activate/v1")).json()
    assert rolled["active_version"] == "v1" and rolled["previous_version"] == "v2"
    assert rolled["symbols"] == {"AAPL": 2, "MSFT": 2}
    back = await client.post("/api/v1/admin/activate/v2", headers=ADMIN)
    assert back.json()["active_version"] == "v2"
    assert (await client.get("/api/v1/models/market-AAPL")).json()["version"] == 3

    history = (await client.get("/monitoring/history")).json()
    assert [v["version"] for v in history["versions"]] == ["v1", "v2"]
    assert history["active_version"] == "v2" and history["versions"][1]["active"] is True

    predicted = (await client.get("/predict", params={"symbol": "AAPL"})).json()
    recent = (await client.get("/predictions/recent", params={"symbol": "AAPL"})).json()
    newest = recent["predictions"][0]
    assert newest["symbol"] == "AAPL" and newest["model"] == "market-AAPL"
    assert newest["output"]["prediction"] == predicted["prediction"]
    assert newest["request_id"] == predicted["request_id"]

    latency = (await client.get("/monitoring/latency", params={"symbol": "AAPL"})).json()
    assert latency["symbols"][0]["routes"]["predict"]["count"] >= 1
    freshness = (await client.get("/monitoring/freshness")).json()
    assert [s["symbol"] for s in freshness["symbols"]] == ["AAPL", "MSFT"]
    assert freshness["symbols"][0]["last_prediction_at"] is not None
    drift = (await client.get("/monitoring/drift")).json()
    assert drift["threshold"] == 0.05 and len(drift["symbols"]) == 2
    assert drift["drift_detected"] is False  # the newest returns are part of the training set
    assert all(0.0 <= s["p_value"] <= 1.0 for s in drift["symbols"])

    reloaded = await client.post("/admin/reload", headers=ADMIN)
    assert reloaded.status_code == 200 and "dropped" in reloaded.json()
    cleared = await client.delete("/admin/audit/clear", headers=ADMIN)
    assert cleared.json()["deleted"] >= 3
    assert (await client.get("/predictions/recent")).json()["predictions"] == []


async def test_batch_fails_per_symbol(client: httpx.AsyncClient) -> None:
    await train(client, symbols=["AAPL"])
    answer = await client.post("/predict/batch", json={"symbols": ["AAPL", "KO", "B@D"]})
    assert answer.status_code == 200
    body = answer.json()
    ok, untrained, bad = body["results"]
    assert ok["symbol"] == "AAPL" and isinstance(ok["prediction"], float)
    assert untrained["error"]["code"] == "model_not_found"
    assert bad["error"]["code"] == "invalid_symbol"
    assert body["succeeded"] == 1 and body["failed"] == 2
    engine = await client.post("/api/v1/engine/predict/batch", json={"symbols": ["AAPL"]})
    assert engine.json()["results"][0]["prediction"] == ok["prediction"]


async def test_training_twice_at_once_is_refused(client: httpx.AsyncClient) -> None:
    first = await client.post("/admin/train", headers=ADMIN)
    assert first.status_code == 202
    second = await client.post("/admin/train", headers=ADMIN)
    assert second.status_code == 409 and second.json()["error"]["code"] == "training_in_progress"
    await eventually(
        lambda: client.get("/admin/train/status", headers=ADMIN),
        lambda b: b["status"] != "running",
    )


async def test_engine_is_tenant_scoped(client: httpx.AsyncClient) -> None:
    await train(client, symbols=["AAPL"])
    assert (await client.get("/models", headers=OTHER)).json()["available_versions"] == []
    other = await client.get("/predict", params={"symbol": "AAPL"}, headers=OTHER)
    assert other.status_code == 404
    assert (await client.get("/models/v1", headers=OTHER)).status_code == 404
    status = (await client.get("/admin/train/status", headers={**ADMIN, **OTHER})).json()
    assert status["status"] == "idle"
    no_tenant = await client.get("/models", headers={"X-Tenant-ID": ""})
    assert no_tenant.status_code == 400
