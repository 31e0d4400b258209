"""predict: predict, prequential predict_learn, and multi-step forecast.

Entry point: `functions-framework --asgi --target app --source functions/predict/main.py`.
"""

from __future__ import annotations

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.app import build_router
from shared.compat.routes import routes_for
from shared.http import JSON, forward, idempotency_of, parse_body
from shared.monitoring.failures import counts_failures
from shared.openapi import api
from shared.runtime import current_runtime
from shared.schemas import ForecastOut, ForecastRequest, PredictionOut, PredictRequest, Sample
from shared.tenancy import path_name, tenant_of


@api("predict", body=PredictRequest, response=PredictionOut)
@counts_failures("predict")
async def predict(request: Request) -> Response:
    """Predict with the current online state (never learns).

    `?version=N` or `?alias=champion` predicts with that registered version as frozen."""
    tenant, name = tenant_of(request), path_name(request)
    body = await parse_body(request, PredictRequest)
    version, alias = request.query_params.get("version"), request.query_params.get("alias")
    serving = current_runtime().serving
    return JSON(await serving.predict(tenant, name, body.x, version=version, alias=alias))


@api("predict", body=Sample, response=PredictionOut)
@counts_failures("predict_learn")
async def predict_learn(request: Request) -> Response:
    """Prequential: predict with the state before this sample, then learn it."""
    tenant, name = tenant_of(request), path_name(request)
    body = await parse_body(request, Sample)
    result = await current_runtime().serving.predict_learn(
        tenant, name, body.x, body.y, idempotency_of(request)
    )
    return JSON(result)


@api("predict", body=ForecastRequest, response=ForecastOut)
@counts_failures("forecast")
async def forecast(request: Request) -> Response:
    """Multi-step forecast: a time-series model's own forecast, or with `series` a lag
    regressor's recursive forecast (each prediction fed back as in_1)."""
    tenant, name = tenant_of(request), path_name(request)
    body = await parse_body(request, ForecastRequest)
    runtime = current_runtime()
    if body.series is not None:
        return JSON(await runtime.ingest.lag_forecast(tenant, name, body.series, body.horizon))
    return JSON(await runtime.serving.forecast(tenant, name, body.horizon, body.xs))


ROUTES = [
    Route("/api/v1/models/{model}/predict", predict, methods=["POST"]),
    Route("/api/v1/models/{model}/predict_learn", predict_learn, methods=["POST"]),
    Route("/api/v1/models/{model}/forecast", forecast, methods=["POST"]),
    *routes_for("predict"),  # seed-compatible APIs, data sets (shared/compat)
]
router = build_router("predict", ROUTES)


@functions_framework.aio.http
async def app(request: Request) -> Response:
    return forward(router, request)
