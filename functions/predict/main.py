"""predict: predict, prequential predict_learn, multi-step forecast, and the Open Inference
Protocol v2 (KServe / Triton REST) under /v2.

Entry point: `functions-framework --asgi --target app --source functions/predict/main.py`.
"""

from __future__ import annotations

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compat.engine import routes as engine
from compat.ml_service import handlers as ml_service
from compat.online import models as online_models
from shared import oip_api as oip
from shared.app import build_router
from shared.edge.body import parse_body
from shared.edge.bridge import forward
from shared.edge.codec import JSON
from shared.edge.idempotency import idempotency_of
from shared.monitoring.failures import counts_failures
from shared.openapi import api
from shared.runtime import current_runtime
from shared.schemas import ForecastOut, ForecastRequest, PredictionOut, PredictRequest, Sample
from shared.tenancy import path_name, tenant_of


@api("predict", body=PredictRequest, response=PredictionOut)
@counts_failures("predict")
async def predict(request: Request) -> Response:
    """Predict with the current online state (never learns).

    `?version=N` or `?alias=champion` predicts with that registered version as frozen. The
    answer's `prediction_id` (the `id` sent, or a new one) labels it later: POST …/labels."""
    tenant, name = tenant_of(request), path_name(request)
    body = await parse_body(request, PredictRequest)
    version = alias = None
    if request.scope["query_string"]:  # most predicts have none: no parse
        query = request.query_params
        version, alias = query.get("version"), query.get("alias")
    serving = current_runtime().serving
    answer = await serving.predict(
        tenant, name, body.x, version=version, alias=alias, prediction_id=body.id
    )
    return JSON(answer)


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
    # Open Inference Protocol v2 (shared/oip_api.py); /v2/models/… is tenant-scoped
    Route("/v2/health/live", oip.oip_live, methods=["GET"]),
    Route("/v2/health/ready", oip.oip_ready, methods=["GET"]),
    Route("/v2", oip.oip_server_metadata, methods=["GET"]),
    Route("/v2/models/{model}", oip.oip_model_metadata, methods=["GET"]),
    Route(
        "/v2/models/{model}/versions/{version}",
        oip.oip_model_metadata,
        methods=["GET"],
        name="oip_version_metadata",
    ),
    Route("/v2/models/{model}/ready", oip.oip_model_ready, methods=["GET"]),
    Route(
        "/v2/models/{model}/versions/{version}/ready",
        oip.oip_model_ready,
        methods=["GET"],
        name="oip_version_ready",
    ),
    Route("/v2/models/{model}/infer", oip.oip_infer, methods=["POST"]),
    Route(
        "/v2/models/{model}/versions/{version}/infer",
        oip.oip_infer,
        methods=["POST"],
        name="oip_version_infer",
    ),
    # compat, online-learning platform (seeds 000, 001)
    Route(
        "/api/v1/online/models/{model}/predict",
        online_models.predict,
        methods=["POST"],
        name="online_model_predict",
    ),
    Route(
        "/api/v1/online/models/{model}/predict_learn",
        online_models.predict_learn,
        methods=["POST"],
        name="online_model_predict_learn",
    ),
    Route(
        "/api/v1/online/models/{model}/predict_many",
        online_models.predict_many,
        methods=["POST"],
        name="online_model_predict_many",
    ),
    Route(
        "/api/v1/online/models/{model}/info",
        online_models.info,
        methods=["GET"],
        name="online_model_info",
    ),
    # compat, ML engine (seeds 002, 004): each `engine.mount(path, ...)` serves
    # /api/v1/engine<path>, the bare <path> and /api/v1<path> unless the core owns it
    *engine.mount("/features", engine.features, "GET"),
    *engine.mount("/predict", engine.predict, "GET"),
    # compat, ML service (seed 003)
    Route(
        "/api/v1/ml/models/{model_id}/predict",
        ml_service.predict,
        methods=["POST"],
        name="ml_service_predict",
    ),
]
router = build_router("predict", ROUTES)


@functions_framework.aio.http
async def app(request: Request) -> Response:
    return forward(router, request)
