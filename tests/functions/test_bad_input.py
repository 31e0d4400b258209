"""Bad input gets a clear 4xx in the error envelope, never a 5xx, and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from shared.settings import Settings

MAX_SAMPLES_PER_REQUEST = Settings.model_fields["max_samples_per_request"].default

MODELS = {
    "lin": {"steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]},
    "clf": {"steps": [{"kind": "standard_scaler"}, {"kind": "logistic_regression"}]},
    "nb": {"kind": "gaussian_nb"},
    "txt": {"steps": [{"kind": "tfidf"}, {"kind": "multinomial_nb"}]},
    "hw": {"kind": "holt_winters", "params": {"alpha": 0.5}},
}
SEED = {
    "lin": [({"a": 1.0, "b": 2.0}, 3.0), ({"a": 2.0, "b": 0.5}, 1.0)],
    "clf": [({"a": 1.0}, True), ({"a": -1.0}, False)],
    "nb": [({"a": 1.0}, "red"), ({"a": 5.0}, "blue")],
    "txt": [("server down", "critical"), ("typo in docs", "low")],
    "hw": [(None, 10.0), (None, 12.0)],
}
PROBE = {
    "lin": {"a": 1.5, "b": 1.0},
    "clf": {"a": 0.3},
    "nb": {"a": 2.0},
    "txt": "server",
    "hw": None,
}

J = {"Content-Type": "application/json"}
LEARN = "/api/v1/models/lin/learn"
CREATE = "/api/v1/models"


def spec(**extra: Any) -> dict[str, Any]:
    return {"name": "new", **extra}


# (id, method, path, extra headers, body (dict → JSON, str/bytes → raw), status, error code)
CASES: list[tuple[str, str, str, dict[str, str], Any, int, str]] = [
    (
        "no tenant",
        "POST",
        LEARN,
        {"X-Tenant-ID": ""},
        {"x": {"a": 1}, "y": 1},
        400,
        "missing_tenant",
    ),
    (
        "upper-case tenant",
        "POST",
        LEARN,
        {"X-Tenant-ID": "Acme"},
        {"x": {"a": 1}, "y": 1},
        400,
        "invalid_tenant",
    ),
    (
        "tenant with underscore",
        "GET",
        CREATE,
        {"X-Tenant-ID": "ac_me"},
        None,
        400,
        "invalid_tenant",
    ),
    ("tenant too long", "GET", CREATE, {"X-Tenant-ID": "a" * 64}, None, 400, "invalid_tenant"),
    ("tenant leading dash", "GET", CREATE, {"X-Tenant-ID": "-acme"}, None, 400, "invalid_tenant"),
    (
        "name with space",
        "POST",
        "/api/v1/models/bad%20name/learn",
        {},
        {"x": {"a": 1}, "y": 1},
        400,
        "invalid_model_name",
    ),
    (
        "name with ..",
        "POST",
        "/api/v1/models/a..b/predict",
        {},
        {"x": {"a": 1}},
        400,
        "invalid_model_name",
    ),
    ("traversal in path", "GET", "/api/v1/models/..%2F..%2Fetc", {}, None, 404, "route_not_found"),
    (
        "create name ..",
        "POST",
        CREATE,
        {},
        {"name": "..", "kind": "linear_regression"},
        422,
        "validation_error",
    ),
    (
        "create name too long",
        "POST",
        CREATE,
        {},
        {"name": "a" * 129, "kind": "linear_regression"},
        422,
        "validation_error",
    ),
    ("unknown kind", "POST", CREATE, {}, spec(kind="os.system"), 422, "unknown_kind"),
    (
        "unknown parameter",
        "POST",
        CREATE,
        {},
        spec(kind="linear_regression", params={"lr": 1}),
        422,
        "unknown_parameter",
    ),
    (
        "parameter of wrong type",
        "POST",
        CREATE,
        {},
        spec(kind="linear_regression", params={"l2": "big"}),
        422,
        "invalid_parameter",
    ),
    (
        "object parameter refused",
        "POST",
        CREATE,
        {},
        spec(kind="knn_regressor", params={"engine": "x"}),
        422,
        "unknown_parameter",
    ),
    (
        "transformer last",
        "POST",
        CREATE,
        {},
        spec(steps=[{"kind": "standard_scaler"}]),
        422,
        "invalid_spec",
    ),
    (
        "estimator in the middle",
        "POST",
        CREATE,
        {},
        spec(steps=[{"kind": "linear_regression"}, {"kind": "linear_regression"}]),
        422,
        "invalid_spec",
    ),
    (
        "task mismatch",
        "POST",
        CREATE,
        {},
        spec(task="classification", kind="linear_regression"),
        422,
        "invalid_spec",
    ),
    ("empty steps", "POST", CREATE, {}, spec(steps=[]), 422, "validation_error"),
    ("missing required param", "POST", CREATE, {}, spec(kind="snarimax"), 422, "missing_parameter"),
    (
        "bagging of a classifier",
        "POST",
        CREATE,
        {},
        spec(kind="bagging_regressor", params={"model": {"kind": "gaussian_nb"}}),
        422,
        "invalid_spec",
    ),
    (
        "duplicate model",
        "POST",
        CREATE,
        {},
        {"name": "lin", "kind": "linear_regression"},
        409,
        "model_exists",
    ),
    ("feature is a list", "POST", LEARN, {}, {"x": {"a": [1]}, "y": 1}, 422, "invalid_features"),
    (
        "feature is an object",
        "POST",
        LEARN,
        {},
        {"x": {"a": {"b": 1}}, "y": 1},
        422,
        "invalid_features",
    ),
    ("x is a number", "POST", LEARN, {}, {"x": 5, "y": 1}, 422, "invalid_features"),
    ("missing target", "POST", LEARN, {}, {"x": {"a": 1}}, 422, "missing_target"),
    (
        "text regression target",
        "POST",
        LEARN,
        {},
        {"x": {"a": 1}, "y": "abc"},
        422,
        "invalid_target",
    ),
    (
        "boolean regression target",
        "POST",
        LEARN,
        {},
        {"x": {"a": 1}, "y": True},
        422,
        "invalid_target",
    ),
    (
        "binary classifier, third class",
        "POST",
        "/api/v1/models/clf/learn",
        {},
        {"x": {"a": 1}, "y": "maybe"},
        422,
        "invalid_target",
    ),
    (
        "class label is an object",
        "POST",
        "/api/v1/models/nb/learn",
        {},
        {"x": {"a": 1}, "y": {"c": 1}},
        422,
        "invalid_target",
    ),
    (
        "class label is a float",
        "POST",
        "/api/v1/models/nb/learn",
        {},
        {"x": {"a": 1}, "y": 1.5},
        422,
        "invalid_target",
    ),
    ("NaN feature", "POST", LEARN, {}, '{"x": {"a": NaN}, "y": 1}', 422, "invalid_features"),
    ("Infinity target", "POST", LEARN, {}, '{"x": {"a": 1}, "y": Infinity}', 422, "invalid_target"),
    (
        "overflowing number",
        "POST",
        LEARN,
        {},
        '{"x": {"a": 1e999}, "y": 1}',
        422,
        "invalid_features",
    ),
    ("invalid JSON", "POST", LEARN, {}, '{"x": {"a": 1}, "y": ', 400, "invalid_json"),
    ("JSON array body", "POST", LEARN, {}, "[1, 2]", 422, "validation_error"),
    (
        "wrong content type",
        "POST",
        LEARN,
        {"Content-Type": "text/plain"},
        '{"x": {"a": 1}, "y": 1}',
        415,
        "unsupported_media_type",
    ),
    (
        "form content type",
        "POST",
        LEARN,
        {"Content-Type": "application/x-www-form-urlencoded"},
        "x=1",
        415,
        "unsupported_media_type",
    ),
    ("empty body", "POST", LEARN, {}, "", 400, "empty_body"),
    (
        "body over MAX_BODY_BYTES",
        "POST",
        LEARN,
        {},
        json.dumps({"x": {"a": 1}, "y": 1, "pad": "p" * 70000}),
        413,
        "payload_too_large",
    ),
    (
        "deeply nested JSON",
        "POST",
        LEARN,
        {},
        '{"x": ' + "[" * 5000 + "]" * 5000 + ', "y": 1}',
        400,
        "invalid_json",
    ),
    (
        "text for a numeric model",
        "POST",
        "/api/v1/models/lin/predict",
        {},
        {"x": "hello"},
        422,
        "invalid_features",
    ),
    (
        "string feature, numeric model",
        "POST",
        LEARN,
        {},
        {"x": {"a": "red"}, "y": 1},
        422,
        "invalid_features",
    ),
    (
        "object for a text model",
        "POST",
        "/api/v1/models/txt/learn",
        {},
        {"x": {"a": 1}, "y": "low"},
        422,
        "invalid_features",
    ),
    (
        "unknown top-level field",
        "POST",
        LEARN,
        {},
        {"x": {"a": 1}, "y": 1, "z": 2},
        422,
        "validation_error",
    ),
    ("empty samples", "POST", LEARN, {}, {"samples": []}, 422, "validation_error"),
    (
        "too many samples",
        "POST",
        LEARN,
        {},
        {"samples": [{"x": {}, "y": 1}] * (MAX_SAMPLES_PER_REQUEST + 1)},
        422,
        "too_many_samples",
    ),
    (
        "one bad sample in a batch",
        "POST",
        LEARN,
        {},
        {"samples": [{"x": {"a": 1}, "y": 1}, {"x": {"a": 1}, "y": "no"}]},
        422,
        "invalid_target",
    ),
    (
        "x, y and samples",
        "POST",
        LEARN,
        {},
        {"x": {"a": 1}, "y": 1, "samples": [{"x": {}, "y": 1}]},
        422,
        "validation_error",
    ),
    ("predict without x", "POST", "/api/v1/models/clf/predict", {}, {}, 422, "missing_features"),
    (
        "predict_learn without y",
        "POST",
        "/api/v1/models/clf/predict_learn",
        {},
        {"x": {"a": 1}},
        422,
        "missing_target",
    ),
    (
        "forecast on a regressor",
        "POST",
        "/api/v1/models/lin/forecast",
        {},
        {"horizon": 3},
        422,
        "not_a_forecaster",
    ),
    (
        "forecast horizon 0",
        "POST",
        "/api/v1/models/hw/forecast",
        {},
        {"horizon": 0},
        422,
        "validation_error",
    ),
    (
        "forecast horizon as text",
        "POST",
        "/api/v1/models/hw/forecast",
        {},
        {"horizon": "five"},
        422,
        "validation_error",
    ),
    (
        "unknown model",
        "POST",
        "/api/v1/models/ghost/predict",
        {},
        {"x": {"a": 1}},
        404,
        "model_not_found",
    ),
    ("delete unknown model", "DELETE", "/api/v1/models/ghost", {}, None, 404, "model_not_found"),
    (
        "bad Idempotency-Key",
        "POST",
        LEARN,
        {"Idempotency-Key": "k" * 300},
        {"x": {"a": 1}, "y": 1},
        400,
        "invalid_idempotency_key",
    ),
    ("method not allowed", "PUT", CREATE, {}, {"name": "x"}, 405, "method_not_allowed"),
    ("unknown route", "GET", "/api/v1/nothing", {}, None, 404, "route_not_found"),
]


async def _state(client: httpx.AsyncClient) -> dict[str, Any]:
    """Every model's seq and its prediction on a probe point."""
    seen: dict[str, Any] = {}
    for name in MODELS:
        seq = (await client.get(f"/api/v1/models/{name}")).json()["seq"]
        if name == "hw":
            answer = (
                await client.post(f"/api/v1/models/{name}/forecast", json={"horizon": 2})
            ).json()
        else:
            answer = (
                await client.post(f"/api/v1/models/{name}/predict", json={"x": PROBE[name]})
            ).json()
        answer.pop("prediction_id", None)  # a new one per predict
        seen[name] = (seq, answer)
    seen["names"] = sorted(m["name"] for m in (await client.get(CREATE)).json()["models"])
    return seen


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> httpx.AsyncClient:
    for name, body in MODELS.items():
        assert (await client.post(CREATE, json={"name": name, **body})).status_code == 201
        samples = [{"x": x, "y": y} for x, y in SEED[name]]
        assert (
            await client.post(f"/api/v1/models/{name}/learn", json={"samples": samples})
        ).status_code == 200
    return client


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "code"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
async def test_bad_input_is_rejected_cleanly(
    seeded: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any,
    status: int,
    code: str,
) -> None:
    before = await _state(seeded)
    kwargs: dict[str, Any] = {"headers": {**J, **headers}}
    if isinstance(body, dict | list):
        kwargs["content"] = json.dumps(body)
    elif body is not None:
        kwargs["content"] = body
    request = seeded.build_request(method, path, **kwargs)
    if headers.get("X-Tenant-ID") == "":  # "" marks a request sent without the header
        del request.headers["X-Tenant-ID"]
    response = await seeded.send(request)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and "Traceback" not in response.text
    assert error["request_id"] == response.headers["x-request-id"]
    assert await _state(seeded) == before  # a rejected write changes nothing


async def test_unseen_class_is_learned_not_rejected(seeded: httpx.AsyncClient) -> None:
    response = await seeded.post(
        "/api/v1/models/nb/predict_learn", json={"x": {"a": 9.0}, "y": "green"}
    )
    assert response.status_code == 200
    proba = (await seeded.post("/api/v1/models/nb/predict", json={"x": {"a": 9.0}})).json()["proba"]
    assert set(proba) == {"red", "blue", "green"}
