"""River metrics over the prequential stream: cumulative and rolling windows, per kind.

A Scoreboard is updated in seq order with each prediction and the y it was made for, using
River's own metric objects (`utils.Rolling` for the windows), so its values are exactly what
River computes in-process on the same ordered stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from shared.learning import label_key
from shared.numbers import SQUARABLE, as_finite, is_finite

WINDOWS = (5, 10, 20)
Kind = Literal["regression", "binary", "multiclass"]

# metric name -> River's class in river.metrics, per kind
_METRIC_CLASSES: dict[Kind, dict[str, str]] = {
    "regression": {"mae": "MAE", "mse": "MSE", "rmse": "RMSE", "mape": "MAPE"},
    "binary": {"accuracy": "Accuracy", "f1": "F1", "log_loss": "LogLoss", "roc_auc": "ROCAUC"},
    "multiclass": {"accuracy": "Accuracy", "f1": "MacroF1", "log_loss": "CrossEntropy"},
}


class _Metrics(Mapping[Kind, dict[str, type]]):
    """`METRICS[kind]`: metric name -> River's metric class. river.metrics is imported at the
    first look-up, not with this module: it loads scipy.stats, which a process that scores
    nothing (a predict function on its first request) has no need of."""

    def __getitem__(self, kind: Kind) -> dict[str, type]:
        from river import metrics

        return {name: getattr(metrics, cls) for name, cls in _METRIC_CLASSES[kind].items()}

    def __iter__(self) -> Iterator[Kind]:
        return iter(_METRIC_CLASSES)

    def __len__(self) -> int:
        return len(_METRIC_CLASSES)


METRICS = _Metrics()
# Metrics that read class probabilities rather than the predicted label.
PROBABILISTIC = frozenset({"log_loss", "roc_auc"})


def kind_of(y: Any, proba: dict[str, float] | None) -> Kind:
    """Decided by the first scored outcome of a version, so the same everywhere."""
    if proba is None:
        return "regression"
    return "binary" if isinstance(y, bool) else "multiclass"


def _value(metric: Any) -> float | None:
    try:
        value = metric.get()
    except (ArithmeticError, ValueError):  # a metric River cannot compute yet
        return None
    return as_finite(value)


class Scoreboard:
    """Cumulative and rolling River metrics of one model version."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        from river import utils

        factories = METRICS[kind]
        self.cumulative = {name: make() for name, make in factories.items()}
        self.rolling = {
            window: {
                name: utils.Rolling(make, window_size=window) for name, make in factories.items()
            }
            for window in WINDOWS
        }
        self.scored = 0

    def update(self, y: Any, prediction: Any, proba: dict[str, float] | None) -> bool:
        """Score one prediction; False (nothing scored) when the model had no prediction."""
        if not _scorable(self.kind, y, prediction, proba):
            return False  # a non-finite (or overflowing) pair would break River's folds
        if self.kind == "regression":
            label, probabilities, y_proba = prediction, None, y
        elif self.kind == "binary":
            # River reads P(True) from a dict; the API's keys are JSON ("true"), so hand River
            # the float it would have read: LogLoss and ROCAUC accept either.
            label, probabilities, y_proba = prediction, (proba or {}).get("true", 0.0), y
        else:
            # multiclass: probabilities are keyed like the API (str label, or JSON); compare
            # y in that key space (label_key is one-to-one)
            label, probabilities, y_proba = prediction, proba or {}, label_key(y)
        for group in (self.cumulative, *self.rolling.values()):
            for name, metric in group.items():
                if name in PROBABILISTIC:
                    metric.update(y_proba, probabilities)
                else:
                    metric.update(y, label)
        self.scored += 1
        return True

    def report(self) -> dict[str, Any]:
        return {
            "cumulative": {name: _value(m) for name, m in self.cumulative.items()},
            "rolling": {
                str(window): {name: _value(m) for name, m in group.items()}
                for window, group in self.rolling.items()
            },
        }

    def headline(self) -> dict[str, float | None]:
        """The cumulative values and the widest window, for the history chart."""
        widest = self.rolling[WINDOWS[-1]]
        point = {name: _value(m) for name, m in self.cumulative.items()}
        point.update({f"{name}_{WINDOWS[-1]}": _value(m) for name, m in widest.items()})
        return point


def _scorable(kind: Kind, y: Any, prediction: Any, proba: dict[str, float] | None) -> bool:
    """Only finite values reach River's metrics: (y - ŷ)² of a 1e200 pair raises OverflowError
    inside MSE, and a NaN would stick in every running mean for good."""
    if kind == "regression":
        error = regression_error(y, prediction)
        return error is not None and error <= SQUARABLE
    return proba is None or all(is_finite(p) for p in proba.values())


def regression_error(y: Any, prediction: Any) -> float | None:
    """|y - ŷ| as a finite float, or None (no prediction, a non-number, an overflow)."""
    truth, guess = as_finite(y), as_finite(prediction)
    if truth is None or guess is None:
        return None
    return as_finite(abs(truth - guess))


def error_of(kind: str, y: Any, prediction: Any) -> float | None:
    """The error ADWIN watches: |y - ŷ| for a regressor, 0/1 misclassification for a
    classifier, the score itself for a detector (a rise: the stream looks more anomalous),
    nothing for a clusterer (its features still drift: PSI / KS)."""
    if kind == "anomaly":
        return as_finite(prediction)
    if kind == "clustering":
        return None
    if kind == "regression":
        error = regression_error(y, prediction)
        return error if error is not None and error <= SQUARABLE else None
    return 0.0 if prediction == y else 1.0
