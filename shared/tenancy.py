"""Tenant and resource-name validation: every request is scoped by X-Tenant-ID."""

from __future__ import annotations

import re

from starlette.requests import Request

from shared.edge.request import edge_request_of
from shared.errors import ApiError

TENANT_HEADER = "x-tenant-id"
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


# TENANT_PATTERN on raw header bytes, as the edge checks it once (shared/edge/steps.py);
# fullmatch: no trailing newline slips by
TENANT_SHAPE = re.compile(rb"[a-z0-9][a-z0-9-]{0,62}")


def tenant_error(sent: bool) -> ApiError:
    """The answer to a missing (`sent` False) or malformed X-Tenant-ID."""
    if not sent:
        return ApiError(400, "missing_tenant", "send the X-Tenant-ID header")
    return ApiError(
        400,
        "invalid_tenant",
        "X-Tenant-ID must match ^[a-z0-9][a-z0-9-]{0,62}$ (lower-case letters, digits, '-')",
    )


def tenant_of(request: Request) -> str:
    """The request's tenant: X-Tenant-ID as the edge validated it, and authenticated when
    keys are on."""
    edge = edge_request_of(request.scope)
    tenant = claimed_tenant(request)
    if edge.keys_required and edge.authenticated != tenant and not edge.admin:
        # Fail closed: a route the edge did not authenticate (a path outside the tenant
        # prefixes that is not a TenantScopedRoute) never serves a claimed tenant.
        raise ApiError(
            401, "tenant_not_authenticated", "this route needs the tenant's X-Tenant-Key"
        )
    return tenant


def claimed_tenant(request: Request) -> str:
    """X-Tenant-ID as sent, in the shape the edge checked (400 when missing or malformed),
    not authenticated."""
    edge = edge_request_of(request.scope)
    if edge.tenant is None:
        raise tenant_error(edge.tenant_sent)
    return edge.tenant


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
