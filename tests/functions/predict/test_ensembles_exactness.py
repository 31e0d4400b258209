"""Issue 17: model selection, ensembles, multiclass wrappers and feature extraction over HTTP
equal River in-process, float for float (memory:// and Valkey)."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from river import (
    bandit,
    compose,
    datasets,
    ensemble,
    feature_extraction,
    linear_model,
    metrics,
    model_selection,
    multiclass,
    optim,
    preprocessing,
    stats,
)

from shared.learning import label_key
from tests.conftest import TENANT

RATES = [0.001, 0.01, 0.1]


def _serve(app_url: str, spec: dict[str, Any], samples: list[tuple[Any, Any]]) -> list[Any]:
    """predict_learn every sample in order; the answers."""
    with httpx.Client(base_url=app_url, headers=TENANT) as http:
        created = http.post("/api/v1/models", json=spec)
        assert created.status_code == 201, created.text
        path = f"/api/v1/models/{spec['name']}/predict_learn"
        return [http.post(path, json={"x": x, "y": y}).json() for x, y in samples]


def _prequential(local: Any, samples: list[tuple[Any, Any]], proba: bool) -> list[Any]:
    expected = []
    for x, y in samples:
        if proba:
            expected.append({label_key(k): v for k, v in local.predict_proba_one(x).items()})
        else:
            expected.append(local.predict_one(x))
        local.learn_one(x, y)
    return expected


def test_bandit_regressor_over_three_linear_models_equals_river(app_url: str) -> None:
    models = [
        {"kind": "linear_regression", "params": {"optimizer": {"kind": "sgd", "params": {"lr": r}}}}
        for r in RATES
    ]
    policy = {"kind": "epsilon_greedy", "params": {"epsilon": 0.2, "seed": 3}}
    spec = {
        "name": "bandit",
        "steps": [
            {"kind": "standard_scaler"},
            {
                "kind": "bandit_regressor",
                "params": {"models": models, "policy": policy, "metric": "r2"},
            },
        ],
    }
    samples = list(datasets.TrumpApproval())
    answers = _serve(app_url, spec, samples)

    selector = model_selection.BanditRegressor(
        [linear_model.LinearRegression(optimizer=optim.SGD(lr=r)) for r in RATES],
        metrics.R2(),
        bandit.EpsilonGreedy(epsilon=0.2, seed=3),
    )
    local = preprocessing.StandardScaler() | selector
    assert [a["prediction"] for a in answers] == _prequential(local, samples, proba=False)
    with httpx.Client(base_url=app_url, headers=TENANT) as http:
        shown = http.get("/api/v1/models/bandit").json()
    best = next(i for i, m in enumerate(selector.models) if m is selector.best_model)
    assert shown["seq"] == len(samples)
    assert shown["preferred"] == {"index": best, "candidate": models[best]}


def test_srp_classifier_equals_river(app_url: str) -> None:
    spec = {"name": "srp", "kind": "srp_classifier", "params": {"n_models": 3, "seed": 7}}
    samples = list(itertools.islice(datasets.Phishing(), 300))
    answers = _serve(app_url, spec, samples)
    local = ensemble.SRPClassifier(n_models=3, seed=7)
    assert [a["proba"] for a in answers] == _prequential(local, samples, proba=True)


def test_one_vs_rest_logistic_regression_on_a_multiclass_stream_equals_river(
    app_url: str,
) -> None:
    spec = {
        "name": "segments",
        "steps": [
            {"kind": "standard_scaler"},
            {
                "kind": "one_vs_rest_classifier",
                "params": {"classifier": {"kind": "logistic_regression"}},
            },
        ],
    }
    samples = list(itertools.islice(datasets.ImageSegments(), 400))
    answers = _serve(app_url, spec, samples)
    local = preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(
        linear_model.LogisticRegression()
    )
    expected = _prequential(local, samples, proba=True)
    assert [a["proba"] for a in answers] == expected
    assert len({y for _, y in samples}) == 7  # every class of the data set seen


def test_target_agg_in_a_pipeline_equals_river(app_url: str) -> None:
    spec = {
        "name": "chicks",
        "steps": [
            {"kind": "target_agg", "params": {"by": "chick", "how": "mean"}},
            {"kind": "linear_regression"},
        ],
    }
    samples = list(datasets.ChickWeights())
    answers = _serve(app_url, spec, samples)
    local = compose.Pipeline(
        feature_extraction.TargetAgg(by="chick", how=stats.Mean()),
        linear_model.LinearRegression(),
    )
    assert [a["prediction"] for a in answers] == _prequential(local, samples, proba=False)
