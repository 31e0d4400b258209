"""Issue 17 kinds over HTTP: listed in the catalog, bounded at create (a 4xx envelope, never a
500, nothing created), and a selector's preferred candidate in GET /api/v1/models/{m}."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
from river import datasets

from tests.edge import error_code

NEW_KINDS = {
    "bandit_regressor": "regression",
    "bandit_classifier": "classification",
    "successive_halving_regressor": "regression",
    "successive_halving_classifier": "classification",
    "greedy_regressor": "regression",
    "adwin_bagging_classifier": "classification",
    "leveraging_bagging_classifier": "classification",
    "srp_classifier": "classification",
    "srp_regressor": "regression",
    "stacking_classifier": "classification",
    "voting_classifier": "classification",
    "ewa_regressor": "regression",
    "one_vs_rest_classifier": "classification",
    "one_vs_one_classifier": "classification",
    "output_code_classifier": "classification",
    "random_under_sampler": "classification",
    "random_over_sampler": "classification",
    "random_sampler": "classification",
    "polynomial_extender": None,
    "rbf_sampler": None,
    "target_agg": None,
    "agg": None,
}
LINEAR = {"kind": "linear_regression"}


async def test_the_catalog_lists_every_new_kind_with_task_and_parameters(
    client: httpx.AsyncClient,
) -> None:
    kinds = {k["kind"]: k for k in (await client.get("/api/v1/catalog")).json()["kinds"]}
    for name, task in NEW_KINDS.items():
        assert kinds[name]["task"] == task, name
        assert kinds[name]["params"], name
    bandit = kinds["bandit_regressor"]
    assert bandit["params"]["models"] == "spec_list"
    assert bandit["nested"] == {"models": "regressor", "policy": "policy"}
    assert bandit["bounds"]["models"] == "2..10 specs (MAX_NESTED_MODELS)"
    assert kinds["epsilon_greedy"]["role"] == "policy"
    assert kinds["target_agg"]["bounds"]["by"] == "a feature or <= 8 features (MAX_AGG_BY)"


def _selector(models: list[Any], kind: str = "bandit_regressor") -> dict[str, Any]:
    return {"name": "sel", "kind": kind, "params": {"models": models}}


def _nest(depth: int) -> dict[str, Any]:
    spec: dict[str, Any] = LINEAR
    for _ in range(depth):
        spec = {"kind": "bandit_regressor", "params": {"models": [spec, LINEAR]}}
    return spec


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        (_selector([LINEAR] * 11), "parameter_out_of_range"),  # MAX_NESTED_MODELS
        ({"name": "sel", **_nest(4)}, "parameter_out_of_range"),  # nesting depth
        (_selector([LINEAR, {"kind": "logistic_regression"}]), "invalid_spec"),  # a classifier
        (_selector([LINEAR, {"kind": "standard_scaler"}]), "invalid_spec"),
        (_selector([LINEAR]), "invalid_parameter"),  # nothing to select among
        (_selector([]), "invalid_parameter"),
        (_selector([LINEAR, "linear_regression"]), "invalid_parameter"),
        (_selector([LINEAR, {"kind": "__import__"}]), "unknown_kind"),
        (
            {"name": "sel", "kind": "bandit_regressor", "params": {"models": LINEAR}},
            "invalid_parameter",
        ),
        (
            {
                "name": "sel",
                "kind": "bandit_regressor",
                "params": {"models": [LINEAR, LINEAR], "policy": LINEAR},
            },
            "invalid_spec",
        ),
        (
            {
                "name": "sel",
                "kind": "bandit_regressor",
                "params": {"models": [LINEAR, LINEAR], "metric": "os.system"},
            },
            "invalid_parameter",
        ),
        *(  # a bandit maximises its metric: one where smaller is better is refused
            (
                {
                    "name": "sel",
                    "kind": kind,
                    "params": {"models": [model, model], "metric": metric},
                },
                "invalid_parameter",
            )
            for kind, model, metric in [
                ("bandit_regressor", LINEAR, "mae"),
                ("bandit_regressor", LINEAR, "mse"),
                ("bandit_regressor", LINEAR, "rmse"),
                ("bandit_classifier", {"kind": "logistic_regression"}, "log_loss"),
                ("bandit_classifier", {"kind": "logistic_regression"}, "cross_entropy"),
            ]
        ),
        (
            {  # 10 models of 10-model bagging: 100 estimators, past nothing; of 11: past
                "name": "sel",
                "kind": "ewa_regressor",
                "params": {
                    "models": [
                        {"kind": "bagging_regressor", "params": {"model": LINEAR, "n_models": 11}}
                    ]
                    * 10
                },
            },
            "parameter_out_of_range",
        ),
        (
            {
                "name": "sel",
                "kind": "random_under_sampler",
                "params": {"classifier": {"kind": "gaussian_nb"}, "desired_dist": {"a": 0.9}},
            },
            "invalid_parameter",
        ),
        (
            {
                "name": "sel",
                "kind": "random_under_sampler",
                "params": {
                    "classifier": {"kind": "gaussian_nb"},
                    "desired_dist": {"a": 0.9, "b": 0.9},
                },
            },
            "invalid_parameter",
        ),
        (
            {
                "name": "sel",
                "kind": "random_over_sampler",
                "params": {
                    "classifier": {"kind": "gaussian_nb"},
                    "desired_dist": {"a": 1.5, "b": -0.5},
                },
            },
            "parameter_out_of_range",
        ),
        (
            {
                "name": "sel",
                "steps": [
                    {"kind": "target_agg", "params": {"by": [f"f{i}" for i in range(9)]}},
                    LINEAR,
                ],
            },
            "parameter_out_of_range",
        ),
        (
            {"name": "sel", "steps": [{"kind": "target_agg", "params": {"how": "eval"}}, LINEAR]},
            "invalid_parameter",
        ),
        (
            {
                "name": "sel",
                "steps": [{"kind": "rbf_sampler", "params": {"n_components": 10**6}}, LINEAR],
            },
            "parameter_out_of_range",
        ),
        (
            {
                "name": "sel",
                "steps": [{"kind": "polynomial_extender", "params": {"degree": 9}}, LINEAR],
            },
            "parameter_out_of_range",
        ),
        (
            {
                "name": "sel",
                "kind": "output_code_classifier",
                "params": {"classifier": {"kind": "logistic_regression"}, "code_size": 101},
            },
            "parameter_out_of_range",
        ),
    ],
)
async def test_a_spec_over_a_bound_is_a_4xx_and_creates_nothing(
    client: httpx.AsyncClient, spec: dict[str, Any], code: str
) -> None:
    response = await client.post("/api/v1/models", json=spec)
    assert error_code(response, 422) == code
    assert (await client.get("/api/v1/models/sel")).status_code == 404


@pytest.mark.parametrize(
    ("kind", "model", "metric", "allowed"),
    [
        ("bandit_regressor", LINEAR, "mae", "one of: r2"),
        ("bandit_classifier", {"kind": "logistic_regression"}, "log_loss", "one of: accuracy, "),
    ],
)
async def test_a_bandit_names_the_metrics_it_takes(
    client: httpx.AsyncClient, kind: str, model: dict[str, Any], metric: str, allowed: str
) -> None:
    spec = {"name": "sel", "kind": kind, "params": {"models": [model, model], "metric": metric}}
    response = await client.post("/api/v1/models", json=spec)
    assert error_code(response, 422) == "invalid_parameter"
    assert allowed in response.json()["error"]["message"]


async def test_a_sample_past_a_learned_bound_is_refused_and_learns_nothing(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = {
        "name": "ovr",
        "kind": "one_vs_one_classifier",
        "params": {"classifier": {"kind": "logistic_regression"}},
    }
    assert (await client.post("/api/v1/models", json=spec)).status_code == 201
    path = "/api/v1/models/ovr/learn"
    # MAX_MULTICLASS_LABELS (100) classes learn; the 101st is refused
    samples = [{"x": {"a": float(i)}, "y": f"c{i}"} for i in range(100)]
    assert (await client.post(path, json={"samples": samples})).status_code == 200
    refused = await client.post(path, json={"x": {"a": 1.0}, "y": "c100"})
    assert error_code(refused, 422) == "learn_failed"
    assert (await client.get("/api/v1/models/ovr")).json()["seq"] == 100


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("successive_halving_regressor", {"budget": 200}),
        ("greedy_regressor", {}),
        ("bandit_regressor", {"policy": {"kind": "ucb", "params": {"delta": 1.0, "seed": 1}}}),
    ],
)
async def test_a_selector_shows_the_candidate_it_prefers(
    client: httpx.AsyncClient, kind: str, params: dict[str, Any]
) -> None:
    models = [{"kind": "linear_regression", "params": {"l2": l2}} for l2 in (0.0, 0.5, 5.0)]
    spec = {
        "name": "pick",
        "steps": [
            {"kind": "standard_scaler"},
            {"kind": kind, "params": {"models": models, **params}},
        ],
    }
    assert (await client.post("/api/v1/models", json=spec)).status_code == 201
    samples = [{"x": x, "y": y} for x, y in itertools.islice(datasets.TrumpApproval(), 300)]
    learned = await client.post("/api/v1/models/pick/learn", json={"samples": samples})
    assert learned.status_code == 200, learned.text
    shown = (await client.get("/api/v1/models/pick")).json()
    preferred = shown["preferred"]
    assert shown["seq"] == 300
    assert preferred["index"] in (0, 1, 2)
    assert preferred["candidate"] == models[preferred["index"]]
    if kind.startswith("successive_halving"):
        assert preferred["decided"] is True  # 3 candidates halve to one within the budget
    plain = await client.post("/api/v1/models", json={"name": "plain", "kind": "linear_regression"})
    assert plain.status_code == 201
    assert "preferred" not in (await client.get("/api/v1/models/plain")).json()
