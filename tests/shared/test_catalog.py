"""The catalog builds every allow-listed kind, and a snapshot taken mid-stream replays exactly
(the premise of snapshot + learn log: pickle, unpickle, apply the tail → same model)."""

from __future__ import annotations

import itertools
import pickle
from typing import Any

import pytest
from river import datasets

from shared.catalog import KINDS, build_model
from shared.errors import ApiError
from shared.learning import learn, predict

LINEAR = {"kind": "linear_regression"}
RIDGE = {"kind": "linear_regression", "params": {"l2": 0.1}}
PA = {"kind": "pa_regressor"}
LOGISTIC = {"steps": [{"kind": "standard_scaler"}, {"kind": "logistic_regression"}]}
NB = {"kind": "gaussian_nb"}
TREE = {"kind": "hoeffding_tree_classifier"}
POLICIES = [k for k, v in KINDS.items() if v.role == "policy"]
PARAMS: dict[str, dict[str, Any]] = {
    "bagging_regressor": {"model": {"kind": "linear_regression"}, "n_models": 3},
    "mlp_classifier": {"classes": [False, True], "hidden_layer_sizes": [8]},
    "mlp_regressor": {"hidden_layer_sizes": [8]},
    "holt_winters": {"alpha": 0.3, "beta": 0.1, "gamma": 0.6, "seasonality": 12},
    "snarimax": {"p": 2, "d": 1, "q": 1},
    "adaptive_random_forest_classifier": {"n_models": 3},
    "adaptive_random_forest_regressor": {"n_models": 3},
    "amf_regressor": {"n_estimators": 3},
    "amf_classifier": {"n_estimators": 3},
    # issue 17: model selection, ensembles, wrappers, feature extraction
    **{
        kind: {"models": [LINEAR, RIDGE, PA]}
        for kind in ("bandit_regressor", "greedy_regressor", "ewa_regressor")
    },
    "successive_halving_regressor": {"models": [LINEAR, RIDGE, PA], "budget": 60},
    **{
        kind: {"models": [LOGISTIC, NB, TREE]}
        for kind in ("bandit_classifier", "voting_classifier")
    },
    "successive_halving_classifier": {"models": [LOGISTIC, NB, TREE], "budget": 60},
    "stacking_classifier": {"models": [NB, TREE], "meta_classifier": LOGISTIC},
    "adwin_bagging_classifier": {"model": LOGISTIC, "n_models": 3},
    "leveraging_bagging_classifier": {"model": LOGISTIC, "n_models": 3},
    "srp_classifier": {"n_models": 3},
    "srp_regressor": {"n_models": 3},
    "one_vs_rest_classifier": {"classifier": LOGISTIC},
    "one_vs_one_classifier": {"classifier": LOGISTIC},
    "output_code_classifier": {"classifier": LOGISTIC, "code_size": 4},
    **{
        kind: {"classifier": LOGISTIC, "desired_dist": {"true": 0.5, "false": 0.5}}
        for kind in ("random_under_sampler", "random_over_sampler", "random_sampler")
    },
    "rbf_sampler": {"n_components": 20},
    "agg": {"on": "ordinal_date", "how": "mean"},
    "target_agg": {"by": None, "how": "mean"},
}
TICKETS = [
    ("server down in production", "critical"),
    ("typo in footer", "low"),
    ("database outage", "critical"),
    ("update billing address", "low"),
] * 20


def stream(task: str, text: bool, n: int) -> list[tuple[Any, Any]]:
    if text:
        return TICKETS[:n]
    if task == "forecasting":
        return [(None, y) for _, y in itertools.islice(datasets.AirlinePassengers(), n)]
    if task == "classification":
        return list(itertools.islice(datasets.Phishing(), n))
    return list(itertools.islice(datasets.TrumpApproval(), n))


def spec_for(kind: str) -> dict[str, Any]:
    step = {"kind": kind, "params": PARAMS.get(kind, {})}
    if KINDS[kind].role == "transformer":
        last = "multinomial_nb" if KINDS[kind].text_input else "linear_regression"
        return {"steps": [step, {"kind": last}]}
    if kind in ("multinomial_nb",):
        return {"steps": [{"kind": "bag_of_words"}, step]}
    return {"steps": [step]}


