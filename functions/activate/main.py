"""activate: versions, activation and rollback, aliases, cache reload, tenant API keys.

Entry point: `functions-framework --asgi --target app --source functions/activate/main.py`.
"""

from __future__ import annotations

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compat.engine import routes as engine
from compat.ml_service import handlers as ml_service
from shared import tenant_keys_api
from shared.app import build_router
from shared.edge.body import optional_body, parse_body
from shared.edge.bridge import forward
from shared.edge.codec import JSON
from shared.lifecycle import parse_version
from shared.openapi import api
from shared.runtime import current_runtime
from shared.schemas import (
    Activation,
    AliasesOut,
    AliasRequest,
    ReloadOut,
    VersionList,
    VersionRequest,
)
from shared.security import require_admin
from shared.tenancy import check_name, path_name, tenant_of


def _version(request: Request) -> int:
    return parse_version(request.path_params["version"])


@api("activate", response=VersionList)
async def list_versions(request: Request) -> Response:
    """List a model's immutable versions, the active one and the aliases."""
    tenant, name = tenant_of(request), path_name(request)
    return JSON(await current_runtime().lifecycle.versions(tenant, name))


@api("activate", body=VersionRequest, status=201)
async def create_version(request: Request) -> Response:
    """Snapshot the live online state as a new immutable version (records seq and parent)."""
    tenant, name = tenant_of(request), path_name(request)
    body = await optional_body(request, VersionRequest)
    meta = await current_runtime().lifecycle.create_version(tenant, name, body.description)
    return JSON(meta, status_code=201)


@api("activate", response=Activation)
async def activate(request: Request) -> Response:
    """Restart the online model from this version on every instance (rollback = an older one)."""
    tenant, name = tenant_of(request), path_name(request)
    return JSON(await current_runtime().lifecycle.activate(tenant, name, _version(request)))


@api("activate", body=AliasRequest, response=AliasesOut)
async def set_alias(request: Request) -> Response:
    """Point an alias (champion, challenger or any name) at a version, compare-and-set."""
    tenant, name = tenant_of(request), path_name(request)
    alias = check_name(request.path_params["alias"], "alias")
    body = await parse_body(request, AliasRequest)
    return JSON(await current_runtime().lifecycle.set_alias(tenant, name, alias, body.version))


@api("activate", response=AliasesOut)
async def delete_alias(request: Request) -> Response:
    """Remove an alias."""
    tenant, name = tenant_of(request), path_name(request)
    alias = check_name(request.path_params["alias"], "alias")
    return JSON(await current_runtime().lifecycle.delete_alias(tenant, name, alias))


@api("activate")
async def compare(request: Request) -> Response:
    """Champion vs challenger on the same prequential samples (MAE/RMSE or accuracy)."""
    tenant, name = tenant_of(request), path_name(request)
    return JSON(await current_runtime().lifecycle.compare(tenant, name))


@api("admin", response=ReloadOut)
async def reload(request: Request) -> Response:
    """Drop this instance's in-memory caches (admin); state and registry are untouched."""
    runtime = current_runtime()
    require_admin(request, runtime.settings)
    return JSON({"dropped": runtime.lifecycle.reload()})


ROUTES = [
    Route("/api/v1/models/{model}/versions", list_versions, methods=["GET"]),
    Route("/api/v1/models/{model}/versions", create_version, methods=["POST"]),
    Route("/api/v1/models/{model}/versions/{version}/activate", activate, methods=["POST"]),
    Route("/api/v1/models/{model}/aliases/{alias}", set_alias, methods=["PUT"]),
    Route("/api/v1/models/{model}/aliases/{alias}", delete_alias, methods=["DELETE"]),
    Route("/api/v1/models/{model}/compare", compare, methods=["GET"]),
    Route("/api/v1/admin/reload", reload, methods=["POST"]),
    *tenant_keys_api.ROUTES,  # tenant API keys: issue, list, revoke (admin)
    # compat, ML engine (seeds 002, 004): each `engine.mount(path, ...)` serves
    # /api/v1/engine<path>, the bare <path> and /api/v1<path> unless the core owns it
    *engine.mount("/models", engine.models, "GET"),
    *engine.mount("/models/{release}", engine.model_version, "GET"),
    *engine.mount("/model/{release}", engine.model_detail, "GET"),
    *engine.mount("/models/activate/{release}", engine.activate, "POST"),
    *engine.mount("/admin/activate/{release}", engine.admin_activate, "POST"),
    *engine.mount("/admin/reload", engine.admin_reload, "POST"),
    # compat, ML service (seed 003)
    Route(
        "/api/v1/ml/models", ml_service.list_models, methods=["GET"], name="ml_service_list_models"
    ),
    Route(
        "/api/v1/ml/models/{model_id}",
        ml_service.get_model,
        methods=["GET"],
        name="ml_service_get_model",
    ),
    Route(
        "/api/v1/ml/models/{model_id}/deploy",
        ml_service.deploy,
        methods=["POST"],
        name="ml_service_deploy",
    ),
]
router = build_router("activate", ROUTES)


@functions_framework.aio.http
async def app(request: Request) -> Response:
    return forward(router, request)
