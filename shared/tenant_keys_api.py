"""Admin routes for tenant API keys: issue (shown once), list (ids only), revoke.

Under /api/v1/admin/, so the edge requires the admin key (shared/security.py) and no tenant
key; the tenant is the one named in the path. Mounted by the activate group.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.edge.codec import JSON
from shared.errors import ApiError, not_found
from shared.openapi import api
from shared.runtime import current_runtime
from shared.tenancy import TENANT_PATTERN
from shared.tenant_keys import TooManyKeys

log = logging.getLogger("ml.tenant_keys")
SOURCE = "/online-ml/activate"


class TenantKeyIssued(BaseModel):
    tenant: str
    key_id: str
    key: str
    created_at: str


class TenantKeyInfo(BaseModel):
    key_id: str
    created_at: str


class TenantKeyList(BaseModel):
    tenant: str
    keys: list[TenantKeyInfo]
    max_keys: int


def _tenant(request: Request) -> str:
    tenant: str = request.path_params["tenant"]
    if not TENANT_PATTERN.match(tenant):
        raise ApiError(
            400,
            "invalid_tenant",
            "the tenant must match ^[a-z0-9][a-z0-9-]{0,62}$ (lower-case letters, digits, '-')",
        )
    return tenant


@api("admin", response=TenantKeyIssued, status=201)
async def issue_key(request: Request) -> Response:
    """Issue a key for the tenant (admin). The key is in this answer only: store it now.

    Only its SHA-256 is kept. A tenant may hold several keys at once (TENANT_KEYS_MAX), so a
    key is rotated by issuing the new one, switching clients, then revoking the old one."""
    tenant, runtime = _tenant(request), current_runtime()
    try:
        issued = await runtime.tenant_keys.issue(tenant)
    except TooManyKeys:
        limit = runtime.tenant_keys.max_keys
        raise ApiError(
            422,
            "too_many_tenant_keys",
            f"tenant '{tenant}' already holds TENANT_KEYS_MAX ({limit}) keys; revoke one first",
        ) from None
    log.info("tenant key issued: tenant=%s key_id=%s", tenant, issued.key_id)
    event = {"key_id": issued.key_id, "created_at": issued.created_at}
    await runtime.events.publish(
        tenant, "tenant.key_issued", event, subject=issued.key_id, source=SOURCE
    )
    body = {
        "tenant": issued.tenant,
        "key_id": issued.key_id,
        "key": issued.key,
        "created_at": issued.created_at,
    }
    # a secret: no cache between here and the operator may keep a copy
    return JSON(body, status_code=201, headers={"Cache-Control": "no-store"})


@api("admin", response=TenantKeyList)
async def list_keys(request: Request) -> Response:
    """The tenant's keys (admin): ids and issue times, never a key."""
    tenant, runtime = _tenant(request), current_runtime()
    keys = [
        {"key_id": k.key_id, "created_at": k.created_at}
        for k in await runtime.tenant_keys.list(tenant)
    ]
    return JSON({"tenant": tenant, "keys": keys, "max_keys": runtime.tenant_keys.max_keys})


@api("admin", status=204)
async def revoke_key(request: Request) -> Response:
    """Revoke one key (admin). This instance refuses it at once, every other instance within
    TENANT_KEY_CACHE_SECONDS."""
    tenant, runtime = _tenant(request), current_runtime()
    key_id = request.path_params["key_id"]
    if not await runtime.tenant_keys.revoke(tenant, key_id):
        raise not_found("tenant_key", key_id)
    runtime.tenant_auth.forget()
    log.info("tenant key revoked: tenant=%s key_id=%s", tenant, key_id)
    await runtime.events.publish(
        tenant, "tenant.key_revoked", {"key_id": key_id}, subject=key_id, source=SOURCE
    )
    return Response(status_code=204)


ROUTES = [
    Route("/api/v1/admin/tenants/{tenant}/keys", issue_key, methods=["POST"]),
    Route("/api/v1/admin/tenants/{tenant}/keys", list_keys, methods=["GET"]),
    Route("/api/v1/admin/tenants/{tenant}/keys/{key_id}", revoke_key, methods=["DELETE"]),
]
