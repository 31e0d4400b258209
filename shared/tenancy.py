"""Tenant and resource-name validation: every request is scoped by X-Tenant-ID."""

from __future__ import annotations

import re

from starlette.requests import Request

from shared.errors import ApiError

TENANT_HEADER = "x-tenant-id"
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def tenant_of(request: Request) -> str:
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
