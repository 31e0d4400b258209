"""ML-engine serving: a symbol's features and predictions with its model's active version.

`predict?symbol=` = market data → the core's lag features → the active version of
`market-<SYMBOL>` (lifecycle.resolve + predict_version, the frozen artifact, exactly as
`POST /api/v1/models/{m}/predict?alias=active`), audited by the core's monitor like any
prediction (so predictions/recent, latency and freshness see it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from compat.edge import prediction_of, require_point_task
from compat.engine.features import latest_features, model_of
from compat.engine.market_data import check_symbol, market_of
from shared.context import request_id_var
from shared.errors import ApiError
from shared.runtime import Runtime


async def features(runtime: Runtime, symbol: str) -> dict[str, Any]:
    n_lags = runtime.settings.n_lags
    market = market_of(runtime)
    returns = await market.returns(symbol, n_lags)
    return {
        "symbol": symbol,
        "features": latest_features(returns, n_lags),
        "n_lags": n_lags,
        "as_of": returns.dates[-1] if returns.dates else None,
        "source": market.source,
    }


async def predict(runtime: Runtime, tenant: str, symbol: str) -> dict[str, Any]:
    """The symbol's active release predicts today's features, through the data plane (as
    frozen, monitored, kept under a `prediction_id` for a delayed label)."""
    model = model_of(symbol)
    engineered = await features(runtime, symbol)
    x = engineered["features"]
    try:
        require_point_task(await runtime.serving.task(tenant, model))  # before it is kept
        answer = await runtime.serving.predict(tenant, model, x, alias="active")
    except ApiError as exc:
        if exc.status != 404:
            raise
        raise ApiError(
            404, "model_not_found", f"no model for symbol '{symbol}'; POST /admin/train first"
        ) from None
    return {
        "symbol": symbol,
        "prediction": prediction_of(answer),
        "model": model,
        "model_version": answer["model_version"],
        "features": x,
        "as_of": engineered["as_of"],
        "request_id": request_id_var.get(),
        "prediction_id": answer["prediction_id"],
    }


async def predict_batch(runtime: Runtime, tenant: str, symbols: list[str]) -> dict[str, Any]:
    """One answer or one error per symbol, in order: a symbol failing fails only itself."""

    async def one(raw: str) -> dict[str, Any]:
        try:
            return await predict(runtime, tenant, check_symbol(raw))
        except ApiError as exc:
            return {"symbol": raw, "error": {"code": exc.code, "message": exc.message}}

    results = await asyncio.gather(*(one(s) for s in symbols))
    failed = sum(1 for r in results if "error" in r)
    return {"results": list(results), "succeeded": len(results) - failed, "failed": failed}
