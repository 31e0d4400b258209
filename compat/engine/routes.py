"""The ML engine seeds' API (002, 004): each endpoint at the seed's own path (no prefix, as the
seeds served it), under /api/v1/engine, and under /api/v1 where the core does not already
own that path (`GET /api/v1/models`, `GET /api/v1/models/{m}`, `POST /api/v1/predict/batch`,
`GET /api/v1/predictions/recent`, `POST /api/v1/admin/reload` are the core's).
Admin endpoints need X-API-Key (shared.security.require_admin), as in the seeds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compat.edge import Handler, mounted
from compat.engine import monitoring as monitoring
from compat.engine import serving as serving
from compat.engine.market_data import check_symbol
from compat.engine.releases import Releases
from compat.engine.schemas import (
    EngineActivationOut,
    EngineBatchIn,
    EngineBatchOut,
    EngineFeaturesOut,
    EngineModelsOut,
    EnginePredictionOut,
    EngineRelease,
    EngineTrainIn,
)
from compat.settings import compat_settings
from shared.edge.body import optional_body, parse_body
from shared.edge.codec import JSON
from shared.limits import query_int
from shared.monitoring.audit import MAX_LIMIT
from shared.openapi import api
from shared.runtime import Runtime, current_runtime
from shared.security import require_admin
from shared.tenancy import tenant_of

CORE_OWNED = {
    ("/models", "GET"),
    ("/models/{release}", "GET"),
    ("/predict/batch", "POST"),
    ("/predictions/recent", "GET"),
    ("/admin/reload", "POST"),
}

compat_settings()  # validated at start-up, like the core settings


def _symbol(request: Request) -> str:
    return check_symbol(request.query_params.get("symbol"))


def _admin(request: Request) -> str:
    require_admin(request, current_runtime().settings)
    return tenant_of(request)


# ----- serving -----------------------------------------------------------------------------


@api("compat", response=EngineFeaturesOut)
async def features(request: Request) -> Response:
    """ML engine `GET /features?symbol=`: the symbol's engineered features (lags of its daily
    returns, in_1 the newest)."""
    tenant_of(request)
    return JSON(await serving.features(current_runtime(), _symbol(request)))


@api("compat", response=EnginePredictionOut)
async def predict(request: Request) -> Response:
    """ML engine `GET /predict?symbol=`: predict with the active version of the symbol's model."""
    tenant = tenant_of(request)
    return JSON(await serving.predict(current_runtime(), tenant, _symbol(request)))


@api("compat", body=EngineBatchIn, response=EngineBatchOut)
async def predict_batch(request: Request) -> Response:
    """ML engine `POST /predict/batch` `{symbols}`: one answer or one error per symbol."""
    tenant = tenant_of(request)
    body = await parse_body(request, EngineBatchIn)
    return JSON(await serving.predict_batch(current_runtime(), tenant, body.symbols))


# ----- models --------------------------------------------------------------------------------


@api("compat", response=EngineModelsOut)
async def models(request: Request) -> Response:
    """ML engine `GET /models`: every trained version (v1, v2, ...) and the active one."""
    tenant = tenant_of(request)
    history = await monitoring.history(current_runtime(), tenant)
    return JSON(
        {
            "available_versions": [
                r["version"] for r in history["versions"] if r["status"] in ("succeeded", "partial")
            ],
            "active_version": history["active_version"],
            "versions": history["versions"],
        }
    )


@api("compat", response=EngineRelease)
async def model_version(request: Request) -> Response:
    """ML engine `GET /models/{version}`: one version (v1, v2, ...), per symbol."""
    tenant = tenant_of(request)
    releases = Releases(current_runtime())
    release = await releases.get(tenant, request.path_params["release"])
    active = await releases.active_label(tenant, [release])
    return JSON({**release, "active": active == release["version"]})


@api("compat", response=EngineRelease)
async def model_detail(request: Request) -> Response:
    """ML engine `GET /model/{version}`: the same as `GET /models/{version}`."""
    return await model_version(request)


@api("compat", response=EngineActivationOut)
async def activate(request: Request) -> Response:
    """ML engine `POST /models/activate/{version}`: every symbol serves its model of it."""
    tenant = tenant_of(request)
    releases = Releases(current_runtime())
    return JSON(await releases.activate(tenant, request.path_params["release"]))


# ----- monitoring ----------------------------------------------------------------------------


SymbolView = Callable[[Runtime, str, str], Awaitable[dict[str, Any]]]


