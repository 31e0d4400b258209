"""OpenAPI 3.1 generated from the routes' pydantic models (`@api` on each handler)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute, Route

from shared.edge.request import TENANT_IN_BODY

F = TypeVar("F", bound=Callable[..., Any])
REF = "#/components/schemas/{model}"
# the only routes that need no X-Tenant-ID (architecture.md §3): probes, metrics, docs, the dashboard
PUBLIC_PATHS = {"/", "/health", "/ready", "/metrics", "/openapi.json", "/docs"}
PUBLIC_PREFIXES = ("/static/", "/dashboard")


@dataclass(frozen=True)
class ApiDoc:
    tag: str
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    error: type[BaseModel] | None = None  # the error body, if not our envelope
    media_type: str | None = None  # a success that is not JSON (text/event-stream)


def api(
    tag: str,
    *,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    error: type[BaseModel] | None = None,
    media_type: str | None = None,
) -> Callable[[F], F]:
    """Describe a handler for OpenAPI: its tag, request body, response and (when it is not
    our envelope, as on the Open Inference Protocol's routes) error models."""

    def mark(handler: F) -> F:
        handler.__api__ = ApiDoc(tag, body, response, status, error, media_type)  # type: ignore[attr-defined]
        return handler

    return mark


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str


class ErrorEnvelope(BaseModel):
    error: ErrorBody


def _operation(route: Route, method: str, doc: ApiDoc | None) -> dict[str, Any]:
    summary, _, description = (route.endpoint.__doc__ or route.name).strip().partition("\n")
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}_{route.name}",
        "summary": summary,
        "tags": [doc.tag] if doc else ["ops"],
        "responses": {},
    }
    if description.strip():
        operation["description"] = description.strip()
    params = [
        {"name": p, "in": "path", "required": True, "schema": _path_schema(p)}
        for p in route.param_convertors
    ]
    admin = "/admin/" in route.path.split("{", 1)[0]  # the edge's admin prefixes (security)
    # compat routes at a seed's bare path (no /api/v1) are tenant-scoped too (compat/), and
    # so are the Open Inference Protocol's model routes (the edge's tenant prefixes)
    if route.path.startswith(("/api/", "/v2/models/")) or (doc is not None and doc.tag == "compat"):
        params.insert(
            0,
            {
                "name": "X-Tenant-ID",
                "in": "header",
                # an admin route naming the tenant in its path (tenant keys) acts on that one
                # and pushed CloudEvents may name theirs in the `tenant` attribute instead
                "required": "{tenant}" not in route.path and route.path not in TENANT_IN_BODY,
                "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
            },
        )
        if not admin:  # the tenant's own key, required when TENANT_AUTH=keys
            operation["security"] = [{"TenantKey": []}]
    if admin:
        # required unless ENV=dev without ADMIN_API_KEY, so documented as a security scheme
        operation["security"] = [{"ApiKey": []}]
    if method in ("POST", "PUT", "PATCH"):
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 255},
            }
        )
    if params:
        operation["parameters"] = params
    if doc and doc.body:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=doc.body.__name__)}}
            },
        }
    ok: dict[str, Any] = {"description": "success"}
    if doc and doc.response:
        ok["content"] = {
            "application/json": {"schema": {"$ref": REF.format(model=doc.response.__name__)}}
        }
    if doc and doc.media_type:
        ok["content"] = {doc.media_type: {"schema": {"type": "string"}}}
    operation["responses"][str(doc.status if doc else 200)] = ok
    error = doc.error if doc is not None and doc.error is not None else ErrorEnvelope
    operation["responses"]["default"] = {
        "description": "error envelope" if error is ErrorEnvelope else "error",
        "content": {"application/json": {"schema": {"$ref": REF.format(model=error.__name__)}}},
    }
    return operation


# Path parameters with a documented shape (shared.tenancy.NAME_PATTERN, positive versions).
_NAME = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_PATH_PATTERNS = {
    "model": _NAME,
    "series": _NAME,
    "alias": _NAME,
    "version": "^[1-9][0-9]{0,17}$",
    "tenant": "^[a-z0-9][a-z0-9-]{0,62}$",
    "key_id": "^[0-9a-f]{16}$",
}


def _path_schema(name: str) -> dict[str, Any]:
    pattern = _PATH_PATTERNS.get(name)
    return {"type": "string", "pattern": pattern} if pattern else {"type": "string"}


def openapi_document(routes: Sequence[BaseRoute], title: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    models: set[type[BaseModel]] = {ErrorEnvelope}
    for route in routes:
        if not isinstance(route, Route):
            continue
        doc: ApiDoc | None = getattr(route.endpoint, "__api__", None)
        if doc:
            models.update(m for m in (doc.body, doc.response, doc.error) if m is not None)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            paths.setdefault(route.path, {})[method.lower()] = _operation(route, method, doc)
    _, schemas = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template=REF,
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "TenantKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Tenant-Key",
                    "description": "a key of the tenant in X-Tenant-ID, issued by "
                    "POST /api/v1/admin/tenants/{tenant}/keys; required when TENANT_AUTH=keys "
                    "(the default with ENV=prod)",
                },
            },
        },
    }


def docs_page(document: dict[str, Any]) -> str:
    """A self-contained route list (no CDN: instances have no network beyond their backends)."""
    rows = "".join(
        f"<tr><td>{method.upper()}</td><td><code>{path}</code></td>"
        f"<td>{', '.join(op['tags'])}</td><td>{op['summary']}</td></tr>"
        for path, operations in document["paths"].items()
        for method, op in operations.items()
    )
    title = document["info"]["title"]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:.2em .8em;"
        "border-bottom:1px solid #ddd}</style></head>"
        f"<body><h1>{title}</h1><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>"
        f"</p><table>{rows}</table></body></html>"
    )
