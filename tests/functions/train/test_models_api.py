"""Model lifecycle over the API, and tenant isolation."""

from __future__ import annotations

import httpx

from shared.catalog import KINDS

LINEAR = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}


async def test_create_get_list_delete(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/models", json={**LINEAR, "description": "demo"})
    assert created.status_code == 201
    body = created.json()
    assert body["task"] == "regression" and body["seq"] == 0 and body["version"] == 1
    assert "uid" not in body and "blueprint" not in body

    learned = await client.post("/api/v1/models/m/learn", json={"x": {"a": 1}, "y": 2})
    assert learned.json() == {"learned": 1, "first_seq": 1, "last_seq": 1}
    assert (await client.get("/api/v1/models/m")).json()["seq"] == 1
    assert [m["name"] for m in (await client.get("/api/v1/models")).json()["models"]] == ["m"]

    assert (await client.delete("/api/v1/models/m")).status_code == 204
    assert (await client.get("/api/v1/models/m")).status_code == 404
    assert (await client.post("/api/v1/models/m/predict", json={"x": {"a": 1}})).status_code == 404
    # the name is free again, and the new model starts from scratch, with a version number
    # above the deleted model's (a recreated name never reuses a version)
    assert (await client.post("/api/v1/models", json=LINEAR)).status_code == 201
    again = await client.post("/api/v1/models/m/predict", json={"x": {"a": 1}})
    assert again.json() == {
        "prediction": 0.0,
        "model_version": 2,
        "seq": 0,
        "prediction_id": again.json()["prediction_id"],
    }


async def test_catalog_lists_every_kind(client: httpx.AsyncClient) -> None:
    kinds = (await client.get("/api/v1/catalog")).json()["kinds"]
    names = {k["kind"] for k in kinds}
    assert names == set(KINDS)
    required = {
        "standard_scaler",
        "min_max_scaler",
        "one_hot_encoder",
        "tfidf",
        "bag_of_words",
        "linear_regression",
        "pa_regressor",
        "knn_regressor",
        "hoeffding_tree_regressor",
        "hoeffding_adaptive_tree_regressor",
        "bagging_regressor",
        "amf_regressor",
        "snarimax",
        "holt_winters",
        "logistic_regression",
        "perceptron",
        "gaussian_nb",
        "multinomial_nb",
        "hoeffding_tree_classifier",
        "hoeffding_adaptive_tree_classifier",
        "amf_classifier",
        "knn_classifier",
        "adaptive_random_forest_classifier",
        "adaptive_random_forest_regressor",
        "mlp_regressor",
        "mlp_classifier",
    }
    assert required <= names
    linear = next(k for k in kinds if k["kind"] == "linear_regression")
    assert {"l1", "l2"} <= set(linear["params"]) and linear["task"] == "regression"


async def test_tenant_b_never_sees_tenant_a(client: httpx.AsyncClient) -> None:
    a = {"X-Tenant-ID": "tenant-a"}
    b = {"X-Tenant-ID": "tenant-b"}
    assert (await client.post("/api/v1/models", json=LINEAR, headers=a)).status_code == 201
    await client.post("/api/v1/models/m/learn", json={"x": {"a": 1}, "y": 5}, headers=a)
    before = (await client.post("/api/v1/models/m/predict", json={"x": {"a": 1}}, headers=a)).json()

    assert (await client.get("/api/v1/models", headers=b)).json() == {"models": []}
    for method, path, body in [
        ("GET", "/api/v1/models/m", None),
        ("POST", "/api/v1/models/m/predict", {"x": {"a": 1}}),
        ("POST", "/api/v1/models/m/predict_learn", {"x": {"a": 1}, "y": 1}),
        ("POST", "/api/v1/models/m/learn", {"x": {"a": 1}, "y": 1}),
        ("DELETE", "/api/v1/models/m", None),
    ]:
        response = await client.request(method, path, json=body, headers=b)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "model_not_found"

    # the same name in tenant b is another model
    assert (await client.post("/api/v1/models", json=LINEAR, headers=b)).status_code == 201
    await client.post("/api/v1/models/m/learn", json={"x": {"a": 1}, "y": -50}, headers=b)
    after = (await client.post("/api/v1/models/m/predict", json={"x": {"a": 1}}, headers=a)).json()
    after.pop("prediction_id"), before.pop("prediction_id")  # a new one per predict
    assert after == before
    assert (await client.get("/api/v1/models/m", headers=a)).json()["seq"] == 1


async def test_every_response_has_a_request_id(client: httpx.AsyncClient) -> None:
    mine = await client.get("/api/v1/models", headers={"X-Request-ID": "req-123"})
    assert mine.headers["x-request-id"] == "req-123"
    minted = await client.get("/api/v1/models")
    assert len(minted.headers["x-request-id"]) == 32
    assert (await client.get("/health")).headers["x-request-id"]


async def test_text_model_takes_a_string(client: httpx.AsyncClient) -> None:
    spec = {"name": "tickets", "steps": [{"kind": "tfidf"}, {"kind": "multinomial_nb"}]}
    assert (await client.post("/api/v1/models", json=spec)).status_code == 201
    tickets = [
        ("Server down: production server is not responding", "critical"),
        ("Typo on the pricing page", "low"),
        ("Database outage, production is down", "critical"),
        ("Please update my billing address", "low"),
    ]
    body = {"samples": [{"x": text, "y": label} for text, label in tickets]}
    assert (await client.post("/api/v1/models/tickets/learn", json=body)).status_code == 200
    answer = (
        await client.post(
            "/api/v1/models/tickets/predict",
            json={"x": "Server down / Production server is not responding"},
        )
    ).json()
    assert answer["prediction"] == "critical"
    assert answer["proba"]["critical"] > 0.5
