"""Batch prediction: one result or one item error per instance, in order, each `==` River's
predict_one of it (never the vectorised predict_many, which differs in the last bits)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from river import compose, datasets, linear_model, preprocessing

from shared.learning import label_key
from shared.settings import reset_settings_cache

TRUMP = {
    "name": "trump",
    "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression", "params": {"l2": 0.0}}],
}
PHISH = {"name": "phish", "steps": [{"kind": "standard_scaler"}, {"kind": "logistic_regression"}]}
SAMPLES: list[tuple[dict[str, Any], float]] = list(datasets.TrumpApproval())
PHISHING: list[tuple[dict[str, Any], bool]] = list(datasets.Phishing())
LEARNED = 500


@pytest.fixture
async def client(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> httpx.AsyncClient:
    """The in-process gateway with room for 1,000 instances in a body, and at most 1,000."""
    monkeypatch.setenv("MAX_BODY_BYTES", str(1 << 20))
    monkeypatch.setenv("BATCH_MAX_ITEMS", "1000")
    reset_settings_cache()  # the runtime reads them on the first request
    return client


def trained_trump() -> compose.Pipeline:
    model = preprocessing.StandardScaler() | linear_model.LinearRegression(l2=0.0)
    for x, y in SAMPLES[:LEARNED]:
        model.learn_one(x, y)
    return model


def trained_phish() -> compose.Pipeline:
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for x, y in PHISHING[:200]:
        model.learn_one(x, y)
    return model


async def create(client: httpx.AsyncClient, spec: dict[str, Any], samples: list[Any]) -> None:
    assert (await client.post("/api/v1/models", json=spec)).status_code == 201
    body = {"samples": [{"x": x, "y": y} for x, y in samples]}
    assert (await client.post(f"/api/v1/models/{spec['name']}/learn", json=body)).status_code == 200


@pytest.fixture
async def trump(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await create(client, TRUMP, SAMPLES[:LEARNED])
    return client


async def batch(client: httpx.AsyncClient, instances: list[Any]) -> httpx.Response:
    return await client.post("/api/v1/models/trump/predict/batch", json={"instances": instances})


async def test_1000_instances_with_3_bad_give_997_results_and_3_item_errors(
    trump: httpx.AsyncClient,
) -> None:
    instances: list[Any] = [x for x, _ in SAMPLES[:1000]]
    bad = {
        3: {**instances[3], "gallup": "high"},  # text on a numeric model
        500: {**instances[500], "ipsos": ["NaN"]},  # JSON has no NaN: sent as a list
        998: 42,  # not an object
    }
    for index, value in bad.items():
        instances[index] = value
    response = await batch(trump, instances)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_version"], body["seq"]) == (1, LEARNED)
    results = body["results"]
    assert len(results) == 1000
    assert {i for i, r in enumerate(results) if "error" in r} == set(bad)
    assert all(results[i]["error"]["code"] == "invalid_features" for i in bad)
    local = trained_trump()
    for index, (x, result) in enumerate(zip(instances, results, strict=True)):
        if index not in bad:
            assert len(result.pop("prediction_id")) == 32  # kept for a later label
            assert result == {"prediction": local.predict_one(x)}


@pytest.mark.parametrize("size", [1, 31, 1000])
async def test_every_batch_equals_predict_one_exactly(trump: httpx.AsyncClient, size: int) -> None:
    instances = [x for x, _ in SAMPLES[:size]]
    results = (await batch(trump, instances)).json()["results"]
    local = trained_trump()
    assert [r["prediction"] for r in results] == [local.predict_one(x) for x in instances]


@pytest.mark.parametrize("size", [10, 100])
async def test_an_instance_the_model_cannot_predict_fails_alone(
    trump: httpx.AsyncClient, size: int
) -> None:
    # null passes the input check but makes StandardScaler raise (a single predict is a 422);
    # in a small batch it used to fail the whole batch, in a large one it slipped into a
    # vectorised path (only the first instance was type-checked) and came back as null
    instances: list[Any] = [x for x, _ in SAMPLES[:size]]
    instances[5] = {**instances[5], "gallup": None}
    single = await trump.post("/api/v1/models/trump/predict", json={"x": instances[5]})
    assert single.status_code == 422 and single.json()["error"]["code"] == "prediction_failed"
    response = await batch(trump, instances)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[5]["error"]["code"] == "prediction_failed"
    local = trained_trump()
    expected = [local.predict_one(x) for i, x in enumerate(instances) if i != 5]
    assert [r["prediction"] for i, r in enumerate(results) if i != 5] == expected


async def test_batch_over_batch_max_items_is_422(trump: httpx.AsyncClient) -> None:
    response = await batch(trump, [SAMPLES[0][0]] * 1001)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "batch_too_large"
    items = [{"model": "trump", "x": SAMPLES[0][0]}] * 1001
    multi = await trump.post("/api/v1/predict/batch", json={"items": items})
    assert multi.status_code == 422 and multi.json()["error"]["code"] == "batch_too_large"


async def test_batch_on_an_unknown_model_is_404(client: httpx.AsyncClient) -> None:
    response = await batch(client, [SAMPLES[0][0]])
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"


async def test_classifier_batch_returns_label_and_proba_per_item(
    client: httpx.AsyncClient,
) -> None:
    await create(client, PHISH, PHISHING[:200])
    instances = [x for x, _ in PHISHING[200:300]]
    body = {"instances": instances}
    results = (await client.post("/api/v1/models/phish/predict/batch", json=body)).json()["results"]
    local = trained_phish()
    for x, result in zip(instances, results, strict=True):
        proba = local.predict_proba_one(x)
        assert result.pop("prediction_id")
        assert result == {
            "prediction": max(proba, key=proba.get),
            "proba": {label_key(k): v for k, v in proba.items()},
        }


async def test_multi_model_batch_keeps_order_and_fails_only_the_unknown_models_items(
    trump: httpx.AsyncClient,
) -> None:
    await create(trump, PHISH, PHISHING[:200])
    items = []
    for i in range(12):
        model = ("trump", "phish", "ghost")[i % 3]
        x = SAMPLES[700 + i][0] if model != "phish" else PHISHING[300 + i][0]
        items.append({"model": model, "x": x})
    items[0]["x"] = "not an object"
    response = await trump.post("/api/v1/predict/batch", json={"items": items})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["model"] for r in results] == [item["model"] for item in items]

    trump_local, phish_local = trained_trump(), trained_phish()
    assert results[0]["error"]["code"] == "invalid_features"
    for item, result in zip(items[1:], results[1:], strict=True):
        if item["model"] == "ghost":
            assert result == {
                "model": "ghost",
                "error": {"code": "model_not_found", "message": result["error"]["message"]},
            }
        elif item["model"] == "trump":
            expected = trump_local.predict_one(item["x"])
            assert result.pop("prediction_id")
            assert result == {"model": "trump", "prediction": expected, "model_version": 1}
        else:
            proba = phish_local.predict_proba_one(item["x"])
            assert result["prediction"] == max(proba, key=proba.get)
            assert result["proba"] == {label_key(k): v for k, v in proba.items()}


async def recent_predictions(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/predictions/recent?limit=1000")
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def error_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["request_id"] == response.headers["x-request-id"]
    return str(error["code"])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"instances": [{"gallup": 1.0}]', 400, "invalid_json"),
        (b'{"instances": []}', 422, "validation_error"),
        (b'{"instances": {"gallup": 1.0}}', 422, "validation_error"),
        (b'{"instances": [{"gallup": 1.0}], "extra": 1}', 422, "validation_error"),
        (b"[]", 422, "validation_error"),
        (b'"\\ud800"', 400, "invalid_json"),
    ],
)
async def test_a_bad_body_is_a_4xx_envelope_and_changes_nothing(
    trump: httpx.AsyncClient, body: bytes, status: int, code: str
) -> None:
    before = await recent_predictions(trump)
    response = await trump.post(
        "/api/v1/models/trump/predict/batch",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert error_code(response, status) == code
    assert await recent_predictions(trump) == before  # nothing predicted, nothing audited


async def test_bounds_hold_on_a_batch(trump: httpx.AsyncClient) -> None:
    """Rows per request, body bytes and features per row, each a 4xx envelope."""
    before = await recent_predictions(trump)
    rows = [SAMPLES[0][0]] * 1001  # BATCH_MAX_ITEMS=1000
    assert error_code(await batch(trump, rows), 422) == "batch_too_large"
    padding = "p" * (1 << 20)  # MAX_BODY_BYTES=1 MiB
    too_long = await batch(trump, [{"gallup": 1.0, padding: 1.0}])
    assert error_code(too_long, 413) == "payload_too_large"
    assert await recent_predictions(trump) == before
    wide = {f"f{i}": 1.0 for i in range(1001)}  # MAX_FEATURES_PER_SAMPLE=1000 (default)
    long_name = {"n" * 1000: 1.0}  # over MAX_FEATURE_NAME_CHARS
    too_big = {"gallup": 1e300}  # over MAX_ABS_VALUE
    answer = await batch(trump, [wide, long_name, too_big, SAMPLES[0][0]])
    assert answer.status_code == 200, answer.text
    codes = [r.get("error", {}).get("code") for r in answer.json()["results"]]
    assert codes == ["too_many_features", "feature_name_too_long", "invalid_features", None]


async def test_values_orjson_reads_otherwise_are_read_as_pydantic_does(
    trump: httpx.AsyncClient,
) -> None:
    """NaN and 1e400 (orjson refuses them) and an int past 64 bits (orjson reads a float):
    the body goes through pydantic, so each is the item error it always was."""
    x = SAMPLES[0][0]
    rows = [
        '{"gallup": NaN}',
        '{"gallup": 1e400}',
        '{"gallup": 18446744073709551616}',
        json.dumps(x),
    ]
    body = ('{"instances": [' + ",".join(rows) + "]}").encode()
    response = await trump.post(
        "/api/v1/models/trump/predict/batch",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r.get("error", {}).get("code") for r in results] == ["invalid_features"] * 3 + [None]
    assert results[3]["prediction"] == trained_trump().predict_one(x)
