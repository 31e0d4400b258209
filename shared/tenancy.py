"""Tenant and resource-name validation: every request is scoped by X-Tenant-ID."""

from __future__ import annotations

import re

from starlette.requests import Request

from shared.errors import ApiError

TENANT_HEADER = "x-tenant-id"
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


# Set by the edge on the ASGI scope (shared/http.py, compat/edge.py): whether tenants
# must authenticate (TENANT_AUTH=keys), the tenant whose X-Tenant-Key was verified, and that
# the admin key was (admin routes act for any tenant).
SCOPE_KEYS_REQUIRED = "ml.tenant_keys"
SCOPE_AUTHENTICATED = "ml.tenant"
SCOPE_ADMIN = "ml.admin"


def tenant_of(request: Request) -> str:
    """The request's tenant: X-Tenant-ID, validated, and authenticated when keys are on."""
    tenant = claimed_tenant(request)
    scope = request.scope
    if (
        scope.get(SCOPE_KEYS_REQUIRED)
        and scope.get(SCOPE_AUTHENTICATED) != tenant
        and not scope.get(SCOPE_ADMIN)
    ):
        # Fail closed: a route the edge did not authenticate (a path outside /api/v1 that
        # does not go through compat.edge.outside_api) never serves a claimed tenant.
        raise ApiError(
            401, "tenant_not_authenticated", "this route needs the tenant's X-Tenant-Key"
        )
    return tenant


def claimed_tenant(request: Request) -> str:
    """X-Tenant-ID as sent, validated (400 when missing or malformed), not authenticated."""
    tenant = request.headers.get(TENANT_HEADER)
    if tenant is None:
        raise ApiError(400, "missing_tenant", "send the X-Tenant-ID header")
    if not TENANT_PATTERN.match(tenant):
        raise ApiError(
            400,
            "invalid_tenant",
            "X-Tenant-ID must match ^[a-z0-9][a-z0-9-]{0,62}$ (lower-case letters, digits, '-')",
        )
    return tenant


def check_name(name: str, what: str = "model") -> str:
    if not NAME_PATTERN.match(name) or ".." in name:
        raise ApiError(
            400,
            f"invalid_{what}_name",
            f"{what} names match ^[A-Za-z0-9][A-Za-z0-9_.-]{{0,127}}$ and never contain '..'",
        )
    return name


def path_name(request: Request, param: str = "model", what: str = "model") -> str:
    return check_name(request.path_params[param], what)
