"""batch: many predictions in one call; one result or one error per item, in order.

Entry point: `functions-framework --asgi --target app --source functions/batch/main.py`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compat.engine import routes as engine
from compat.ml_service import handlers as ml_service
from shared.app import build_router
from shared.edge.body import parse_body, parse_rows
from shared.edge.bridge import forward
from shared.edge.codec import JSON
from shared.errors import ApiError, unprocessable
from shared.openapi import api
from shared.runtime import current_runtime
from shared.schemas import BatchOut, BatchRequest, MultiBatchRequest
from shared.tenancy import path_name, tenant_of


def _check_size(count: int) -> None:
    limit = current_runtime().settings.batch_max_items
    if count > limit:
        raise unprocessable(f"at most BATCH_MAX_ITEMS={limit} items per call", "batch_too_large")


@api("batch", body=BatchRequest, response=BatchOut)
async def predict_batch(request: Request) -> Response:
    """Predict many instances with one model's current online state."""
    tenant, name = tenant_of(request), path_name(request)
    instances = await parse_rows(request, BatchRequest, "instances")  # orjson, shape in bulk
    _check_size(len(instances))
    return JSON(await current_runtime().serving.predict_batch(tenant, name, instances))


@api("batch", body=MultiBatchRequest, response=BatchOut)
async def predict_batch_multi(request: Request) -> Response:
    """Predict items across several models; a missing model fails only its own items."""
    tenant = tenant_of(request)
    body = await parse_body(request, MultiBatchRequest)
    _check_size(len(body.items))
    by_model: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(body.items):
        by_model[item.model].append(index)
    results: list[dict[str, Any]] = [{} for _ in body.items]
    models = current_runtime().serving
    for name, indexes in by_model.items():
        try:
            answer = await models.predict_batch(tenant, name, [body.items[i].x for i in indexes])
            for index, result in zip(indexes, answer["results"], strict=True):
                results[index] = {"model": name, **result, "model_version": answer["model_version"]}
        except ApiError as exc:
            for index in indexes:
                results[index] = {
                    "model": name,
                    "error": {"code": exc.code, "message": exc.message},
                }
    return JSON({"results": results})


ROUTES = [
    Route("/api/v1/models/{model}/predict/batch", predict_batch, methods=["POST"]),
    Route("/api/v1/predict/batch", predict_batch_multi, methods=["POST"]),
    # compat, ML engine (seeds 002, 004): each `engine.mount(path, ...)` serves
    # /api/v1/engine<path>, the bare <path> and /api/v1<path> unless the core owns it
    *engine.mount("/predict/batch", engine.predict_batch, "POST"),
    # compat, ML service (seed 003)
    Route(
        "/api/v1/ml/models/{model_id}/predict/batch",
        ml_service.predict_batch,
        methods=["POST"],
        name="ml_service_predict_batch",
    ),
]
router = build_router("batch", ROUTES)


@functions_framework.aio.http
async def app(request: Request) -> Response:
    return forward(router, request)
