"""Bounds: every request that would ask more than a bound allows is a 422 naming the bound,
answered at once, with nothing created, learned or stored (README: Input bounds).

Before this suite, `n_models: 1e9` never answered (and took /health down with it), a tfidf
`ngram_range: [1, 2000]` spent 74 s and 4.5 GB on one 10 KB text, and a 5,000-digit `limit`
was a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.param_bounds import RANGES
from tests.edge import edge_client
from tests.security.conftest import assert_envelope, tenant_state
from tests.servers import AppProcess

# Small operator bounds where reaching the default would take thousands of requests.
ENV = {
    "MAX_MODELS_PER_TENANT": "4",
    "MAX_MODEL_FEATURES": "12",
    "MAX_FANOUT": "4",
}
LIN = {"kind": "linear_regression"}
TEXT = {"steps": [{"kind": "tfidf"}, {"kind": "multinomial_nb"}]}


def create(name: str, **spec: Any) -> dict[str, Any]:
    return {"name": name, **spec}


def one(kind: str, **params: Any) -> dict[str, Any]:
    return {"kind": kind, "params": params}


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: Any
    code: str
    names: str  # what the message must name (the setting or the parameter's range)
    status: int = 422


def features(count: int, prefix: str = "f") -> dict[str, float]:
    return {f"{prefix}{i}": 1.0 for i in range(count)}


CASES = [
    # catalog parameters (shared/param_bounds.py), refused before anything is built
    Case(
        "bagging n_models 1e9",
        "POST",
        "/api/v1/models",
        create("x", kind="bagging_regressor", params={"n_models": 10**9, "model": LIN}),
        "parameter_out_of_range",
        "MAX_ENSEMBLE_MODELS",
    ),
    Case(
        "bagging n_models just over",
        "POST",
        "/api/v1/models",
        create("x", kind="bagging_regressor", params={"n_models": 101, "model": LIN}),
        "parameter_out_of_range",
        "MAX_ENSEMBLE_MODELS",
    ),
    Case(
        "nested bagging multiplies",
        "POST",
        "/api/v1/models",
        create(
            "x",
            kind="bagging_regressor",
            params={"n_models": 11, "model": one("bagging_regressor", n_models=10, model=LIN)},
        ),
        "parameter_out_of_range",
        "MAX_ENSEMBLE_MODELS",
    ),
    Case(
        "forest n_models",
        "POST",
        "/api/v1/models",
        create("x", **one("adaptive_random_forest_classifier", n_models=101)),
        "parameter_out_of_range",
        "MAX_ENSEMBLE_MODELS",
    ),
    Case(
        "mondrian n_estimators",
        "POST",
        "/api/v1/models",
        create("x", **one("amf_regressor", n_estimators=101)),
        "parameter_out_of_range",
        "MAX_ENSEMBLE_MODELS",
    ),
    Case(
        "tree max_depth",
        "POST",
        "/api/v1/models",
        create("x", **one("hoeffding_tree_regressor", max_depth=51)),
        "parameter_out_of_range",
        "MAX_TREE_DEPTH",
    ),
    Case(
        "tfidf ngram_range [1, 2000]",
        "POST",
        "/api/v1/models",
        {"name": "x", "steps": [one("tfidf", ngram_range=[1, 2000]), {"kind": "multinomial_nb"}]},
        "parameter_out_of_range",
        "MAX_NGRAM",
    ),
    Case(
        "bag_of_words ngram_range just over",
        "POST",
        "/api/v1/models",
        {"name": "x", "steps": [one("bag_of_words", ngram_range=[1, 4]), {"kind": "gaussian_nb"}]},
        "parameter_out_of_range",
        "MAX_NGRAM",
    ),
    *(
        Case(
            f"{kind} {param}",
            "POST",
            "/api/v1/models",
            create("x", **one(kind, **{param: int(RANGES[param].high) + 1})),  # type: ignore[arg-type]
            "parameter_out_of_range",
            f"..{int(RANGES[param].high)}",  # type: ignore[arg-type]
        )
        for kind, param in [
            ("hoeffding_tree_classifier", "grace_period"),
            ("hoeffding_tree_regressor", "min_samples_split"),
            ("hoeffding_adaptive_tree_classifier", "drift_window_threshold"),
            ("adaptive_random_forest_regressor", "lambda_value"),
            ("amf_classifier", "max_nodes"),
            ("knn_regressor", "n_neighbors"),
            ("knn_classifier", "cleanup_every"),
            ("holt_winters", "seasonality"),
            ("mlp_regressor", "max_iter"),
            ("amf_regressor", "seed"),
        ]
    ),
    Case(
        "scaler window_size",
        "POST",
        "/api/v1/models",
        {"name": "x", "steps": [one("standard_scaler", window_size=10_001), LIN]},
        "parameter_out_of_range",
        "1..10000",
    ),
    Case(
        "snarimax lags",
        "POST",
        "/api/v1/models",
        create("x", **one("snarimax", p=101, d=0, q=0)),
        "parameter_out_of_range",
        "0..100",
    ),
    Case(
        "mlp hidden layers",
        "POST",
        "/api/v1/models",
        create("x", **one("mlp_regressor", hidden_layer_sizes=[1025])),
        "parameter_out_of_range",
        "1..1024",
    ),
    Case(
        "a float parameter over MAX_ABS_VALUE",
        "POST",
        "/api/v1/models",
        create("x", **one("linear_regression", l2=1e16)),
        "parameter_out_of_range",
        "1e+15",
    ),
    Case(
        "a 400-digit integer parameter",
        "POST",
        "/api/v1/models",
        create("x", **one("hoeffding_tree_regressor", grace_period=10**400)),
        "parameter_out_of_range",
        "1..100000",
    ),
    # request shapes (shared/limits.py)
    Case(
        "samples per request",
        "POST",
        "/api/v1/models/lin/learn",
        {"samples": [{"x": {"a": 1.0}, "y": 1.0}] * 1001},
        "too_many_samples",
        "MAX_SAMPLES_PER_REQUEST",
    ),
    Case(
        "features per sample",
        "POST",
        "/api/v1/models/lin/learn",
        {"x": features(1001), "y": 1.0},
        "too_many_features",
        "MAX_FEATURES_PER_SAMPLE",
    ),
    Case(
        "feature name length",
        "POST",
        "/api/v1/models/lin/predict",
        {"x": {"a" * 257: 1.0}},
        "feature_name_too_long",
        "MAX_FEATURE_NAME_CHARS",
    ),
    Case(
        "string feature length",
        "POST",
        "/api/v1/models/tree/learn",
        {"x": {"a": "v" * 257}, "y": 1.0},
        "feature_value_too_long",
        "MAX_FEATURE_NAME_CHARS",
    ),
    Case(
        "label length",
        "POST",
        "/api/v1/models/text/learn",
        {"x": "short text", "y": "l" * 257},
        "invalid_target",
        "MAX_FEATURE_NAME_CHARS",
    ),
    Case(
        "text length",
        "POST",
        "/api/v1/models/text/learn",
        {"x": "word " * 2000 + "x", "y": "a"},
        "text_too_long",
        "MAX_TEXT_CHARS",
    ),
    Case(
        "distinct feature names a model learns",
        "POST",
        "/api/v1/models/lin/learn",
        {"samples": [{"x": features(7, "p"), "y": 1.0}, {"x": features(7, "q"), "y": 1.0}]},
        "too_many_model_features",
        "MAX_MODEL_FEATURES",
    ),
    Case(
        "distinct text terms a model learns",
        "POST",
        "/api/v1/models/text/learn",
        {"x": " ".join(f"term{i}" for i in range(13)), "y": "a"},
        "too_many_model_features",
        "MAX_MODEL_FEATURES",
    ),
    Case(
        "models per tenant",
        "POST",
        "/api/v1/models",
        create("fifth", kind="linear_regression"),
        "too_many_models",
        "MAX_MODELS_PER_TENANT",
    ),
    Case(
        "observations x subscribed models",
        "POST",
        "/api/v1/series/s/observations",
        [{"value": 1.0}, {"value": 2.0}, {"value": 3.0}],
        "fanout_too_large",
        "MAX_FANOUT",
    ),
    Case(
        "pulled values x subscribed models",
        "POST",
        "/api/v1/series/s/pull",
        {"count": 3},
        "fanout_too_large",
        "MAX_FANOUT",
    ),
    Case(
        "observation over MAX_ABS_VALUE",
        "POST",
        "/api/v1/series/s/observations",
        {"value": 1e16},
        "invalid_value",
        "MAX_ABS_VALUE",
    ),
    Case(
        "a 5,000-digit limit",
        "GET",
        "/api/v1/predictions/recent?limit=" + "9" * 5000,
        None,
        "invalid_limit",
        "1 to 1000",
        status=400,
    ),
]


@pytest.fixture
async def bounded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """Four models (the tenant's bound), one series feeding two of them, a CSV source."""
    async with edge_client(monkeypatch, tmp_path, ENV) as client:
        for name, spec in [
            ("lin", {"steps": [{"kind": "standard_scaler"}, LIN]}),
            ("tree", {"kind": "hoeffding_tree_regressor"}),
            ("text", TEXT),
            ("lag", {"kind": "linear_regression"}),
        ]:
            response = await client.post("/api/v1/models", json={"name": name, **spec})
            assert response.status_code == 201, response.text
        assert (
            await client.post("/api/v1/models/lin/learn", json={"x": {"a": 1.0}, "y": 1.0})
        ).status_code == 200
        subscribed = await client.put("/api/v1/series/s/models", json={"models": ["lin", "lag"]})
        assert subscribed.status_code == 200, subscribed.text
        source = {"kind": "dataset", "name": "TrumpApproval"}
        assert (await client.put("/api/v1/series/s/source", json=source)).status_code == 200
        yield client


async def _everything(client: httpx.AsyncClient) -> dict[str, Any]:
    series = (await client.get("/api/v1/series/s")).json()
    cursor = (await client.get("/api/v1/series/s/source")).json()["cursor"]
    return {"models": await tenant_state(client), "series": series, "cursor": cursor}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_over_a_bound_is_refused_at_once_and_changes_nothing(
    bounded: httpx.AsyncClient, case: Case
) -> None:
    before = await _everything(bounded)
    response = await bounded.request(case.method, case.path, json=case.body)
    assert_envelope(response, case.status, case.code)
    assert case.names in response.json()["error"]["message"], response.text
    assert await _everything(bounded) == before


async def test_at_the_bound_is_served(bounded: httpx.AsyncClient) -> None:
    """Just inside each request-shape bound: served (the bound is not off by one)."""
    ok = [
        ("/api/v1/models/lin/learn", {"samples": [{"x": {"a": 1.0}, "y": 1.0}] * 1000}),
        ("/api/v1/models/lin/predict", {"x": {"a" * 256: 1.0}}),
        ("/api/v1/models/lin/learn", {"x": features(11), "y": 1.0}),  # 'a' + 11 = 12 names
        ("/api/v1/series/s/observations", [{"value": 1.0}, {"value": 1e15}]),  # 2 x 2 = 4
    ]
    for path, body in ok:
        response = await bounded.post(path, json=body)
        assert response.status_code == 200, (path, response.text)


async def test_catalog_lists_the_ranges(bounded: httpx.AsyncClient) -> None:
    kinds = {k["kind"]: k for k in (await bounded.get("/api/v1/catalog")).json()["kinds"]}
    assert kinds["bagging_regressor"]["bounds"]["n_models"] == "1..100 (MAX_ENSEMBLE_MODELS)"
    assert "MAX_NGRAM" in kinds["tfidf"]["bounds"]["ngram_range"]


ABUSIVE = [
    create("huge", kind="bagging_regressor", params={"n_models": 10**9, "model": LIN}),
    {"name": "grams", "steps": [one("tfidf", ngram_range=[1, 2000]), {"kind": "multinomial_nb"}]},
]


async def test_health_answers_while_abusive_creates_are_sent(
    app_factory: Callable[..., AppProcess],
) -> None:
    """A real server: the abusive creates are refused, and /health completes alongside them
    (as it does alongside the heaviest spec the bounds allow, proven off the event loop)."""
    app = app_factory({"STATE_URL": "memory://"})
    heaviest = create(
        "forest", **one("adaptive_random_forest_regressor", n_models=100, max_depth=50)
    )
    async with httpx.AsyncClient(
        base_url=app.url, headers={"X-Tenant-ID": "acme"}, timeout=60
    ) as c:
        creates = [
            asyncio.ensure_future(c.post("/api/v1/models", json=body))
            for body in [*ABUSIVE, heaviest]
        ]
        health = await c.get("/health")
        assert health.status_code == 200
        *refused, served = await asyncio.gather(*creates)
        for response in refused:
            assert_envelope(response, 422, "parameter_out_of_range")
        assert served.status_code == 201, served.text
        names = {m["name"] for m in (await c.get("/api/v1/models")).json()["models"]}
        assert names == {"forest"}
