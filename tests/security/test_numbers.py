"""Numbers: every number a client sends is bounded (no unbounded int→float conversion, |value|
<= MAX_ABS_VALUE), and a model whose prediction is not finite is reported, never a 5xx.

Before: a 400-digit integer in x or y was a 500 (OverflowError) on learn, predict,
predict_learn, forecast and whole batches; `y: 1e200` was accepted, predictions came back
null with 200, and the model's /metrics and /drift answered 500 for good.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.edge import edge_client
from tests.security.conftest import assert_envelope

HUGE = "9" * 400  # a JSON integer no float holds
MODELS = {
    "lin": {"steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]},
    "clf": {"kind": "gaussian_nb"},
    "hw": {"kind": "snarimax", "params": {"p": 1, "d": 0, "q": 0}},
}


async def seed(client: httpx.AsyncClient) -> None:
    for name, spec in MODELS.items():
        response = await client.post("/api/v1/models", json={"name": name, **spec})
        assert response.status_code == 201, response.text
    for value in (1.0, 2.0, 3.0):
        learned = await client.post(
            "/api/v1/models/lin/learn", json={"x": {"a": value}, "y": value}
        )
        assert learned.status_code == 200
        assert (await client.post("/api/v1/models/hw/learn", json={"y": value})).status_code == 200
    assert (
        await client.put("/api/v1/series/s/models", json={"models": ["lin"]})
    ).status_code == 200


@dataclass(frozen=True)
class Call:
    """A request with one number in it: `{N}` is replaced by the number's JSON text."""

    name: str
    method: str
    path: str
    body: str | None
    code: str | None  # the refusal's code when the number is out of range


CALLS = [
    Call(
        "learn x",
        "POST",
        "/api/v1/models/lin/learn",
        '{"x": {"a": {N}}, "y": 1}',
        "invalid_features",
    ),
    Call(
        "learn y", "POST", "/api/v1/models/lin/learn", '{"x": {"a": 1}, "y": {N}}', "invalid_target"
    ),
    Call(
        "learn many",
        "POST",
        "/api/v1/models/lin/learn",
        '{"samples": [{"x": {"a": 1}, "y": 1}, {"x": {"a": {N}}, "y": 2}]}',
        "invalid_features",
    ),
    Call(
        "predict x", "POST", "/api/v1/models/lin/predict", '{"x": {"a": {N}}}', "invalid_features"
    ),
    Call(
        "predict_learn x",
        "POST",
        "/api/v1/models/lin/predict_learn",
        '{"x": {"a": {N}}, "y": 1}',
        "invalid_features",
    ),
    Call(
        "predict_learn y",
        "POST",
        "/api/v1/models/lin/predict_learn",
        '{"x": {"a": 1}, "y": {N}}',
        "invalid_target",
    ),
    Call(
        "class label",
        "POST",
        "/api/v1/models/clf/learn",
        '{"x": {"a": 1}, "y": {N}}',
        "invalid_target",
    ),
    Call(
        "forecast xs",
        "POST",
        "/api/v1/models/hw/forecast",
        '{"horizon": 1, "xs": [{"a": {N}}]}',
        "invalid_features",
    ),
    Call("forecaster y", "POST", "/api/v1/models/hw/learn", '{"y": {N}}', "invalid_target"),
    Call("observation", "POST", "/api/v1/series/s/observations", '{"value": {N}}', None),
    Call(
        "spec parameter",
        "POST",
        "/api/v1/models",
        '{"name": "p", "kind": "linear_regression", "params": {"l2": {N}}}',
        "parameter_out_of_range",
    ),
    Call("horizon", "POST", "/api/v1/models/hw/forecast", '{"horizon": {N}}', "validation_error"),
]
# Batches answer 200 with one error per bad item (the batch is never all-or-nothing).
BATCHES = [
    Call(
        "batch item",
        "POST",
        "/api/v1/models/lin/predict/batch",
        '{"instances": [{"a": {N}}]}',
        "invalid_features",
    ),
    Call(
        "multi-model batch item",
        "POST",
        "/api/v1/predict/batch",
        '{"items": [{"model": "lin", "x": {"a": {N}}}]}',
        "invalid_features",
    ),
]


def send(client: httpx.AsyncClient, call: Call, number: str) -> Any:
    body = None if call.body is None else call.body.replace("{N}", number)
    return client.request(
        call.method, call.path, content=body, headers={"content-type": "application/json"}
    )


async def snapshot(client: httpx.AsyncClient) -> Any:
    models = (await client.get("/api/v1/models")).json()["models"]
    seqs = {
        m["name"]: (await client.get(f"/api/v1/models/{m['name']}")).json()["seq"] for m in models
    }
    return seqs, (await client.get("/api/v1/series/s")).json()


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    async with edge_client(monkeypatch, tmp_path) as c:
        await seed(c)
        yield c


OUT_OF_RANGE = [HUGE, "-" + HUGE, "1e16", "-1e16", "1e308", "1e400", "-1e400"]


