"""train: create, list, inspect and delete online models; learn samples; the catalog.

Entry point: `functions-framework --asgi --target app --source functions/train/main.py`.
"""

from __future__ import annotations

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.catalog import describe
from shared.http import JSON, build_router, forward, idempotency_of, parse_body
from shared.online import public_record
from shared.runtime import current_runtime
from shared.schemas import LearnRequest, ModelSpec
from shared.tenancy import path_name, tenant_of


async def catalog(request: Request) -> Response:
    return JSON({"kinds": describe()})


async def create_model(request: Request) -> Response:
    tenant = tenant_of(request)
    spec = await parse_body(request, ModelSpec)
    record = await current_runtime().models.create(tenant, spec)
    return JSON(public_record(record, seq=0), status_code=201)


async def list_models(request: Request) -> Response:
    tenant = tenant_of(request)
    records = await current_runtime().models.records(tenant)
    return JSON({"models": [public_record(r) for r in records]})


async def get_model(request: Request) -> Response:
    tenant, name = tenant_of(request), path_name(request)
    models = current_runtime().models
    record = await models.record(tenant, name)
    return JSON(public_record(record, seq=await models.seq_of(tenant, name)))


async def delete_model(request: Request) -> Response:
    tenant, name = tenant_of(request), path_name(request)
    await current_runtime().models.delete(tenant, name)
    return Response(status_code=204)


async def learn(request: Request) -> Response:
    tenant, name = tenant_of(request), path_name(request)
    body = await parse_body(request, LearnRequest)
    result = await current_runtime().models.learn(
        tenant, name, body.as_samples(), idempotency_of(request)
    )
    return JSON(result)


ROUTES = [
    Route("/api/v1/catalog", catalog, methods=["GET"]),
    Route("/api/v1/models", create_model, methods=["POST"]),
    Route("/api/v1/models", list_models, methods=["GET"]),
    Route("/api/v1/models/{model}", get_model, methods=["GET"]),
    Route("/api/v1/models/{model}", delete_model, methods=["DELETE"]),
    Route("/api/v1/models/{model}/learn", learn, methods=["POST"]),
]
router = build_router("train", ROUTES)


@functions_framework.aio.http
async def app(request: Request) -> Response:
    return forward(router, request)