async def _per_symbol(request: Request, view: SymbolView) -> list[dict[str, Any]]:
    """`view` for `?symbol=`, or for every symbol the tenant has a model for."""
    tenant, runtime = tenant_of(request), current_runtime()
    names = await monitoring.symbols(runtime, tenant, request.query_params.get("symbol"))
    return [await view(runtime, tenant, s) for s in names]


@api("compat")
async def drift(request: Request) -> Response:
    """ML engine `GET /monitoring/drift[?symbol=]`: the newest market returns against the
    active version's training returns (KS p-value below DRIFT_THRESHOLD = drift; PSI too)."""
    reports = await _per_symbol(request, monitoring.drift)
    return JSON(
        {
            "threshold": compat_settings().drift_threshold,
            "drift_detected": any(r.get("drift") for r in reports),
            "symbols": reports,
        }
    )


@api("compat")
async def history(request: Request) -> Response:
    """ML engine `GET /monitoring/history`: every version with its status, held-out metrics
    (mean over symbols) and whether it is active."""
    return JSON(await monitoring.history(current_runtime(), tenant_of(request)))


@api("compat")
async def freshness(request: Request) -> Response:
    """ML engine `GET /monitoring/freshness[?symbol=]`: model age, last prediction, data as-of."""
    return JSON({"symbols": await _per_symbol(request, monitoring.freshness)})


@api("compat")
async def latency(request: Request) -> Response:
    """ML engine `GET /monitoring/latency[?symbol=]`: p50/p95/p99 of each model's calls (ms)."""
    return JSON({"symbols": await _per_symbol(request, monitoring.latency)})


@api("compat")
async def predictions_recent(request: Request) -> Response:
    """ML engine `GET /predictions/recent[?symbol=&limit=]`: the newest audited predictions."""
    tenant = tenant_of(request)
    raw_symbol = request.query_params.get("symbol")
    symbol = check_symbol(raw_symbol) if raw_symbol else None
    limit = query_int(request.query_params.get("limit", "50"), "limit", 1, MAX_LIMIT)
    rows = await monitoring.recent(current_runtime(), tenant, symbol, limit)
    return JSON({"predictions": rows})


# ----- admin ---------------------------------------------------------------------------------


@api("compat", body=EngineTrainIn, response=EngineRelease, status=202)
async def admin_train(request: Request) -> Response:
    """ML engine `POST /admin/train` (admin): retrain every TRAIN_SYMBOLS model asynchronously
    as a new version; 202 at once, progress at /admin/train/status."""
    tenant = _admin(request)
    body = await optional_body(request, EngineTrainIn)
    release = await Releases(current_runtime()).train(tenant, body)
    return JSON(release, status_code=202)


@api("compat", response=EngineRelease)
async def admin_train_status(request: Request) -> Response:
    """ML engine `GET /admin/train/status` (admin): the newest training run, per symbol."""
    tenant = _admin(request)
    latest = await Releases(current_runtime()).latest(tenant)
    return JSON(latest if latest is not None else {"status": "idle", "version": None})


@api("compat", response=EngineActivationOut)
async def admin_activate(request: Request) -> Response:
    """ML engine `POST /admin/activate/{version}` (admin): as /models/activate/{version}."""
    tenant = _admin(request)
    return JSON(await Releases(current_runtime()).activate(tenant, request.path_params["release"]))


@api("compat")
async def admin_reload(request: Request) -> Response:
    """ML engine `POST /admin/reload` (admin): drop this instance's model caches; the next
    request reloads from the registry (the core's reload)."""
    _admin(request)
    return JSON({"dropped": current_runtime().lifecycle.reload()})


@api("compat")
async def admin_audit_clear(request: Request) -> Response:
    """ML engine `DELETE /admin/audit/clear` (admin): delete the tenant's prediction audit."""
    tenant = _admin(request)
    return JSON({"deleted": await current_runtime().monitor.clear_audit(tenant)})


def mount(path: str, handler: Handler, method: str) -> list[Route]:
    """An engine seed endpoint at `/api/v1/engine<path>`, at the bare `<path>` and, unless the
    core owns that path and method (`CORE_OWNED`), at `/api/v1<path>`. The function groups'
    main.py call this once per endpoint, so each lists what it serves."""
    prefixes = ["/api/v1/engine"]
    if (path, method) not in CORE_OWNED:
        prefixes.insert(0, "/api/v1")
    return mounted(path, handler, [method], prefixes=prefixes)