@pytest.mark.parametrize("number", OUT_OF_RANGE)
@pytest.mark.parametrize("call", CALLS, ids=lambda c: c.name)
async def test_an_out_of_range_number_is_a_422_and_changes_nothing(
    client: httpx.AsyncClient, call: Call, number: str
) -> None:
    before = await snapshot(client)
    response = await send(client, call, number)
    assert_envelope(response, 422, call.code)
    assert await snapshot(client) == before


@pytest.mark.parametrize("number", OUT_OF_RANGE)
@pytest.mark.parametrize("call", BATCHES, ids=lambda c: c.name)
async def test_an_out_of_range_batch_item_fails_alone(
    client: httpx.AsyncClient, call: Call, number: str
) -> None:
    response = await send(client, call, number)
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["error"]["code"] == call.code
    assert "MAX_ABS_VALUE" in result["error"]["message"]


@pytest.mark.parametrize("number", ["0", "-0.0", "1e15", "-1e15", "5e-324", "123456789012345"])
async def test_in_range_numbers_are_served(client: httpx.AsyncClient, number: str) -> None:
    for call in CALLS[:6]:
        response = await send(client, call, number)
        assert response.status_code == 200, (call.name, response.text)


# Arbitrary JSON number texts: integers of any size, floats at and past the double range.
JSON_NUMBERS = st.one_of(
    st.integers(min_value=-(10**450), max_value=10**450).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e308", "-1e308", "1e400", "-0.0", "0.0", "4.9e-324", "1E+15", "9" * 4000]),
)


def test_any_json_number_anywhere_is_never_a_5xx(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loop = asyncio.new_event_loop()
    context = edge_client(monkeypatch, tmp_path)
    client = loop.run_until_complete(context.__aenter__())
    try:
        loop.run_until_complete(seed(client))

        @settings(max_examples=150, deadline=None, database=None)
        @given(number=JSON_NUMBERS, call=st.sampled_from([*CALLS, *BATCHES]))
        def check(number: str, call: Call) -> None:
            response = loop.run_until_complete(send(client, call, number))
            assert response.status_code < 500, (call.name, number[:40], response.text)
            limit = loop.run_until_complete(
                client.get(f"/api/v1/predictions/recent?limit={number}")
            )
            assert limit.status_code < 500, limit.text

        check()
        for path in ("/api/v1/models/lin/metrics", "/api/v1/models/lin/drift", "/metrics"):
            assert loop.run_until_complete(client.get(path)).status_code == 200
    finally:
        loop.run_until_complete(context.__aexit__(None, None, None))
        loop.close()


# --- a model whose prediction is not finite -------------------------------------------------


async def test_a_model_predicting_non_finite_numbers_is_reported_not_a_5xx(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With MAX_ABS_VALUE raised to 1e300, a linear model fed 1e300 predicts inf: the answer
    says so, the model's status and /ready flag it, one model.degraded event is published,
    and every monitoring view still answers 200."""
    env = {"MAX_ABS_VALUE": "1e300"}
    async with edge_client(monkeypatch, tmp_path, env) as client:
        spec = {"name": "m", "kind": "linear_regression"}
        assert (await client.post("/api/v1/models", json=spec)).status_code == 201
        sample = {"x": {"a": 1e300}, "y": 1e300}
        answers = [
            (await client.post("/api/v1/models/m/predict_learn", json=sample)).json()
            for _ in range(4)
        ]
        assert answers[0] == {"prediction": 0.0, "model_version": 1, "seq": 1}
        for answer in answers[1:]:
            assert answer["prediction"] is None and answer["degraded"] is True
        predicted = (await client.post("/api/v1/models/m/predict", json={"x": sample["x"]})).json()
        assert predicted["prediction"] is None and predicted["degraded"] is True
        batch = await client.post(
            "/api/v1/models/m/predict/batch", json={"instances": [sample["x"]]}
        )
        item = batch.json()["results"][0]
        assert item.pop("prediction_id")  # kept for a later label, degraded or not
        assert item == {"prediction": None, "degraded": True}

        status = (await client.get("/api/v1/models/m")).json()
        assert status["seq"] == 4
        assert status["degraded"]["route"] == "predict_learn" and status["degraded"]["seq"] == 2
        ready = (await client.get("/ready")).json()
        assert ready["status"] == "ready"
        assert ready["details"]["degraded_models"] == {"count": 1, "models": ["acme/m"]}

        for path in ("/api/v1/models/m/metrics", "/api/v1/models/m/drift", "/metrics"):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text)
        metrics = (await client.get("/api/v1/models/m/metrics")).json()
        assert metrics["versions"][0]["samples"] == 4  # folded, the non-finite ones unscored

        events = [
            json.loads(line)
            for line in (tmp_path / "events" / "acme.jsonl").read_text().splitlines()
        ]
        degraded = [e for e in events if e["type"] == "model.degraded"]
        assert len(degraded) == 1 and degraded[0]["data"]["name"] == "m"

        # a new incarnation starts afresh
        assert (await client.delete("/api/v1/models/m")).status_code == 204
        assert (await client.post("/api/v1/models", json=spec)).status_code == 201
        assert (await client.get("/api/v1/models/m")).json()["degraded"] is None
        assert (await client.get("/ready")).json()["details"]["degraded_models"]["count"] == 0