# detectors and clusterers replay in tests/shared/test_unsupervised.py (their own streams)
ELSEWHERE = ("optimizer", "policy", "anomaly_detector", "clusterer")
ESTIMATORS = [k for k, v in KINDS.items() if v.role not in ELSEWHERE]


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_snapshot_mid_stream_replays_exactly(kind: str) -> None:
    blueprint, model = build_model(spec_for(kind))
    assert blueprint is not None
    samples = stream(blueprint.task, blueprint.text_input, 80)
    head, tail = samples[:40], samples[40:]
    for x, y in head:
        learn(model, blueprint, x, y)
    restored = pickle.loads(pickle.dumps(model))
    for x, y in tail:
        assert predict(model, blueprint, x) == predict(restored, blueprint, x)
        learn(model, blueprint, x, y)
        learn(restored, blueprint, x, y)
    probe = tail[-1][0]
    assert predict(model, blueprint, probe) == predict(restored, blueprint, probe)


@pytest.mark.parametrize("policy", POLICIES)
def test_every_bandit_policy_replays_exactly(policy: str) -> None:
    spec = {
        "steps": [
            {
                "kind": "bandit_regressor",
                "params": {"models": [LINEAR, RIDGE, PA], "policy": {"kind": policy}},
            }
        ]
    }
    blueprint, model = build_model(spec)
    assert blueprint is not None
    samples = stream("regression", False, 80)
    for x, y in samples[:40]:
        learn(model, blueprint, x, y)
    restored = pickle.loads(pickle.dumps(model))
    for x, y in samples[40:]:
        assert predict(model, blueprint, x) == predict(restored, blueprint, x)
        learn(model, blueprint, x, y)
        learn(restored, blueprint, x, y)


def test_two_builds_of_a_seeded_spec_agree() -> None:
    spec = {"steps": [{"kind": "amf_regressor", "params": {"n_estimators": 3, "seed": 7}}]}
    (bp, a), (_, b) = build_model(spec), build_model(spec)
    assert bp is not None
    for x, y in itertools.islice(datasets.TrumpApproval(), 50):
        assert predict(a, bp, x) == predict(b, bp, x)
        learn(a, bp, x, y)
        learn(b, bp, x, y)


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ({"steps": [{"kind": "__import__"}]}, "unknown_kind"),
        (
            {"steps": [{"kind": "linear_regression", "params": {"optimizer": {"kind": "nope"}}}]},
            "unknown_kind",
        ),
        (
            {
                "steps": [
                    {
                        "kind": "linear_regression",
                        "params": {"optimizer": {"kind": "linear_regression"}},
                    }
                ]
            },
            "invalid_spec",
        ),
        (
            {"steps": [{"kind": "knn_regressor", "params": {"n_neighbors": 2.5}}]},
            "invalid_parameter",
        ),
        ({"steps": [{"kind": "mlp_classifier"}]}, "missing_parameter"),
        (
            {"steps": [{"kind": "mlp_classifier", "params": {"classes": ["only"]}}]},
            "invalid_parameter",
        ),
        (
            {"steps": [{"kind": "standard_scaler"}, {"kind": "tfidf"}, {"kind": "multinomial_nb"}]},
            "invalid_spec",
        ),
        (
            {
                "steps": [
                    {"kind": "standard_scaler"},
                    {"kind": "holt_winters", "params": {"alpha": 0.1}},
                ]
            },
            "invalid_spec",
        ),
        ({"steps": [{"kind": "holt_winters", "params": {"alpha": "high"}}]}, "invalid_parameter"),
        ({"steps": "linear_regression"}, "invalid_spec"),
    ],
)
def test_bad_specs_name_the_problem(spec: dict[str, Any], code: str) -> None:
    with pytest.raises(ApiError) as caught:
        build_model(spec)
    assert caught.value.status == 422 and caught.value.code == code


def test_optimizer_is_a_nested_spec() -> None:
    spec = {
        "steps": [
            {
                "kind": "linear_regression",
                "params": {"optimizer": {"kind": "adam", "params": {"lr": 0.05}}},
            }
        ]
    }
    _, model = build_model(spec)
    assert type(model.optimizer).__name__ == "Adam" and model.optimizer.lr.learning_rate == 0.05
