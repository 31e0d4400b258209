"""The seeds' model services (000, 001): one model per service there, one model named in the
path here. Each verb is one core call:

train → learn · predict → predict · predict_learn → the prequential step (lifecycle, so a
challenger shadow is scored too) · predict_many → the recursive lag forecast · model_metrics
and metrics → the monitoring ledger (shared/monitoring) of the model's current version.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import river
from starlette.requests import Request
from starlette.responses import Response

from compat.edge import prediction_of, require_point_task
from compat.online.metrics import prometheus_text, seed_metrics
from compat.online.presets import PRESETS, create_preset
from compat.online.schemas import (
    OnlineFeaturesIn,
    OnlineForecastOut,
    OnlineModelInfo,
    OnlinePredictionOut,
    OnlinePredictManyIn,
    OnlineSampleIn,
    OnlineTrainedOut,
)
from shared.edge.body import parse_body
from shared.edge.codec import JSON
from shared.edge.idempotency import idempotency_of
from shared.errors import ApiError, unprocessable
from shared.openapi import api
from shared.runtime import current_runtime
from shared.schemas import Sample
from shared.tenancy import path_name, tenant_of

T = TypeVar("T")
_LAG = re.compile(r"^in_([1-9][0-9]*)$")


async def _call(tenant: str, name: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run a core call; a seed model name not created yet is created from its preset first."""
    try:
        return await call()
    except ApiError as exc:
        if exc.code == "model_not_found" and await create_preset(tenant, name):
            return await call()
        raise


async def _point(tenant: str, name: str, call: Callable[[], Awaitable[T]]) -> T:
    """`_call` for a seed verb that carries a target or a point prediction: a detector or a
    clusterer is refused (422) before anything is learned or kept."""

    async def checked() -> T:
        require_point_task(await current_runtime().serving.task(tenant, name))
        return await call()

    return await _call(tenant, name, checked)


def _model(request: Request) -> tuple[str, str]:
    return tenant_of(request), path_name(request)


def window_of(features: dict[str, Any]) -> list[float]:
    """in_1..in_N (most recent first) as the window a recursive forecast starts from."""
    lags: dict[int, Any] = {}
    for key, value in features.items():
        match = _LAG.match(key)
        if match is None:
            raise unprocessable(f"predict_many reads lags in_1..in_N; '{key}' is not one")
        lags[int(match.group(1))] = value
    if sorted(lags) != list(range(1, len(lags) + 1)):
        raise unprocessable("predict_many needs contiguous lags in_1..in_N", "invalid_features")
    window = [lags[i] for i in range(1, len(lags) + 1)]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in window):
        raise unprocessable("lags must be numbers", "invalid_features")
    return [float(v) for v in window]


@api("compat", body=OnlineSampleIn, response=OnlineTrainedOut)
async def train(request: Request) -> Response:
    """Model service `POST /train` `{features, target}`: learn one sample."""
    tenant, name = _model(request)
    body = await parse_body(request, OnlineSampleIn)
    models = current_runtime().serving
    samples = [Sample(x=body.features, y=body.target)]
    key = idempotency_of(request)
    await _point(tenant, name, lambda: models.learn(tenant, name, samples, key))
    return JSON({"message": "Model trained successfully"})


@api("compat", body=OnlineFeaturesIn, response=OnlineForecastOut)
async def predict(request: Request) -> Response:
    """Model service `POST /predict` `{features}`: a single-step forecast (never learns)."""
    tenant, name = _model(request)
    body = await parse_body(request, OnlineFeaturesIn)
    models = current_runtime().serving
    answer = await _point(tenant, name, lambda: models.predict(tenant, name, body.features))
    # the seed's shape, plus where to send the label later (POST …/labels)
    point = {"value": prediction_of(answer), "prediction_id": answer["prediction_id"]}
    return JSON({"forecast": [point]})


@api("compat", body=OnlineSampleIn, response=OnlinePredictionOut)
async def predict_learn(request: Request) -> Response:
    """Model service `POST /predict_learn` `{features, target}`: predict with the state before
    this sample, then learn it (and score it: model_metrics)."""
    tenant, name = _model(request)
    body = await parse_body(request, OnlineSampleIn)
    serving, key = current_runtime().serving, idempotency_of(request)
    answer = await _point(
        tenant,
        name,
        lambda: serving.predict_learn(tenant, name, body.features, body.target, key),
    )
    return JSON({"prediction": prediction_of(answer)})


@api("compat", body=OnlinePredictManyIn, response=OnlineForecastOut)
async def predict_many(request: Request) -> Response:
    """Model service `POST /predict_many` `{features}`: a 5-step recursive forecast, each
    prediction shifted in as in_1 (the model does not learn)."""
    tenant, name = _model(request)
    body = await parse_body(request, OnlinePredictManyIn)
    window = window_of(body.features)
    models = current_runtime().serving
    answer = await _call(
        tenant, name, lambda: models.recursive_forecast(tenant, name, window, body.horizon)
    )
    return JSON({"forecast": [{"value": value} for value in answer["forecast"]]})


@api("compat")
async def model_metrics(request: Request) -> Response:
    """Model service `GET /model_metrics`: count, MAE/MSE/RMSE/MAPE cumulative and rolling
    over 5/10/20, last prediction/actual/error (under "default"), and the model's info."""
    tenant, name = _model(request)
    runtime = current_runtime()
    await _call(tenant, name, lambda: runtime.lifecycle.record(tenant, name))
    return JSON(await seed_metrics(runtime, tenant, name))


@api("compat")
async def metrics(request: Request) -> Response:
    """Model service `GET /metrics`: the same numbers as Prometheus gauges."""
    tenant, name = _model(request)
    runtime = current_runtime()
    await _call(tenant, name, lambda: runtime.lifecycle.record(tenant, name))
    text = prometheus_text(name, await seed_metrics(runtime, tenant, name))
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


@api("compat", response=OnlineModelInfo)
async def info(request: Request) -> Response:
    """Model service `GET /info`: the model, the library version and the seed's preset names.

    The seed documents `model_version` as the River version ("0.22.0"), a string; the
    registry version of the live model sits beside it as `registry_version`."""
    tenant, name = _model(request)
    lifecycle = current_runtime().lifecycle
    record = await _call(tenant, name, lambda: lifecycle.record(tenant, name))
    return JSON(
        {
            "model_name": name,
            "model_version": river.__version__,
            "registry_version": record.get("version", 0),
            "forecast_horizon": 1,
            "feature_agnostic": True,
            "regression_model": record["task"] == "regression",
            "available_models": sorted(PRESETS),
        }
    )
