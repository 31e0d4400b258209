"""River's learn_one / predict_one per task, and the input checks that keep the log clean.

A sample that reaches the learn log must never make learn_one raise (it would be replayed
by every instance), so inputs are validated against the model's blueprint before append.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from shared.catalog import Blueprint
from shared.errors import unprocessable


def check_x(blueprint: Blueprint, x: Any, *, required: bool = True) -> Any:
    if x is None:
        if required and blueprint.task != "forecasting":
            raise unprocessable("x is required", "missing_features")
        return None if blueprint.task == "forecasting" else {}
    if blueprint.text_input:
        if not isinstance(x, str):
            raise unprocessable("this model reads text: send x as a string", "invalid_features")
        return x
    if not isinstance(x, dict):
        raise unprocessable("x must be an object of feature → value", "invalid_features")
    for name, value in x.items():
        kind = type(value)
        if kind is float or kind is int:
            if not math.isfinite(value):
                raise unprocessable(f"x.{name} must be a finite number", "invalid_features")
        elif kind is bool or value is None:
            continue
        elif kind is str:
            if not blueprint.handles_strings:
                raise unprocessable(
                    f"x.{name} is text but this model takes numbers; add a one_hot_encoder "
                    "step or send a number",
                    "invalid_features",
                )
        else:
            raise unprocessable(
                f"x.{name} must be a number, boolean, string or null", "invalid_features"
            )
    return x


def check_y(blueprint: Blueprint, y: Any) -> Any:
    if y is None:
        raise unprocessable("y (the target) is required to learn", "missing_target")
    if blueprint.task == "classification":
        if blueprint.binary_only:
            if y in (0, 1) and isinstance(y, int | bool) and not isinstance(y, float):
                return bool(y)
            raise unprocessable(
                "this binary classifier needs y true/false (or 1/0)", "invalid_target"
            )
        if isinstance(y, bool | str | int):
            return y
        raise unprocessable(
            "a class label y must be a string, integer or boolean", "invalid_target"
        )
    if isinstance(y, bool) or not isinstance(y, int | float) or not math.isfinite(y):
        raise unprocessable("y must be a finite number for this model", "invalid_target")
    return y


def learn(model: Any, blueprint: Blueprint, x: Any, y: Any) -> None:
    if blueprint.task == "forecasting":
        model.learn_one(y=y, x=x or None)
    else:
        model.learn_one(x, y)


def label_key(label: Any) -> str:
    return label if isinstance(label, str) else json.dumps(label)


def predict(model: Any, blueprint: Blueprint, x: Any) -> tuple[Any, dict[str, float] | None]:
    """The prediction (and class probabilities) of the model's current state."""
    if blueprint.task == "forecasting":
        forecast = forecast_steps(model, 1, [x] if x else None)
        return (forecast[0] if forecast else None), None
    if blueprint.task == "classification":
        proba = model.predict_proba_one(x)
        label = max(proba, key=proba.get) if proba else None
        return label, {label_key(k): v for k, v in proba.items()}
    return model.predict_one(x), None


def forecast_steps(model: Any, horizon: int, xs: list[dict[str, Any]] | None) -> list[float] | None:
    """A time-series forecast; None while the model has not seen enough data."""
    try:
        return list(model.forecast(horizon=horizon, xs=xs))
    except (IndexError, ValueError, ZeroDivisionError, KeyError):
        return None


MANY_THRESHOLD = 32  # below this, a vectorised call costs more than it saves
PREDICT_ERRORS = (ValueError, TypeError, KeyError, ZeroDivisionError)


def _numeric(x: Any) -> bool:
    return all(type(v) in (int, float) for v in x.values())


def predict_batch(
    model: Any, blueprint: Blueprint, xs: list[Any]
) -> list[tuple[Any, Any] | Exception]:
    """Predictions for many instances, in order; an instance the model cannot predict gets its
    exception in its place (never all-or-nothing). A large regular batch of a regressor (same
    keys, numbers only, in every instance) goes through River's `predict_many` (vectorised:
    equal to predict_one up to float rounding)."""
    if (
        blueprint.task == "regression"
        and len(xs) >= MANY_THRESHOLD
        and isinstance(xs[0], dict)
        and all(isinstance(x, dict) and x.keys() == xs[0].keys() and _numeric(x) for x in xs)
    ):
        try:
            frame = pd.DataFrame.from_records(xs, columns=list(xs[0]))
            return [(float(p), None) for p in model.predict_many(frame)]
        except (AttributeError, NotImplementedError, *PREDICT_ERRORS):
            pass  # not every pipeline step has a *_many method: fall back to one by one
    results: list[tuple[Any, Any] | Exception] = []
    for x in xs:
        try:
            results.append(predict(model, blueprint, x))
        except PREDICT_ERRORS as exc:
            results.append(exc)
    return results
