"""Delayed labels are River's delayed evaluation, float for float: `stream.simulate_qa`
replayed over HTTP (question → predict with id=str(i), answer → label i) gives the
predictions and the final metric of the same sequence in-process, on every backend."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
from river import datasets, linear_model, metrics, preprocessing, stream

from shared.learning import label_key
from tests.conftest import TENANT

REGRESSOR = [{"kind": "standard_scaler"}, {"kind": "linear_regression", "params": {"l2": 0.0}}]
CLASSIFIER = [{"kind": "standard_scaler"}, {"kind": "logistic_regression"}]


def regressor() -> Any:
    return preprocessing.StandardScaler() | linear_model.LinearRegression(l2=0.0)


def classifier() -> Any:
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


def in_process(samples: list[tuple[dict, Any]], delay: int, model: Any, metric: Any) -> Any:
    """River's own delayed evaluation: predict at the question, score and learn at the
    answer with the prediction made at the question."""
    predictions: dict[int, Any] = {}
    for i, x, y in stream.simulate_qa(samples, moment=None, delay=delay):
        if y is None:
            predictions[i] = model.predict_one(x)
        else:
            metric.update(y, predictions[i])
            model.learn_one(x, y)
    return predictions, metric


def over_http(
    http: httpx.Client, name: str, samples: list[tuple[dict, Any]], delay: int
) -> dict[int, dict[str, Any]]:
    answers: dict[int, dict[str, Any]] = {}
    for i, x, y in stream.simulate_qa(samples, moment=None, delay=delay):
        if y is None:
            answer = http.post(f"/api/v1/models/{name}/predict", json={"x": x, "id": str(i)})
            assert answer.status_code == 200, answer.text
            answers[i] = answer.json()
            assert answers[i]["prediction_id"] == str(i)
        else:
            body = {"prediction_id": str(i), "y": y}
            labelled = http.post(f"/api/v1/models/{name}/labels", json=body)
            assert labelled.status_code == 200, labelled.text
            assert labelled.json()["learned"] == 1
    return answers


@pytest.mark.parametrize("delay", [1, 5, 50])
def test_regressor_delayed_labels_equal_river(app_url: str, delay: int) -> None:
    samples = list(itertools.islice(datasets.TrumpApproval(), 300))
    name = f"trump-{delay}"
    with httpx.Client(base_url=app_url, headers=TENANT) as http:
        spec = {"name": name, "steps": REGRESSOR}
        assert http.post("/api/v1/models", json=spec).status_code == 201
        answers = over_http(http, name, samples, delay)
        served = http.get(f"/api/v1/models/{name}/metrics").json()
        freshness = http.get(f"/api/v1/models/{name}/freshness").json()

    predictions, mae = in_process(samples, delay, regressor(), metrics.MAE())
    assert [answers[i]["prediction"] for i in range(len(samples))] == [
        predictions[i] for i in range(len(samples))
    ]  # exact floats, question for question
    assert _metric(served, "mae") == mae.get()
    assert freshness["seq"] == len(samples) and freshness["pending_labels"] == 0


@pytest.mark.parametrize("delay", [1, 5, 50])
def test_classifier_delayed_labels_equal_river(app_url: str, delay: int) -> None:
    samples = list(itertools.islice(datasets.Phishing(), 300))
    name = f"phish-{delay}"
    with httpx.Client(base_url=app_url, headers=TENANT) as http:
        spec = {"name": name, "steps": CLASSIFIER}
        assert http.post("/api/v1/models", json=spec).status_code == 201
        answers = over_http(http, name, samples, delay)
        served = http.get(f"/api/v1/models/{name}/metrics").json()

    model = classifier()
    accuracy = metrics.Accuracy()
    probas: dict[int, dict[str, float]] = {}
    predictions: dict[int, Any] = {}
    for i, x, y in stream.simulate_qa(samples, moment=None, delay=delay):
        if y is None:
            probas[i] = {label_key(k): v for k, v in model.predict_proba_one(x).items()}
            predictions[i] = model.predict_one(x)
        else:
            accuracy.update(y, predictions[i])
            model.learn_one(x, y)
    for i in range(len(samples)):
        assert answers[i]["prediction"] == predictions[i]
        assert answers[i]["proba"] == probas[i]
    assert _metric(served, "accuracy") == accuracy.get()


def _metric(served: dict[str, Any], name: str) -> float:
    (version,) = served["versions"]
    assert version["samples"] == 300  # every label scored once
    return float(version["cumulative"][name])
