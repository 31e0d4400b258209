"""The upstream market-data client: retries, timeouts, unknown symbols, against a local server;
and the ML engine over it (features, training, drift when the market moves)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import httpx
import pytest

from compat.engine.market_data import MarketData
from compat.settings import CompatSettings
from shared.errors import ApiError
from shared.settings import Settings
from tests.compat.conftest import ADMIN, eventually
from tests.compat.fake_market import FakeMarket
from tests.fake_ticker import allow_fake_hosts, allowed_entry

CALM = [random.Random(7).gauss(0.0, 1.0) for _ in range(400)]


def client_for(url: str, retries: int = 2) -> MarketData:
    market = CompatSettings(
        market_data_base_url=url,
        market_data_retries=retries,
        market_data_backoff_seconds=0.01,
        market_data_timeout_seconds=0.2,
    )
    allowed = Settings(ticker_allowed_hosts=allowed_entry(int(url.rsplit(":", 1)[1])))
    return MarketData(market, allowed, httpx.AsyncClient())


async def test_retries_then_answers() -> None:
    with FakeMarket({"ACME": CALM}, script=["503", "429", "ok"]) as market:
        returns = await client_for(market.url).returns("ACME", 5)
    assert returns.values == CALM[-5:]
    assert returns.dates == [f"day-{i:05d}" for i in range(395, 400)]
    assert market.requests == ["/v1/returns/ACME?limit=5"] * 3


async def test_a_hanging_upstream_times_out_and_is_retried() -> None:
    with FakeMarket({"ACME": CALM}, script=["hang", "ok"]) as market:
        # the upstream hangs for a minute: only the client's 0.2 s timeout gets us the
        # answer from the retry (wait_for is a guard against a test that never ends)
        market.hang_seconds = 60.0
        returns = await asyncio.wait_for(client_for(market.url).returns("ACME", 3), 30)
        assert market.requests == ["/v1/returns/ACME?limit=3"] * 2
    assert returns.values == CALM[-3:]


async def test_an_upstream_that_keeps_failing_is_a_502() -> None:
    script = ["503", "hang", "503"]
    with FakeMarket({"ACME": CALM}, script=script) as market, pytest.raises(ApiError) as failure:
        await client_for(market.url).returns("ACME", 3)
    assert failure.value.status == 502 and failure.value.code == "upstream_unavailable"
    assert "3 times" in failure.value.message and len(market.requests) == 3


async def test_unknown_symbol_is_a_404_without_retries() -> None:
    with FakeMarket({"ACME": CALM}) as market, pytest.raises(ApiError) as failure:
        await client_for(market.url).returns("NOPE", 3)
    assert failure.value.status == 404 and len(market.requests) == 1


@pytest.fixture
def market(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMarket]:
    """A market-data server the gateway uses (list it before `client` in a test)."""
    with FakeMarket({"ACME": list(CALM), "BETA": list(CALM[::-1])}) as server:
        monkeypatch.setenv("MARKET_DATA_BASE_URL", server.url)
        allow_fake_hosts(monkeypatch, server.port)  # an outbound host must be allowed
        monkeypatch.setenv("MARKET_DATA_BACKOFF_SECONDS", "0.01")
        monkeypatch.setenv("TRAIN_SYMBOLS", "ACME,BETA")
        yield server


async def test_the_engine_over_the_upstream(market: FakeMarket, client: httpx.AsyncClient) -> None:
    features = (await client.get("/features", params={"symbol": "ACME"})).json()
    assert features["features"]["in_1"] == CALM[-1] and features["as_of"] == "day-00399"
    assert features["source"] == market.url
    started = await client.post("/admin/train", headers=ADMIN)
    assert started.status_code == 202
    done = await eventually(
        lambda: client.get("/admin/train/status", headers=ADMIN),
        lambda b: b["status"] != "running",
    )
    assert done["status"] == "succeeded" and done["params"]["market_data"] == market.url
    calm = (await client.get("/monitoring/drift", params={"symbol": "ACME"})).json()
    assert calm["drift_detected"] is False
    # the market moves: the newest returns are far from what the model was trained on
    market.returns["ACME"] = CALM + [5.0 + r for r in CALM[:60]]
    moved = (await client.get("/monitoring/drift", params={"symbol": "ACME"})).json()
    [report] = moved["symbols"]
    assert moved["drift_detected"] is True and report["p_value"] < 0.05
    assert report["recent_mean"] > report["reference_mean"] + 4
    fresh = (await client.get("/monitoring/freshness", params={"symbol": "ACME"})).json()
    assert fresh["symbols"][0]["data_as_of"] == "day-00459"
    market.script = ["503"] * 4
    down = await client.get("/predict", params={"symbol": "ACME"})
    assert down.status_code == 502 and down.json()["error"]["code"] == "upstream_unavailable"
