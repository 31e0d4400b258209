"""The ML engine's deterministic features and supervised data set, from market returns.

A symbol's features are the core's lag features of its daily returns (in_1 = the newest
return, as everywhere in the platform); the supervised row for day t is the lags before t
and y = the return of day t. One model per symbol, named `market-<SYMBOL>`.
"""

from __future__ import annotations

import io

from compat.engine.market_data import Returns
from shared.errors import unprocessable
from shared.ingest import lag_features

MODEL_PREFIX = "market-"
TARGET = "y"
# The seeds' "custom linear regressor": standardised lags into a linear regression.
MODEL_STEPS = [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]


def model_of(symbol: str) -> str:
    return f"{MODEL_PREFIX}{symbol}"


def symbol_of(model: str) -> str | None:
    return model.removeprefix(MODEL_PREFIX) if model.startswith(MODEL_PREFIX) else None


def latest_features(returns: Returns, n_lags: int) -> dict[str, float]:
    if len(returns.values) < n_lags:
        raise unprocessable(
            f"{returns.symbol} has {len(returns.values)} returns; the features need {n_lags}",
            "not_enough_data",
        )
    return lag_features(returns.values[::-1][:n_lags])


def supervised_csv(returns: Returns, n_lags: int) -> bytes:
    """One row per day with a full window: date, in_1..in_N, y (oldest first)."""
    values = returns.values
    rows = [
        {
            "date": returns.dates[t],
            **lag_features(values[t - n_lags : t][::-1]),
            TARGET: values[t],
        }
        for t in range(n_lags, len(values))
    ]
    if not rows:
        raise unprocessable(
            f"{returns.symbol}: {len(values)} returns leave no training row with {n_lags} lags",
            "not_enough_data",
        )
    import pandas as pd  # here: only building a training table loads pandas

    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def feature_names(n_lags: int) -> list[str]:
    return [f"in_{i}" for i in range(1, n_lags + 1)]
