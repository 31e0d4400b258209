"""Proven specs: a spec is built and learns and predicts a synthetic sample before it is
created (off the event loop, within SPEC_PROOF_SECONDS and MAX_MODEL_BYTES), and a sample
whose learn raises is never acknowledged.

Before: tfidf `tokenizer_pattern: "("` was created (201) and then answered 500 on every call;
an MLP with `activation: "nope"` acknowledged learns (200, seq advancing) it never made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.catalog import build_model
from tests.edge import edge_client
from tests.security.conftest import assert_envelope, model_state, tenant_state


@dataclass(frozen=True)
class Case:
    name: str
    spec: dict[str, Any]
    code: str
    says: str  # River's (or scikit-learn's) words, or the budget's name
    env: tuple[tuple[str, str], ...] = ()


OUT, BAD = "parameter_out_of_range", "invalid_parameter"
CASES = [
    Case(
        "tfidf tokenizer_pattern '('",
        {
            "steps": [
                {"kind": "tfidf", "params": {"tokenizer_pattern": "("}},
                {"kind": "gaussian_nb"},
            ]
        },
        "invalid_parameter",
        "missing ), unterminated subpattern",
    ),
    *(
        Case(
            f"tfidf tokenizer_pattern {why}",
            {
                "steps": [
                    {"kind": "tfidf", "params": {"tokenizer_pattern": pattern}},
                    {"kind": "gaussian_nb"},
                ]
            },
            code,
            says,
        )
        # minutes of `re` on the proof's own 29-character text, hours on a user's
        for why, pattern, code, says in (
            ("nested alternatives", r"(?:[\w\s]|[\w\s])*\d", OUT, "may hold no repetition"),
            ("nested repetition", r"(a+)+$", OUT, "may hold no repetition"),
            ("three repetitions in a row", r"\w+\s*\w+x", OUT, "can backtrack too long"),
            ("a fixed count after a +", r"\w*a{500}b", OUT, "can backtrack too long"),
            ("back-reference", r"(\w+)\s\1", OUT, "back-reference"),
            # re.compile raises OverflowError, not re.error: it was a 500
            ("a count past C's int", "a{99999999999999999999}", BAD, "not a valid regular"),
        )
    ),
    Case(
        "mlp activation 'nope'",
        {"kind": "mlp_regressor", "params": {"activation": "nope"}},
        "spec_failed",
        "'activation' parameter of MLPRegressor",
    ),
    Case(
        "mlp learning_rate 'nope'",
        {"kind": "mlp_classifier", "params": {"learning_rate": "nope", "classes": ["a", "b"]}},
        "spec_failed",
        "'learning_rate' parameter of MLPClassifier",
    ),
    Case(
        "mlp solver without partial_fit",
        {"kind": "mlp_classifier", "params": {"solver": "lbfgs", "classes": ["a", "b"]}},
        "invalid_parameter",
        "partial_fit",
    ),
    Case(
        "over MAX_MODEL_BYTES",
        {"kind": "adaptive_random_forest_regressor", "params": {"n_models": 10}},
        "model_too_large",
        "MAX_MODEL_BYTES is 8192",
        (("MAX_MODEL_BYTES", "8192"),),
    ),
    Case(
        # a hundred trees cannot be built, learned and pickled within a millisecond
        "over SPEC_PROOF_SECONDS",
        {"kind": "adaptive_random_forest_regressor", "params": {"n_models": 100}},
        "spec_too_slow",
        "SPEC_PROOF_SECONDS",
        (("SPEC_PROOF_SECONDS", "0.001"),),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_a_spec_that_cannot_work_is_refused_at_create(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, case: Case
) -> None:
    async with edge_client(monkeypatch, tmp_path, dict(case.env)) as client:
        if not case.env:  # (a tight budget would refuse any model: the tenant stays empty)
            keep = await client.post("/api/v1/models", json={"name": "keep", "kind": "gaussian_nb"})
            assert keep.status_code == 201, keep.text
        before = await tenant_state(client)
        response = await client.post("/api/v1/models", json={"name": "m", **case.spec})
        assert_envelope(response, 422, case.code)
        assert case.says in response.json()["error"]["message"], response.text
        assert await tenant_state(client) == before
        assert (
            await client.get("/api/v1/models/m/versions")
        ).status_code == 404  # no registry trace


@pytest.fixture(params=["memory", "redis"])
async def client(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    env = {}
    if request.param == "redis":
        env["STATE_URL"] = request.getfixturevalue("redis_url")
    async with edge_client(monkeypatch, tmp_path, env) as c:
        yield c


MLP = {"steps": [{"kind": "standard_scaler"}, {"kind": "mlp_regressor"}]}
GOOD = [({"a": 1.0, "b": 2.0}, 1.0), ({"a": -1.0, "b": 0.5}, 3.0)]
BAD_X = {"a": 1.0}  # the MLP was fitted on two features: its learn raises


def reference(samples: list[tuple[dict[str, float], float]]) -> Any:
    """The same spec fed only the acknowledged samples, in process."""
    _, model = build_model(MLP)
    for x, y in samples:
        model.learn_one(x, y)
    return model


@pytest.mark.parametrize(
    "body",
    [
        {"x": BAD_X, "y": 2.0},
        {"samples": [{"x": {"a": 0.5, "b": 0.5}, "y": 2.0}, {"x": BAD_X, "y": 2.0}]},
    ],
    ids=["one sample", "a batch whose second sample fails"],
)
async def test_a_learn_that_raises_is_never_acknowledged(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    assert (await client.post("/api/v1/models", json={"name": "m", **MLP})).status_code == 201
    learned = await client.post(
        "/api/v1/models/m/learn", json={"samples": [{"x": x, "y": y} for x, y in GOOD[:1]]}
    )
    assert learned.status_code == 200, learned.text
    before = await model_state(client, "m")

    response = await client.post("/api/v1/models/m/learn", json=body)
    assert_envelope(response, 422, "learn_failed")
    assert "nothing was learned" in response.json()["error"]["message"]
    assert await model_state(client, "m") == before  # seq did not advance

    # the log holds no part of the refused request, and the warm model (which the standard
    # scaler had already changed when the MLP raised) was dropped, not served half-changed
    x, y = GOOD[1]
    after = await client.post("/api/v1/models/m/learn", json={"x": x, "y": y})
    assert after.json()["first_seq"] == before["seq"] + 1
    probe = {"a": 0.25, "b": -0.5}
    served = (await client.post("/api/v1/models/m/predict", json={"x": probe})).json()
    assert served["prediction"] == reference(GOOD).predict_one(probe)
    assert served["seq"] == 2


async def test_predict_learn_that_raises_is_never_acknowledged(client: httpx.AsyncClient) -> None:
    spec = {"name": "c", "kind": "mlp_classifier", "params": {"classes": ["a", "b"]}}
    assert (await client.post("/api/v1/models", json=spec)).status_code == 201
    assert (
        await client.post("/api/v1/models/c/learn", json={"x": {"f": 1.0}, "y": "a"})
    ).status_code == 200
    before = await model_state(client, "c")
    # a label outside params.classes: scikit-learn's partial_fit raises
    response = await client.post(
        "/api/v1/models/c/predict_learn", json={"x": {"f": 1.0}, "y": "zzz"}
    )
    assert_envelope(response, 422, "learn_failed")
    assert await model_state(client, "c") == before
