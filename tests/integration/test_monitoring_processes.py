"""Metrics shared across instances: two app processes on one Valkey, predict_learn
alternating between them, report exactly (==) what River computes in one process on the
same stream, cumulative and for every rolling window; latency is pooled too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from river import datasets, linear_model, metrics, preprocessing, utils

from shared.monitoring.scoring import WINDOWS
from tests.servers import AppProcess

pytestmark = pytest.mark.slow
HEADERS = {"X-Tenant-ID": "acme"}
REGRESSION = {"mae": metrics.MAE, "mse": metrics.MSE, "rmse": metrics.RMSE, "mape": metrics.MAPE}
BINARY = {
    "accuracy": metrics.Accuracy,
    "f1": metrics.F1,
    "log_loss": metrics.LogLoss,
    "roc_auc": metrics.ROCAUC,
}
PROBABILISTIC = {"log_loss", "roc_auc"}


class RiverMetrics:
    """River's metrics in-process: cumulative and utils.Rolling per window."""

    def __init__(self, kinds: dict[str, Any]) -> None:
        self.cumulative = {name: make() for name, make in kinds.items()}
        self.rolling = {
            w: {name: utils.Rolling(make, window_size=w) for name, make in kinds.items()}
            for w in WINDOWS
        }

    def update(self, y: Any, label: Any, proba: Any = None) -> None:
        for group in (self.cumulative, *self.rolling.values()):
            for name, metric in group.items():
                metric.update(y, proba if name in PROBABILISTIC else label)

    def report(self) -> dict[str, Any]:
        return {
            "cumulative": {n: m.get() for n, m in self.cumulative.items()},
            "rolling": {
                str(w): {n: m.get() for n, m in g.items()} for w, g in self.rolling.items()
            },
        }


def run_alternating(apps: list[AppProcess], name: str, samples: list[Any]) -> None:
    clients = [httpx.Client(base_url=app.url, headers=HEADERS, timeout=30) for app in apps]
    try:
        for i, (x, y) in enumerate(samples):
            answer = clients[i % 2].post(
                f"/api/v1/models/{name}/predict_learn", json={"x": x, "y": y}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["seq"] == i + 1
    finally:
        for client in clients:
            client.close()


def served_metrics(apps: list[AppProcess], name: str) -> list[dict[str, Any]]:
    """Each instance's answer for the active version (each folds what the other left)."""
    answers = []
    for app in apps:
        body = httpx.get(f"{app.url}/api/v1/models/{name}/metrics", headers=HEADERS).json()
        [version] = body["versions"]
        answers.append(version)
    return answers


@pytest.fixture
def two_apps(redis_url: str, app_factory: Callable[..., AppProcess]) -> list[AppProcess]:
    return [app_factory({"STATE_URL": redis_url}) for _ in range(2)]


def test_regression_metrics_equal_river_across_two_processes(two_apps: list[AppProcess]) -> None:
    spec = {
        "name": "trump",
        "steps": [
            {"kind": "standard_scaler"},
            {"kind": "linear_regression", "params": {"l2": 0.0}},
        ],
    }
    assert (
        httpx.post(f"{two_apps[0].url}/api/v1/models", json=spec, headers=HEADERS).status_code
        == 201
    )
    samples = list(datasets.TrumpApproval())  # 1,001: crosses FOLD_EVERY while serving
    run_alternating(two_apps, "trump", samples)

    local = preprocessing.StandardScaler() | linear_model.LinearRegression(l2=0.0)
    expected = RiverMetrics(REGRESSION)
    for x, y in samples:
        expected.update(y, local.predict_one(x))
        local.learn_one(x, y)
    for served in served_metrics(two_apps, "trump"):
        assert served["samples"] == served["scored"] == len(samples)
        assert served["cumulative"] == expected.report()["cumulative"]
        for window in map(str, WINDOWS):
            assert served["rolling"][window] == expected.report()["rolling"][window]
        assert f"{served['cumulative']['mae']:.6f}" == "1.314548"  # progressive_val_score's

    # latency and freshness are pooled across the instances as well
    routes = httpx.get(f"{two_apps[1].url}/api/v1/models/trump/latency", headers=HEADERS).json()
    assert routes["routes"]["predict_learn"]["count"] == len(samples)
    fresh = httpx.get(f"{two_apps[0].url}/api/v1/models/trump/freshness", headers=HEADERS).json()
    assert fresh["seq"] == len(samples) and fresh["last_prediction_at"] is not None
    exposition = httpx.get(f"{two_apps[1].url}/metrics").text
    families = {f.name for f in text_string_to_metric_families(exposition)}
    assert {"ml_predictions", "ml_learned_samples", "ml_drift_detected"} <= families


def test_binary_classifier_metrics_equal_river_across_two_processes(
    two_apps: list[AppProcess],
) -> None:
    spec = {
        "name": "phish",
        "steps": [{"kind": "standard_scaler"}, {"kind": "logistic_regression"}],
    }
    assert (
        httpx.post(f"{two_apps[1].url}/api/v1/models", json=spec, headers=HEADERS).status_code
        == 201
    )
    samples = list(datasets.Phishing())  # 1,250
    run_alternating(two_apps, "phish", samples)

    local = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    expected = RiverMetrics(BINARY)
    for x, y in samples:
        expected.update(y, local.predict_one(x), local.predict_proba_one(x))
        local.learn_one(x, y)
    for served in served_metrics(two_apps, "phish"):
        assert served["kind"] == "binary" and served["scored"] == len(samples)
        assert served["cumulative"] == expected.report()["cumulative"]
        for window in map(str, WINDOWS):
            assert served["rolling"][window] == expected.report()["rolling"][window]
