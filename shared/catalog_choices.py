"""The objects a spec names by string where River takes an object (issue 17): a selector's
metric and an aggregate's running statistic, each from an allow-list, never by import path.

The tables name River's constructors as `Deferred`s, so the catalog can list the names in its
docs without importing river.metrics (and with it scipy.stats) in every process; the factories
of shared/catalog_families.py build from them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from shared.deferred import river

if TYPE_CHECKING:
    from river import metrics, stats

SEED = 42  # every random draw seeded by default: two builds of a spec agree

REGRESSION_METRICS: dict[str, Callable[[], metrics.base.RegressionMetric]] = {
    "mae": river("metrics.MAE"),
    "mse": river("metrics.MSE"),
    "rmse": river("metrics.RMSE"),
    "r2": river("metrics.R2"),
}
CLASSIFICATION_METRICS: dict[str, Callable[[], metrics.base.ClassificationMetric]] = {
    "accuracy": river("metrics.Accuracy"),
    "balanced_accuracy": river("metrics.BalancedAccuracy"),
    "macro_f1": river("metrics.MacroF1"),
    "cross_entropy": river("metrics.CrossEntropy"),
    "log_loss": river("metrics.LogLoss"),
}
# `how` of agg / target_agg: River's running statistics that take no argument
STATISTICS: dict[str, Callable[[], stats.base.Univariate]] = {
    "mean": river("stats.Mean"),
    "var": river("stats.Var"),
    "count": river("stats.Count"),
    "sum": river("stats.Sum"),
    "min": river("stats.Min"),
    "max": river("stats.Max"),
    "abs_max": river("stats.AbsMax"),
    "ptp": river("stats.PeakToPeak"),
    "skew": river("stats.Skew"),
    "kurtosis": river("stats.Kurtosis"),
    "median": partial(river("stats.Quantile"), 0.5),
}


def choose(table: dict[str, Callable[[], Any]], name: str, what: str) -> Any:
    """A new object of the table's entry `name` (ValueError naming the choices if unknown)."""
    factory = table.get(name)
    if factory is None:
        raise ValueError(f"unknown {what} '{name}'; one of: {', '.join(table)}")
    return factory()
