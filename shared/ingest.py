"""Series ingestion: observations become lag features `in_1..in_N` (most recent first), built
atomically in the state store, then every subscribed model predicts and learns (prequential).
A failing model fails only its own entry.

What each subscriber gets of an observation, by what it is (README: series):

- a forecaster: the value as its y, every observation;
- a regressor: the lags as x and the value as y, once the window is full;
- a univariate detector (gaussian_scorer, standard_absolute_deviation, a filter around one):
  the value as the y it scores, every observation (River's `score_one(None, y)`);
- a multivariate detector or a clusterer: the window with the value in it, `{"value": v,
  "in_1": …, "in_N": …}`, as x, once the window is full (the way River feeds a series to
  HalfSpaceTrees: features of a sliding window, scaled in the pipeline).

A detector or clusterer scores (or assigns) with the state before the observation, then
learns it, as every subscriber does; its entry answers its score and is_anomaly, or cluster.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import TypeAdapter

from shared import limits
from shared.data_access import DataAccess
from shared.errors import ApiError, not_found, unprocessable
from shared.events import EventBus
from shared.executors import run_in
from shared.labels import Label
from shared.lifecycle import Lifecycle
from shared.numbers import check_number
from shared.outbound import OutboundPolicy
from shared.serving import Serving
from shared.sources import (
    DatasetSource,
    FileSource,
    Point,
    SourceSpec,
    TickerSource,
    fetch_ticker,
    points_of,
)
from shared.state.base import Idempotency
from shared.state.series import Observed, SeriesState

MAX_LAGS = 512
SUBSCRIBERS = ("regression", "forecasting", "anomaly", "clustering")
UNIVARIATE = "univariate"  # a detector that scores the value itself (`_subscribers`)
VALUE = "value"  # the observation's own feature beside its lags, for detectors and clusterers
SOURCE_ADAPTER: TypeAdapter[Any] = TypeAdapter(SourceSpec)


def prediction_id_for(series: str, count: int) -> str:
    """The prediction id that the series' `count`-th observation labels (README: delayed
    labels through the ingest fan-out)."""
    return f"{series}:{count}"


def lag_features(lags: list[float]) -> dict[str, float]:
    return {f"in_{i}": value for i, value in enumerate(lags, start=1)}


@dataclass
class Ingest:
    series: SeriesState
    serving: Serving  # the data plane: the fan-out learns through it (the shadow sees it)
    lifecycle: Lifecycle
    events: EventBus
    default_lags: int
    http: httpx.AsyncClient
    data: DataAccess  # a csv source reads only the tenant's own folder
    outbound: OutboundPolicy  # a ticker source calls only TICKER_ALLOWED_HOSTS
    io: Executor | None = None  # IO_WORKERS: reading sources' files (shared/executors.py)

    # ----- configuration -----------------------------------------------------------------

    async def config(self, tenant: str, name: str) -> dict[str, Any]:
        config = await self.series.get_config(tenant, name)
        if config is None:
            raise not_found("series", name)
        return config

    async def ensure(self, tenant: str, name: str, n_lags: int | None = None) -> dict[str, Any]:
        """Create the series if needed (PUT semantics); n_lags changes its window size."""
        config = await self.series.get_config(tenant, name) or {
            "name": name,
            "n_lags": self.default_lags,
            "models": [],
            "source": None,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if n_lags is not None:
            if not 1 <= n_lags <= MAX_LAGS:
                raise unprocessable(f"n_lags must be between 1 and {MAX_LAGS}", "invalid_lags")
            config["n_lags"] = n_lags
        await self.series.put_config(tenant, name, config)
        return config

    async def subscribe(
        self, tenant: str, name: str, models: list[str], n_lags: int | None
    ) -> dict[str, Any]:
        for model in models:
            record = await self.lifecycle.record(tenant, model)  # 404 for an unknown model
            if record["task"] not in SUBSCRIBERS:
                raise unprocessable(
                    f"'{model}' is a {record['task']} model; a series feeds regressors "
                    "(lags), forecasters (values), anomaly detectors and clusterers",
                    "invalid_subscriber",
                )
        config = await self.ensure(tenant, name, n_lags)
        config["models"] = list(dict.fromkeys(models))
        await self.series.put_config(tenant, name, config)
        return await self.describe(tenant, name)

    async def set_source(
        self, tenant: str, name: str, source: DatasetSource | FileSource | TickerSource
    ) -> dict[str, Any]:
        # Everything is checked before the series is touched: a refused source changes nothing.
        if isinstance(source, TickerSource):
            self.outbound.base(source.base_url)  # a host not allowed → 422 naming the setting
        else:
            if isinstance(source, FileSource):  # 403 before any read; stored resolved
                uri = await self.data.resolve(tenant, source.uri)
                source = source.model_copy(update={"uri": uri})
            await self.points(tenant, source)  # unknown dataset / column → 422 now
        config = await self.ensure(tenant, name)
        config["source"] = source.model_dump()
        await self.series.put_config(tenant, name, config)
        await self.series.reset(tenant, name)
        return await self.source_status(tenant, name)

    async def source_status(self, tenant: str, name: str) -> dict[str, Any]:
        config = await self.config(tenant, name)
        window = await self.series.window(tenant, name)
        status: dict[str, Any] = {
            "series": name,
            "source": config["source"],
            "cursor": window.cursor,
        }
        source = self._source(config)
        if isinstance(source, DatasetSource | FileSource):
            total = len(await self.points(tenant, source))
            status.update(
                total=total,
                remaining=max(0, total - window.cursor),
                exhausted=window.cursor >= total,
            )
        return status

    async def describe(self, tenant: str, name: str) -> dict[str, Any]:
        config = await self.config(tenant, name)
        window = await self.series.window(tenant, name)
        return {
            "series": name,
            "n_lags": config["n_lags"],
            "window": window.values,
            "features": lag_features(window.values[: config["n_lags"]]),
            "count": window.count,
            "last_ts": window.last_ts,
            "models": config["models"],
            "source": config["source"],
        }

    async def list(self, tenant: str) -> list[str]:
        return await self.series.list_series(tenant)

    async def reset(self, tenant: str, name: str) -> dict[str, Any]:
        await self.config(tenant, name)
        await self.series.reset(tenant, name)
        return await self.describe(tenant, name)

    # ----- observations ------------------------------------------------------------------

    async def observe(
        self, tenant: str, name: str, points: list[Point], idempotency: Idempotency | None
    ) -> dict[str, Any]:
        config = await self.config(tenant, name)
        bounds = limits.current()
        limits.check_fanout(len(points), len(config["models"]), bounds)
        for index, (value, _) in enumerate(points):
            where = "value" if len(points) == 1 else f"observations[{index}].value"
            check_number(value, where, bounds.max_abs_value, "invalid_value")
        tasks = await self._subscribers(tenant, config["models"])
        result = await self.series.observe(tenant, name, points, config["n_lags"], idempotency)
        entries = []
        for index, ((value, ts), observed) in enumerate(zip(points, result.observed, strict=True)):
            key = (
                Idempotency(f"{idempotency.key}#{index}", idempotency.body_hash)
                if idempotency
                else None
            )
            entries.append(
                await self._fan_out(tenant, name, config, tasks, value, ts, observed, key)
            )
        await self.events.publish(
            tenant,
            "series.observed",
            {
                "series": name,
                "observations": len(points),
                "count": result.observed[-1].count if result.observed else 0,
            },
            subject=name,
            source="/online-ml/ingest",
        )
        return {"series": name, "replayed": result.replay, "observations": entries}

    async def pull(self, tenant: str, name: str, count: int) -> dict[str, Any]:
        config = await self.config(tenant, name)
        source = self._source(config)
        if source is None:
            raise unprocessable(f"series '{name}' has no source; PUT .../source first", "no_source")
        limits.check_fanout(count, len(config["models"]))  # before any value is fetched
        if isinstance(source, TickerSource):
            points = [await self.ticker(source) for _ in range(count)]
        else:
            every = await self.points(tenant, source)
            start, stop = await self.series.claim(tenant, name, count, len(every))
            points = list(every[start:stop])
        if not points:
            return {"series": name, "pulled": 0, "exhausted": True, "observations": []}
        observed = await self.observe(tenant, name, points, None)
        return {
            "series": name,
            "pulled": len(points),
            "exhausted": False,
            "observations": observed["observations"],
        }

    async def points(self, tenant: str, source: DatasetSource | FileSource) -> tuple[Point, ...]:
        """Every point of a data set or file source (a file in the tenant's folder only)."""
        return await run_in(self.io, points_of, source, tenant, self.data)

    async def ticker(self, source: TickerSource) -> Point:
        """One price from an allowed ticker host."""
        return await fetch_ticker(source, self.http, self.outbound)

    async def lag_forecast(
        self, tenant: str, model: str, name: str, horizon: int
    ) -> dict[str, Any]:
        """Recursive multi-step forecast of a lag regressor: each prediction becomes in_1."""
        config = await self.config(tenant, name)
        task = (await self.lifecycle.record(tenant, model))["task"]
        if task != "regression":
            raise unprocessable(
                f"'{model}' is a {task} model; a lag forecast needs a regressor", "not_a_regressor"
            )
        window = (await self.series.window(tenant, name)).values[: config["n_lags"]]
        if len(window) < config["n_lags"]:
            raise unprocessable(
                f"series '{name}' has {len(window)} of {config['n_lags']} lags; "
                "observe more values first",
                "window_not_full",
            )
        return await self.serving.recursive_forecast(tenant, model, window, horizon)

    async def _subscribers(self, tenant: str, models: list[str]) -> dict[str, str | ApiError]:
        """What each subscriber is (its task, or UNIVARIATE), read once per request (a deleted
        model fails its entry)."""
        tasks: dict[str, str | ApiError] = {}
        for model in models:
            try:
                record = await self.lifecycle.record(tenant, model)
            except ApiError as exc:
                tasks[model] = exc
                continue
            scores_value = record.get("blueprint", {}).get("scores_target", False)
            tasks[model] = UNIVARIATE if scores_value else record["task"]
        return tasks

    async def _fan_out(
        self,
        tenant: str,
        name: str,
        config: dict[str, Any],
        tasks: dict[str, str | ApiError],
        value: float,
        ts: str | None,
        observed: Observed,
        key: Idempotency | None,
    ) -> dict[str, Any]:
        full = len(observed.lags) >= config["n_lags"]
        features = lag_features(observed.lags)

        async def one(model: str) -> tuple[str, dict[str, Any] | None]:
            try:
                task = tasks[model]
                if isinstance(task, ApiError):
                    raise task
                if task in ("forecasting", UNIVARIATE):
                    x = None  # the value alone, as y
                elif not full:
                    return model, None  # window not full yet: lag models wait
                elif task == "regression":
                    x = features
                else:  # a multivariate detector or a clusterer: the window, value included
                    x = {VALUE: value, **features}
                y = None if task in ("anomaly", "clustering") else value
                model_key = Idempotency(f"{key.key}:{model}", key.body_hash) if key else None
                if task == "regression":
                    # A prediction made for this observation ("<series>:<count>", the id a
                    # client predicts the next value with) is labelled by it: learned with the
                    # features kept then, scored as then predicted (delayed labels).
                    kept_id = prediction_id_for(name, observed.count)
                    label = [Label(kept_id, value)]
                    labelled = await self.serving.label(tenant, model, label, model_key)
                    result = labelled["results"][0]
                    if result.get("error", {}).get("code") != "prediction_not_found":
                        return model, result
                answer = await self.serving.predict_learn(tenant, model, x, y, model_key)
                return model, answer
            except ApiError as exc:
                return model, {"error": {"code": exc.code, "message": exc.message}}

        answers = await asyncio.gather(*(one(m) for m in config["models"]))
        return {
            "value": value,
            "ts": ts,
            "count": observed.count,
            "features": features,
            "target": value,
            "available_lags": len(observed.lags),
            "predictions": {model: answer for model, answer in answers if answer is not None},
        }

    @staticmethod
    def _source(config: dict[str, Any]) -> DatasetSource | FileSource | TickerSource | None:
        return SOURCE_ADAPTER.validate_python(config["source"]) if config.get("source") else None
