"""Market data for the ML-engine surface: a symbol's daily returns, oldest first.

MARKET_DATA_BASE_URL unset: River's SP500Stocks (daily returns, in %, of ten S&P 500 stocks,
shipped with River: no network). Set: the upstream market-data service,

    GET {base}/v1/returns/{symbol}?limit=N
    → {"symbol": "AAPL", "data": [{"date": "2024-01-02", "return": 0.41}, ...]}  (oldest first)

with a timeout per attempt and retries with exponential backoff on timeouts, network errors,
429 and 5xx; 404 means an unknown symbol. An upstream that keeps failing → 502, never a guess.
Like every outbound call (shared/outbound.py) its host must be in TICKER_ALLOWED_HOSTS
(checked at start-up by compat/settings.py), redirects are not followed, and a failure says nothing of the upstream.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from concurrent.futures import Executor
from dataclasses import dataclass

import httpx

from compat.settings import CompatSettings, compat_settings
from shared.errors import ApiError
from shared.executors import run_in
from shared.outbound import AllowedHosts, outbound_policy, unavailable
from shared.runtime import Runtime
from shared.sources import dataset_points

log = logging.getLogger("ml.market_data")
RIVER_SYMBOLS = ("AAPL", "AMZN", "IBM", "INTC", "JNJ", "JPM", "KO", "MSFT", "WMT", "XOM")
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.-]{0,9}$")


@dataclass(frozen=True)
class Returns:
    symbol: str
    values: list[float]  # oldest first
    dates: list[str | None]


def check_symbol(raw: str | None) -> str:
    symbol = (raw or "").strip().upper()
    if not _SYMBOL.match(symbol):
        raise ApiError(400, "invalid_symbol", "symbol is a ticker like AAPL (1-10 characters)")
    return symbol


def unknown_symbol(symbol: str) -> ApiError:
    return ApiError(404, "symbol_not_found", f"no market data for symbol '{symbol}'")


class MarketData:
    def __init__(
        self,
        settings: CompatSettings,
        allowed: AllowedHosts,
        client: httpx.AsyncClient,
        executor: Executor | None = None,
    ) -> None:
        self.executor = executor  # IO_WORKERS: River's bundled data set (shared/executors.py)
        self.base_url = settings.market_data_base_url
        self.timeout = settings.market_data_timeout_seconds
        self.retries = settings.market_data_retries
        self.backoff = settings.market_data_backoff_seconds
        self.client = client
        self.policy = outbound_policy(allowed)  # TICKER_ALLOWED_HOSTS, the core's

    @property
    def source(self) -> str:
        return self.base_url or "river:SP500Stocks"

    async def returns(self, symbol: str, limit: int) -> Returns:
        """The symbol's newest `limit` daily returns, oldest first."""
        if self.base_url is None:
            if symbol not in RIVER_SYMBOLS:
                raise unknown_symbol(symbol)
            points = (await run_in(self.executor, dataset_points, "SP500Stocks", symbol))[-limit:]
            # SP500Stocks has no dates: a row's place is its only timestamp
            return Returns(symbol, [v for v, _ in points], [None] * len(points))
        payload = await self._get(f"/v1/returns/{symbol}", {"limit": str(limit)}, symbol)
        try:
            rows = payload["data"]
            values = [float(row["return"]) for row in rows]
            dates = [str(row["date"]) if row.get("date") is not None else None for row in rows]
        except (KeyError, TypeError, ValueError):
            log.warning("market data for %s is not {data: [{date, return}]}", symbol)
            raise unavailable("market data service", 1) from None
        if not all(math.isfinite(v) for v in values):
            log.warning("market data for %s holds a non-finite return", symbol)
            raise unavailable("market data service", 1)
        return Returns(symbol, values[-limit:], dates[-limit:])

    async def _get(self, path: str, params: dict[str, str], symbol: str) -> dict:
        assert self.base_url is not None
        try:  # MARKET_DATA_BASE_URL is checked at start-up; this guards a Settings built by hand
            origin, base_path = self.policy.base(self.base_url)
        except ApiError:
            log.error("MARKET_DATA_BASE_URL's host is not in TICKER_ALLOWED_HOSTS")
            raise unavailable("market data service", 0) from None
        url = origin.url(f"{base_path}{path}")  # path: /v1/returns/<checked symbol>
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = await self.client.get(
                    url, params=params, timeout=self.timeout, follow_redirects=False
                )
            except httpx.HTTPError as exc:
                log.warning("market data %s: %s", url, exc.__class__.__name__)
                continue
            if response.status_code == 404:
                raise unknown_symbol(symbol)
            if response.status_code == 429 or response.status_code >= 500:
                log.warning("market data %s: HTTP %s", url, response.status_code)
                continue
            if response.status_code != 200:  # a redirect, a 401…: retrying will not help
                log.warning("market data %s: HTTP %s (not retried)", url, response.status_code)
                break
            try:
                return response.json()
            except ValueError:
                log.warning("market data %s: not JSON", url)
                break
        raise unavailable("market data service", attempt + 1)


def market_of(runtime: Runtime) -> MarketData:
    """The market data as configured now (compat settings are read fresh on each call)."""
    return MarketData(
        compat_settings(), runtime.settings, runtime.ingest.http, runtime.executors.io
    )
