"""Series ingestion: lag windows, prequential fan-out equal to River, recursive forecast,
sources with a cursor, the ticker's retries, and bad inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from river import datasets, linear_model, preprocessing

from tests.fake_ticker import FakeTicker

LINEAR = {"steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}


async def make_model(client: httpx.AsyncClient, name: str, spec: dict[str, Any] = LINEAR) -> None:
    assert (await client.post("/api/v1/models", json={"name": name, **spec})).status_code == 201


async def test_lag_features_follow_the_window(client: httpx.AsyncClient) -> None:
    assert (await client.put("/api/v1/series/s", json={"n_lags": 3})).status_code == 200
    seen: list[float] = []
    for value in [5.0, 7.5, 1.0, 9.0, 4.25]:
        body = (await client.post("/api/v1/series/s/observations", json={"value": value})).json()
        [entry] = body["observations"]
        window = list(reversed(seen))[:3]  # most recent first
        assert entry["features"] == {f"in_{i + 1}": v for i, v in enumerate(window)}
        assert entry["target"] == value and entry["available_lags"] == len(window)
        seen.append(value)
        assert entry["count"] == len(seen)
    series = (await client.get("/api/v1/series/s")).json()
    assert series["window"] == [4.25, 9.0, 1.0] and series["count"] == 5
    assert series["features"] == {"in_1": 4.25, "in_2": 9.0, "in_3": 1.0}


async def test_airline_passengers_replay_equals_river(client: httpx.AsyncClient) -> None:
    await make_model(client, "lin")
    await client.put("/api/v1/series/air/models", json={"models": ["lin"], "n_lags": 12})
    ys = [float(y) for _, y in datasets.AirlinePassengers()]
    answers = []
    for start in range(0, len(ys), 40):  # lists of observations, applied in order
        body = [{"value": y} for y in ys[start : start + 40]]
        answers += (await client.post("/api/v1/series/air/observations", json=body)).json()[
            "observations"
        ]

    local = preprocessing.StandardScaler() | linear_model.LinearRegression()
    window: list[float] = []
    for y, answer in zip(ys, answers, strict=True):
        if len(window) == 12:
            x = {f"in_{i + 1}": v for i, v in enumerate(window)}
            assert answer["predictions"]["lin"]["prediction"] == local.predict_one(x)
            local.learn_one(x, y)
        else:
            assert "lin" not in answer["predictions"]  # regressors wait for a full window
        window = [y, *window][:12]
    assert (await client.get("/api/v1/models/lin")).json()["seq"] == 144 - 12

    # recursive forecast: each prediction fed back as in_1
    forecast = (await client.post("/api/v1/models/lin/forecast", json={"series": "air"})).json()
    lags, expected = list(window), []
    for _ in range(5):
        p = local.predict_one({f"in_{i + 1}": v for i, v in enumerate(lags)})
        expected.append(p)
        lags = [p, *lags[:-1]]
    assert forecast["forecast"] == expected and forecast["horizon"] == 5


async def test_forecaster_subscribers_learn_every_value(client: httpx.AsyncClient) -> None:
    await make_model(client, "hw", {"kind": "holt_winters", "params": {"alpha": 0.5, "beta": 0.1}})
    await make_model(client, "lin")
    await client.put("/api/v1/series/s/models", json={"models": ["hw", "lin"], "n_lags": 2})
    for value in [1.0, 2.0, 3.0, 4.0]:
        await client.post("/api/v1/series/s/observations", json={"value": value})
    assert (await client.get("/api/v1/models/hw")).json()["seq"] == 4
    assert (await client.get("/api/v1/models/lin")).json()["seq"] == 2


async def test_a_failing_model_fails_only_its_entry(client: httpx.AsyncClient) -> None:
    await make_model(client, "good")
    await make_model(client, "gone")
    await client.put("/api/v1/series/s/models", json={"models": ["good", "gone"], "n_lags": 1})
    await client.delete("/api/v1/models/gone")
    await client.post("/api/v1/series/s/observations", json={"value": 1.0})
    entry = (await client.post("/api/v1/series/s/observations", json={"value": 2.0})).json()[
        "observations"
    ][0]
    assert entry["predictions"]["gone"]["error"]["code"] == "model_not_found"
    assert entry["predictions"]["good"]["seq"] == 1


async def test_dataset_source_cursor_pull_reset_pull(client: httpx.AsyncClient) -> None:
    source = {"kind": "dataset", "name": "AirlinePassengers"}
    status = (await client.put("/api/v1/series/air/source", json=source)).json()
    assert status["total"] == 144 and status["cursor"] == 0
    first = (await client.post("/api/v1/series/air/pull", json={"count": 10})).json()
    assert [o["value"] for o in first["observations"]] == [
        float(y) for _, y in list(datasets.AirlinePassengers())[:10]
    ]
    assert first["observations"][0]["ts"].startswith("1949-01-01")
    await client.post("/api/v1/series/air/reset")
    again = (await client.post("/api/v1/series/air/pull", json={"count": 10})).json()
    assert [o["value"] for o in again["observations"]] == [
        o["value"] for o in first["observations"]
    ]
    assert (await client.get("/api/v1/series/air/source")).json()["cursor"] == 10
    rest = (await client.post("/api/v1/series/air/pull", json={"count": 1000})).json()
    assert rest["pulled"] == 134
    done = (await client.post("/api/v1/series/air/pull")).json()
    assert done == {"series": "air", "pulled": 0, "exhausted": True, "observations": []}


async def test_sp500_symbol_and_csv_sources(client: httpx.AsyncClient, data_dir: Path) -> None:
    status = (
        await client.put(
            "/api/v1/series/aapl/source",
            json={"kind": "dataset", "name": "SP500Stocks", "symbol": "AAPL"},
        )
    ).json()
    assert status["total"] == 1257
    pulled = (await client.post("/api/v1/series/aapl/pull", json={"count": 2})).json()
    x0, _ = next(iter(datasets.SP500Stocks()))
    assert pulled["observations"][0]["value"] == x0["AAPL"]
    pd.DataFrame({"day": ["d1", "d2", "d3"], "price": [1.5, 2.5, 3.5]}).to_csv(
        data_dir / "p.csv", index=False
    )
    csv = {"kind": "csv", "uri": str(data_dir / "p.csv"), "column": "price", "ts_column": "day"}
    assert (await client.put("/api/v1/series/c/source", json=csv)).json()["total"] == 3
    obs = (await client.post("/api/v1/series/c/pull", json={"count": 5})).json()["observations"]
    assert [(o["value"], o["ts"]) for o in obs] == [(1.5, "d1"), (2.5, "d2"), (3.5, "d3")]


async def test_ticker_retries_then_succeeds(client: httpx.AsyncClient, ticker_port: int) -> None:
    with FakeTicker([42000.5], script=["503", "503", "ok"], port=ticker_port) as ticker:
        source = {
            "kind": "ticker",
            "pair": "BTC-USD",
            "base_url": ticker.url,
            "retries": 3,
            "backoff_seconds": 0.01,
        }
        await client.put("/api/v1/series/btc/source", json=source)
        pulled = (await client.post("/api/v1/series/btc/pull")).json()
        assert [o["value"] for o in pulled["observations"]] == [42000.5]
        assert ticker.requests == ["/v2/prices/BTC-USD/spot"] * 3


async def test_ticker_that_keeps_failing_is_a_clear_502_and_observes_nothing(
    client: httpx.AsyncClient, ticker_port: int
) -> None:
    with FakeTicker([1.0], script=["503", "hang", "503"], port=ticker_port) as ticker:
        source = {
            "kind": "ticker",
            "base_url": ticker.url,
            "retries": 2,
            "backoff_seconds": 0.01,
            "timeout_seconds": 0.2,
        }
        await client.put("/api/v1/series/btc/source", json=source)
        failed = await client.post("/api/v1/series/btc/pull")
        assert failed.status_code == 502
        error = failed.json()["error"]
        assert error["code"] == "upstream_unavailable" and "3 times" in error["message"]
        assert (await client.get("/api/v1/series/btc")).json()["count"] == 0


async def test_ticker_invert_gives_the_inverse_rate(
    client: httpx.AsyncClient, ticker_port: int
) -> None:
    with FakeTicker([0.5], port=ticker_port) as ticker:
        await client.put(
            "/api/v1/series/xrp/source",
            json={"kind": "ticker", "pair": "XRP-USD", "base_url": ticker.url, "invert": True},
        )
        assert (await client.post("/api/v1/series/xrp/pull")).json()["observations"][0][
            "value"
        ] == 2.0


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/api/v1/series/s/observations", {"value": "high"}, 422, "validation_error"),
        ("POST", "/api/v1/series/s/observations", '{"value": NaN}', 422, "validation_error"),
        ("POST", "/api/v1/series/ghost/observations", {"value": 1.0}, 404, "series_not_found"),
        ("GET", "/api/v1/series/ghost", None, 404, "series_not_found"),
        ("PUT", "/api/v1/series/s/models", {"models": ["nope"]}, 404, "model_not_found"),
        ("PUT", "/api/v1/series/s/models", {"models": ["clf"]}, 422, "invalid_subscriber"),
        ("PUT", "/api/v1/series/s", {"n_lags": 0}, 422, "validation_error"),
        ("PUT", "/api/v1/series/s", {"n_lags": 513}, 422, "validation_error"),
        (
            "PUT",
            "/api/v1/series/s/source",
            {"kind": "dataset", "name": "Nope"},
            422,
            "unknown_dataset",
        ),
        (
            "PUT",
            "/api/v1/series/s/source",
            {"kind": "dataset", "name": "SP500Stocks", "symbol": "ZZZ"},
            422,
            "unknown_symbol",
        ),
        (
            "PUT",
            "/api/v1/series/s/source",
            {"kind": "csv", "uri": "CSV", "column": "nope"},
            422,
            "unknown_column",
        ),
        ("PUT", "/api/v1/series/s/source", {"kind": "ftp"}, 422, "validation_error"),
        (
            "PUT",
            "/api/v1/series/s/source",
            {"kind": "ticker", "base_url": "file:///etc"},
            422,
            "validation_error",
        ),
        ("POST", "/api/v1/series/s/pull", {"count": 0}, 422, "validation_error"),
        ("POST", "/api/v1/series/s/pull", {}, 422, "no_source"),
        (
            "POST",
            "/api/v1/series/bad..name/observations",
            {"value": 1.0},
            400,
            "invalid_series_name",
        ),
        ("POST", "/api/v1/models/lin/forecast", {"series": "s"}, 422, "window_not_full"),
        ("POST", "/api/v1/models/hw/forecast", {"series": "s"}, 422, "not_a_regressor"),
    ],
)
async def test_bad_ingest_inputs(
    client: httpx.AsyncClient,
    data_dir: Path,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    await make_model(client, "lin")
    await make_model(client, "clf", {"kind": "gaussian_nb"})
    await make_model(client, "hw", {"kind": "holt_winters", "params": {"alpha": 0.5}})
    await client.put("/api/v1/series/s", json={"n_lags": 2})
    await client.post("/api/v1/series/s/observations", json={"value": 1.0})
    if isinstance(body, dict) and body.get("uri") == "CSV":
        pd.DataFrame({"price": [1.0]}).to_csv(data_dir / "p.csv", index=False)
        body = {**body, "uri": str(data_dir / "p.csv")}
    content = body if isinstance(body, str) else None
    response = await client.request(
        method,
        path,
        json=None if content else body,
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert (await client.get("/api/v1/series/s")).json()["count"] == 1  # nothing changed


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_observation_idempotency(
    client: httpx.AsyncClient, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "redis":
        from shared.state import RedisStateStore
        from shared.state.series import open_series_state

        store = RedisStateStore(request.getfixturevalue("redis_url"))
        series = open_series_state(store)
        from shared.state.base import Idempotency
        from shared.state.series import IdempotencyConflict

        once = await series.observe("t", "s", [(1.0, None)], 3, Idempotency("k", "h1"))
        again = await series.observe("t", "s", [(1.0, None)], 3, Idempotency("k", "h1"))
        assert not once.replay and again.replay and again.observed == once.observed
        with pytest.raises(IdempotencyConflict):
            await series.observe("t", "s", [(1.0, None), (2.0, None)], 3, Idempotency("k", "h2"))
        assert (await series.window("t", "s")).count == 1
        await store.close()
        return
    await make_model(client, "lin")
    await client.put("/api/v1/series/s/models", json={"models": ["lin"], "n_lags": 1})
    key = {"Idempotency-Key": "obs-1"}
    first = await client.post(
        "/api/v1/series/s/observations", json=[{"value": 1.0}, {"value": 2.0}], headers=key
    )
    retry = await client.post(
        "/api/v1/series/s/observations", json=[{"value": 1.0}, {"value": 2.0}], headers=key
    )
    assert retry.json()["replayed"] and retry.json()["observations"] == first.json()["observations"]
    assert (await client.get("/api/v1/series/s")).json()["count"] == 2
    assert (await client.get("/api/v1/models/lin")).json()["seq"] == 1  # learned once
    other = await client.post("/api/v1/series/s/observations", json={"value": 9.0}, headers=key)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    bad = await client.put("/api/v1/series/s/models", json={"models": [""]})
    assert bad.status_code == 422


async def test_an_observation_labels_the_prediction_made_for_it(
    client: httpx.AsyncClient,
) -> None:
    """Delayed labels through the fan-out: a client predicts the next value with the id
    "<series>:<count>"; when that observation arrives it labels the kept prediction (learned
    with the features kept then) instead of a fresh predict_learn — the model ends equal to
    River in-process, and the monitor scored the prediction the client was given."""
    await make_model(client, "lin")
    assert (await client.put("/api/v1/series/s", json={"n_lags": 2})).status_code == 200
    subscribed = await client.put("/api/v1/series/s/models", json={"models": ["lin"]})
    assert subscribed.status_code == 200
    values = [3.0, 5.0, 4.0, 6.5, 7.0, 5.5]
    reference = preprocessing.StandardScaler() | linear_model.LinearRegression()
    for count, value in enumerate(values, start=1):
        window = list(reversed(values[: count - 1]))[:2]
        x = {f"in_{i + 1}": v for i, v in enumerate(window)}
        given = None
        if count in (4, 6):  # the client forecasts these two ahead of time
            sent = {"x": x, "id": f"s:{count}"}
            given = (await client.post("/api/v1/models/lin/predict", json=sent)).json()
            assert given["prediction"] == reference.predict_one(x)
        body = (await client.post("/api/v1/series/s/observations", json={"value": value})).json()
        entry = body["observations"][0]["predictions"].get("lin")
        if len(window) < 2:
            assert entry is None  # the window is not full yet
            continue
        if given is not None:
            assert entry == {"prediction_id": f"s:{count}", "seq": entry["seq"]}
        else:
            assert entry["prediction"] == reference.predict_one(x)
        reference.learn_one(x, value)
    probe = {"in_1": 5.5, "in_2": 7.0}
    served = (await client.post("/api/v1/models/lin/predict", json={"x": probe})).json()
    assert served["prediction"] == reference.predict_one(probe)
    freshness = (await client.get("/api/v1/models/lin/freshness")).json()
    assert freshness["pending_labels"] == 1  # only the probe's prediction waits
