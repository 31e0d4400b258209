"""Where a series' observations come from: a River data set, a CSV/Parquet file, or an HTTP
ticker in Coinbase's spot-price shape (`GET {base}/v2/prices/{pair}/spot`)."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
from datetime import UTC, datetime
from typing import Annotated, Literal

import httpx
from pydantic import Field

from shared.data_access import DataAccess
from shared.errors import unprocessable
from shared.outbound import OutboundPolicy, unavailable
from shared.schemas import Strict
from shared.training.data import DataError, read_frame

log = logging.getLogger("ml.sources")

Point = tuple[float, str | None]  # (value, ISO timestamp or None)

SERIES_DATASETS = ("AirlinePassengers", "SP500Stocks", "TrumpApproval", "WaterFlow")


class DatasetSource(Strict):
    kind: Literal["dataset"]
    name: str = Field(description=f"one of {', '.join(SERIES_DATASETS)}")
    symbol: str | None = Field(None, description="SP500Stocks: which stock's daily returns")


class FileSource(Strict):
    kind: Literal["csv"]
    uri: str = Field(max_length=2048, description="CSV or Parquet: path, file:// or gs://")
    column: str
    ts_column: str | None = None


class TickerSource(Strict):
    kind: Literal["ticker"]
    pair: str = Field("BTC-USD", pattern=r"^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$")
    base_url: str = Field("https://api.coinbase.com", pattern=r"^https?://[^\s/]+(:\d+)?(/.*)?$")
    timeout_seconds: float = Field(5.0, gt=0, le=30)
    retries: int = Field(3, ge=0, le=10)
    backoff_seconds: float = Field(0.2, ge=0, le=5)
    invert: bool = Field(False, description="observe 1/price (e.g. XRP per USD)")


SourceSpec = Annotated[DatasetSource | FileSource | TickerSource, Field(discriminator="kind")]


@functools.lru_cache(maxsize=32)
def dataset_points(name: str, symbol: str | None) -> tuple[Point, ...]:
    if name not in SERIES_DATASETS:
        raise unprocessable(
            f"unknown dataset '{name}'; known: {', '.join(SERIES_DATASETS)}", "unknown_dataset"
        )
    points: list[Point] = []
    from river import datasets  # here: river.datasets loads scikit-learn and scipy.stats

    for x, y in getattr(datasets, name)():
        if name == "SP500Stocks":
            if symbol not in x:
                raise unprocessable(
                    f"SP500Stocks needs symbol, one of {', '.join(sorted(x))}", "unknown_symbol"
                )
            value = x[symbol]
        else:
            value = y
        when = next((v for v in x.values() if isinstance(v, datetime)), None)
        points.append((float(value), when.isoformat() if when else None))
    return tuple(points)


@functools.lru_cache(maxsize=32)
def _file_points(uri: str, column: str, ts_column: str | None, stamp: float) -> tuple[Point, ...]:
    try:
        frame = read_frame(uri)
    except DataError as exc:
        raise unprocessable(str(exc), "unreadable_source") from None
    for wanted in (column, ts_column):
        if wanted is not None and wanted not in frame.columns:
            raise unprocessable(
                # this file's own columns (the tenant's), named by its base name only
                f"column {wanted!r} is not in {uri.rsplit('/', 1)[-1]}; "
                f"columns: {list(frame.columns)}",
                "unknown_column",
            )
    values = frame[column].tolist()
    stamps = frame[ts_column].astype(str).tolist() if ts_column else [None] * len(values)
    points = []
    for index, (value, ts) in enumerate(zip(values, stamps, strict=True)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise unprocessable(
                f"row {index} of {column!r} is not a number: {value!r}", "invalid_value"
            ) from None
        if math.isfinite(number):
            points.append((number, ts))
    return tuple(points)


def file_points(source: FileSource) -> tuple[Point, ...]:
    """The points of a file whose URI shared.data_access already resolved."""
    path = source.uri.removeprefix("file://")
    stamp = (
        os.path.getmtime(path)
        if not source.uri.startswith("gs://") and os.path.exists(path)
        else 0.0
    )
    return _file_points(source.uri, source.column, source.ts_column, stamp)


def points_of(
    source: DatasetSource | FileSource, tenant: str, data: DataAccess
) -> tuple[Point, ...]:
    """Every point of the source, a file only if it is in the tenant's own folder (403)."""
    if isinstance(source, DatasetSource):
        return dataset_points(source.name, source.symbol)
    return file_points(source.model_copy(update={"uri": data.check(tenant, source.uri)}))


async def fetch_ticker(
    source: TickerSource, client: httpx.AsyncClient, policy: OutboundPolicy
) -> Point:
    """One spot price, with timeouts and retries with exponential backoff on 5xx / network
    errors, from an allowed host only (shared/outbound.py). Keeps failing → 502 with a fixed
    message; nothing is observed."""
    origin, base_path = policy.base(source.base_url)  # 422 naming the setting
    url = origin.url(f"{base_path}/v2/prices/{source.pair}/spot")  # pair: a strict pattern
    for attempt in range(source.retries + 1):
        if attempt:
            await asyncio.sleep(source.backoff_seconds * 2 ** (attempt - 1))
        try:
            response = await client.get(url, timeout=source.timeout_seconds, follow_redirects=False)
        except httpx.HTTPError as exc:
            log.warning("ticker %s: %s", url, exc.__class__.__name__)
            continue
        if response.status_code >= 500 or response.status_code == 429:
            log.warning("ticker %s: HTTP %s", url, response.status_code)
            continue
        if response.status_code != 200:  # a redirect, a 404…: retrying will not change it
            log.warning("ticker %s: HTTP %s (not retried)", url, response.status_code)
            break
        try:
            amount = float(response.json()["data"]["amount"])
        except (ValueError, KeyError, TypeError):
            log.warning("ticker %s: the answer is not {data: {amount}}", url)
            break
        if not math.isfinite(amount) or amount <= 0:
            log.warning("ticker %s: a price of %r", url, amount)
            break
        value = 1.0 / amount if source.invert else amount
        return value, datetime.now(UTC).isoformat(timespec="seconds")
    raise unavailable("ticker", attempt + 1)
