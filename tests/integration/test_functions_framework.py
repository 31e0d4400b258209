"""Each function group runs alone, found by FUNCTION_SOURCE as the image's CMD finds it
(shared.server builds the app functions-framework would), as on Cloud Run."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.servers import AppProcess

H = {"X-Tenant-ID": "acme"}


def test_train_and_predict_as_separate_functions(
    redis_url: str, app_factory: Callable[..., AppProcess]
) -> None:
    env = {"STATE_URL": redis_url}
    train = app_factory(env, function_source="functions/train/main.py")
    predict = app_factory(env, function_source="functions/predict/main.py")
    spec = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
    assert httpx.post(f"{train.url}/api/v1/models", json=spec, headers=H).status_code == 201
    learned = httpx.post(
        f"{train.url}/api/v1/models/m/learn", json={"x": {"a": 1.0}, "y": 2.0}, headers=H
    )
    assert learned.status_code == 200
    answer = httpx.post(f"{predict.url}/api/v1/models/m/predict", json={"x": {"a": 1.0}}, headers=H)
    assert answer.status_code == 200 and answer.json()["seq"] == 1
    # each function serves only its own routes; errors keep the envelope
    missing = httpx.post(f"{predict.url}/api/v1/models", json=spec, headers=H)
    assert missing.status_code == 405 or missing.status_code == 404
    assert "error" in missing.json()
    assert httpx.get(f"{predict.url}/ready").json()["status"] == "ready"


def test_launcher_serves_web_concurrency_workers(
    redis_url: str, app_factory: Callable[..., AppProcess]
) -> None:
    """WEB_CONCURRENCY=2: two worker processes, each building the group's app itself."""
    env = {"STATE_URL": redis_url, "WEB_CONCURRENCY": "2"}
    train = app_factory(env, function_source="functions/train/main.py")
    spec = {"name": "w", "steps": [{"kind": "linear_regression"}]}
    assert httpx.post(f"{train.url}/api/v1/models", json=spec, headers=H).status_code == 201
    for _ in range(4):  # new connections, spread over the workers by the kernel
        assert httpx.get(f"{train.url}/api/v1/models/w", headers=H).status_code == 200
