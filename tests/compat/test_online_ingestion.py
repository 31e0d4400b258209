"""Seeds 000/001, ingestion service: next (204 when exhausted), next/{crypto}, reset, status."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
from river import datasets

from tests.fake_ticker import FakeTicker

STREAM = "/api/v1/online/ingestion"


async def test_next_streams_the_seed_data_set(client: httpx.AsyncClient) -> None:
    first = await client.get(f"{STREAM}/airline/next")
    assert first.status_code == 200
    y0 = next(iter(datasets.AirlinePassengers()))[1]
    body = first.json()
    assert body == {
        "observation_id": 1,
        "input": body["input"],
        "target": float(y0),
        "remaining": 143,
    }
    assert body["input"].startswith("1949-01")
    status = (await client.get(f"{STREAM}/airline/status")).json()
    assert status == {
        "current_index": 1,
        "total_observations": 144,
        "remaining": 143,
        "completed": False,
    }
    reset = await client.post(f"{STREAM}/airline/reset")
    assert reset.json() == {"message": "Stream reset to beginning", "total_observations": 144}
    assert (await client.get(f"{STREAM}/airline/next")).json()["observation_id"] == 1


async def test_next_is_204_once_exhausted(client: httpx.AsyncClient, data_dir: Path) -> None:
    path = data_dir / "data.csv"
    pd.DataFrame({"input": ["1949-01", "1949-02"], "target": [112, 118]}).to_csv(path)
    source = {"kind": "csv", "uri": str(path), "column": "target", "ts_column": "input"}
    assert (await client.put("/api/v1/series/small/source", json=source)).status_code == 200
    got = [(await client.get(f"{STREAM}/small/next")).json() for _ in range(2)]
    assert got == [
        {"observation_id": 1, "input": "1949-01", "target": 112.0, "remaining": 1},
        {"observation_id": 2, "input": "1949-02", "target": 118.0, "remaining": 0},
    ]
    exhausted = await client.get(f"{STREAM}/small/next")
    assert exhausted.status_code == 204 and exhausted.content == b""
    status = (await client.get(f"{STREAM}/small/status")).json()
    assert status["completed"] is True and status["remaining"] == 0


async def test_next_shares_the_core_cursor(client: httpx.AsyncClient) -> None:
    """next and the core's pull advance one cursor: each observation is handed out once."""
    assert (await client.get(f"{STREAM}/shared/next")).json()["observation_id"] == 1
    pulled = (await client.post("/api/v1/series/shared/pull", json={"count": 1})).json()
    assert pulled["pulled"] == 1
    assert (await client.get(f"{STREAM}/shared/next")).json()["observation_id"] == 3


async def test_next_crypto_over_the_ticker_source(
    client: httpx.AsyncClient, ticker_port: int
) -> None:
    with FakeTicker([42000.5], script=["503", "ok"], port=ticker_port) as ticker:
        source = {
            "kind": "ticker",
            "pair": "BTC-USD",
            "base_url": ticker.url,
            "retries": 2,
            "backoff_seconds": 0.01,
        }
        assert (await client.put("/api/v1/series/crypto/source", json=source)).status_code == 200
        answer = await client.get(f"{STREAM}/crypto/next/xrp")
        assert answer.status_code == 200
        body = answer.json()
        assert body["series_id"] == "XRP" and body["target"] == 42000.5 and body["datetime"]
        assert ticker.requests == ["/v2/prices/XRP-USD/spot"] * 2  # a 503, then the answer
        # a ticker-sourced stream's plain `next` is its own pair's price
        assert (await client.get(f"{STREAM}/crypto/next")).json()["series_id"] == "BTC"


async def test_failing_ticker_is_a_502(client: httpx.AsyncClient, ticker_port: int) -> None:
    with FakeTicker([1.0], script=["503", "hang", "503"], port=ticker_port) as ticker:
        source = {
            "kind": "ticker",
            "base_url": ticker.url,
            "retries": 2,
            "backoff_seconds": 0.01,
            "timeout_seconds": 0.2,
        }
        await client.put("/api/v1/series/down/source", json=source)
        answer = await client.get(f"{STREAM}/down/next/BTC")
        assert answer.status_code == 502
        assert answer.json()["error"]["code"] == "upstream_unavailable"
        # the seed's FastAPI shape too, with our fixed text (never the upstream's)
        assert answer.json()["detail"] == answer.json()["error"]["message"]
        assert "503" not in answer.json()["detail"] and ticker.url not in answer.json()["detail"]


async def test_a_series_without_source_is_not_a_stream(client: httpx.AsyncClient) -> None:
    await client.put("/api/v1/series/plain", json={})
    answer = await client.get(f"{STREAM}/plain/next")
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "no_source"
    bad = await client.get(f"{STREAM}/plain/next/B!")
    assert bad.status_code == 400
    no_ticker = await client.get(f"{STREAM}/plain/next/BTC")  # never the internet implicitly
    assert no_ticker.status_code == 422
    assert no_ticker.json()["error"]["code"] == "no_ticker_source"
