"""G5: a warm predict does no unpickling (and no registry I/O), even while another instance
keeps learning: it applies the log tail instead."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from river import neighbors

from tests.servers import AppProcess

H = {"X-Tenant-ID": "acme"}


def cold_loads(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    match = re.search(r"^ml_model_cold_loads_total ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, "the cold-load counter is exported"
    return float(match.group(1))


def test_warm_predict_never_unpickles(
    redis_url: str, app_factory: Callable[..., AppProcess]
) -> None:
    reader = app_factory({"STATE_URL": redis_url})
    writer = app_factory({"STATE_URL": redis_url})
    spec = {"name": "knn", "kind": "knn_regressor", "params": {"n_neighbors": 3}}
    assert httpx.post(f"{writer.url}/api/v1/models", json=spec, headers=H).status_code == 201
    with httpx.Client(headers=H) as http:
        http.post(f"{reader.url}/api/v1/models/knn/predict", json={"x": {"a": 1.0}})
        assert cold_loads(reader.url) == 1.0  # the first request loads snapshot 0
        for i in range(200):
            http.post(
                f"{writer.url}/api/v1/models/knn/learn",
                json={"x": {"a": float(i)}, "y": float(2 * i)},
            )
            answer = http.post(
                f"{reader.url}/api/v1/models/knn/predict", json={"x": {"a": float(i)}}
            ).json()
            assert answer["seq"] == i + 1  # it saw the writer's sample, from the log
        local = neighbors.KNNRegressor(n_neighbors=3)
        for i in range(200):
            local.learn_one({"a": float(i)}, float(2 * i))
        probe = http.post(
            f"{reader.url}/api/v1/models/knn/predict", json={"x": {"a": 150.4}}
        ).json()
        assert probe["prediction"] == local.predict_one({"a": 150.4})
    assert cold_loads(reader.url) == 1.0
