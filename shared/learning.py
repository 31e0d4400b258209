"""River's learn_one / predict_one per task, and the input checks that keep the log clean.

A sample that reaches the learn log must never make learn_one raise (it would be replayed
by every instance), so inputs are validated against the model's blueprint before append.
"""

from __future__ import annotations

import json
from typing import Any

from shared import limits, numbers, unsupervised
from shared.catalog import Blueprint
from shared.errors import ApiError, unprocessable


def _plain(x: dict[str, Any], bounds: limits.Limits) -> bool:
    """The common x, accepted as it is without a closer look: at most
    MAX_FEATURES_PER_SAMPLE numbers within ±MAX_ABS_VALUE under short names."""
    if len(x) > bounds.max_features_per_sample:
        return False
    top = bounds.max_abs_value
    bottom, longest = -top, bounds.max_feature_name_chars
    for name, value in x.items():
        kind = type(value)
        # NaN fails both comparisons; an int compares with the floats exactly
        if (kind is not float and kind is not int) or not bottom <= value <= top:
            return False
        if len(name) > longest:
            return False
    return True


def check_x(blueprint: Blueprint, x: Any, *, required: bool = True) -> Any:
    bounds = limits.current()
    if type(x) is dict and not blueprint.text_input and _plain(x, bounds):
        return x  # what the checks below return for it, at a fraction of their cost
    if x is None and blueprint.scores_target:
        return {}  # a univariate detector scores y; River ignores its x
    if x is None:
        if required and blueprint.task != "forecasting":
            raise unprocessable("x is required", "missing_features")
        return None if blueprint.task == "forecasting" else {}
    if blueprint.text_input:
        if not isinstance(x, str):
            raise unprocessable("this model reads text: send x as a string", "invalid_features")
        if len(x) > bounds.max_text_chars:
            raise limits.over(
                "the length of x (characters)",
                len(x),
                "MAX_TEXT_CHARS",
                bounds.max_text_chars,
                "text_too_long",
            )
        return x
    if not isinstance(x, dict):
        raise unprocessable("x must be an object of feature → value", "invalid_features")
    if len(x) > bounds.max_features_per_sample:
        raise limits.over(
            "the number of features in x",
            len(x),
            "MAX_FEATURES_PER_SAMPLE",
            bounds.max_features_per_sample,
            "too_many_features",
        )
    longest = bounds.max_feature_name_chars
    for name, value in x.items():
        if len(name) > longest:
            raise limits.over(
                f"the length of feature name {name[:32]!r}…",
                len(name),
                "MAX_FEATURE_NAME_CHARS",
                longest,
                "feature_name_too_long",
            )
        kind = type(value)
        if kind is float or kind is int:
            numbers.check_number(value, f"x.{name}", bounds.max_abs_value, "invalid_features")
        elif kind is bool or value is None:
            continue
        elif kind is str:
            if not blueprint.handles_strings:
                raise unprocessable(
                    f"x.{name} is text but this model takes numbers; add a one_hot_encoder "
                    "step or send a number",
                    "invalid_features",
                )
            if len(value) > longest:
                raise limits.over(
                    f"the length of x.{name}",
                    len(value),
                    "MAX_FEATURE_NAME_CHARS",
                    longest,
                    "feature_value_too_long",
                )
        else:
            raise unprocessable(
                f"x.{name} must be a number, boolean, string or null", "invalid_features"
            )
    return x


def check_many(blueprint: Blueprint, xs: list[Any]) -> list[Any]:
    """`check_x` of each instance, in order: the checked x, or the ApiError it raised. The
    common row, an object of at most MAX_FEATURES_PER_SAMPLE numbers within ±MAX_ABS_VALUE
    under short names, is passed inline with the bounds read once (what check_x would
    return: the row itself); any other goes through check_x, which says what is wrong."""
    bounds = limits.current()
    inline = not blueprint.text_input
    checked: list[Any] = []
    for x in xs:
        if inline and type(x) is dict and _plain(x, bounds):
            checked.append(x)
            continue
        try:
            checked.append(check_x(blueprint, x))
        except ApiError as exc:
            checked.append(exc)
    return checked


def check_y(blueprint: Blueprint, y: Any) -> Any:
    bounds = limits.current()
    if blueprint.task in UNSUPERVISED:
        return unsupervised.check_y(blueprint, y)
    if y is None:
        raise unprocessable("y (the target) is required to learn", "missing_target")
    if blueprint.task == "classification":
        if blueprint.binary_only:
            if y in (0, 1) and isinstance(y, int | bool) and not isinstance(y, float):
                return bool(y)
            raise unprocessable(
                "this binary classifier needs y true/false (or 1/0)", "invalid_target"
            )
        if isinstance(y, str):
            if len(y) > bounds.max_feature_name_chars:
                raise limits.over(
                    "the length of the label y",
                    len(y),
                    "MAX_FEATURE_NAME_CHARS",
                    bounds.max_feature_name_chars,
                    "invalid_target",
                )
            return y
        if isinstance(y, bool):
            return y
        if isinstance(y, int):
            return numbers.check_number(y, "y", bounds.max_abs_value, "invalid_target")
        raise unprocessable(
            "a class label y must be a string, integer or boolean", "invalid_target"
        )
    if not numbers.is_number(y):
        raise unprocessable("y must be a finite number for this model", "invalid_target")
    return numbers.check_number(y, "y", bounds.max_abs_value, "invalid_target")


UNSUPERVISED = unsupervised.TASKS


# The distinct feature names (or text terms) a model has learned, kept on the estimator
# itself so snapshots, replays and every instance agree (MAX_MODEL_FEATURES).
FEATURES_ATTR = "_online_ml_features"


def features_of(model: Any, blueprint: Blueprint, x: Any) -> set[str]:
    """What one sample adds to the model's vocabulary: feature names (a string feature
    becomes `name_value`, as one-hot encoding names it), or the terms of a text."""
    if isinstance(x, dict):
        return {f"{k}_{v}" if isinstance(v, str) else k for k, v in x.items()}
    if isinstance(x, str) and blueprint.text_input:
        steps = getattr(model, "steps", None)
        first = next(iter(steps.values())) if steps else None
        if first is not None and hasattr(first, "process_text"):
            return set(first.process_text(x))
    return set()


def _all_known(known: set[str], x: Any) -> bool:
    """The common sample: numbers (no string feature, which one-hot names `name_value`)
    under names the model knows already, so `features_of` would add nothing."""
    return type(x) is dict and known.issuperset(x) and str not in map(type, x.values())


def check_vocabulary(model: Any, blueprint: Blueprint, xs: list[Any]) -> None:
    """422 when learning `xs` would take the model past MAX_MODEL_FEATURES distinct names."""
    bound = limits.current().max_model_features
    known: set[str] = getattr(model, FEATURES_ATTR, None) or set()
    new: set[str] = set()
    for x in xs:
        if _all_known(known, x):
            continue
        new |= features_of(model, blueprint, x) - known
        if len(known) + len(new) > bound:
            raise limits.over(
                "the distinct feature names (or text terms) this model would hold",
                len(known) + len(new),
                "MAX_MODEL_FEATURES",
                bound,
                "too_many_model_features",
            )


# The type of each feature a model has learned, in the order first seen, kept on the
# estimator like FEATURES_ATTR (so a frozen version carries the features it had seen): what
# a protocol that declares its inputs (the Open Inference Protocol's metadata) describes.
SCHEMA_ATTR = "_online_ml_schema"
FeatureKind = str  # "int", "float", "bool" or "str"
_KINDS: dict[type, FeatureKind] = {int: "int", float: "float", bool: "bool", str: "str"}


def schema_of(model: Any) -> dict[str, FeatureKind]:
    """The features the model has learned (name → kind), in the order first seen."""
    return dict(getattr(model, SCHEMA_ATTR, None) or {})


def _remember_kinds(model: Any, x: dict[str, Any]) -> None:
    schema: dict[str, FeatureKind] | None = getattr(model, SCHEMA_ATTR, None)
    if schema is None:
        schema = {}
        setattr(model, SCHEMA_ATTR, schema)
    for name, value in x.items():
        kind = _KINDS.get(type(value))  # None (null) says nothing of the type
        if kind is None:
            continue
        known = schema.get(name)
        if known is None:
            schema[name] = kind
        elif known == "int" and kind == "float":
            schema[name] = "float"  # an int feature that also arrives as a float is a float


def learn(model: Any, blueprint: Blueprint, x: Any, y: Any) -> None:
    if blueprint.task == "forecasting":
        model.learn_one(y=y, x=x or None)
    elif blueprint.task in UNSUPERVISED:
        unsupervised.learn(model, blueprint, x, y)
    else:
        model.learn_one(x, y)
    if isinstance(x, dict) and x:
        _remember_kinds(model, x)
    known = getattr(model, FEATURES_ATTR, None)
    if known is not None and _all_known(known, x):
        return
    names = features_of(model, blueprint, x)
    if names:
        if known is None:
            known = set()
            setattr(model, FEATURES_ATTR, known)
        known |= names


def label_key(label: Any) -> str:
    return label if isinstance(label, str) else json.dumps(label)


def predict(
    model: Any, blueprint: Blueprint, x: Any, y: Any = None
) -> tuple[Any, dict[str, float] | None]:
    """The prediction (and class probabilities) of the model's current state; of a detector
    (score, is_anomaly or None), of a clusterer (cluster id, None). `y`: the value a
    univariate detector scores."""
    if blueprint.task in UNSUPERVISED:
        return unsupervised.predict(model, blueprint, x, y)
    if blueprint.task == "forecasting":
        forecast = forecast_steps(model, 1, [x] if x else None)
        return (forecast[0] if forecast else None), None
    if blueprint.task == "classification":
        try:
            proba = model.predict_proba_one(x)
        except NotImplementedError:  # voting, one-vs-one, output codes: a label, no proba
            return model.predict_one(x), None
        label = max(proba, key=proba.get) if proba else None
        return label, {label_key(k): v for k, v in proba.items()}
    return model.predict_one(x), None


def forecast_steps(model: Any, horizon: int, xs: list[dict[str, Any]] | None) -> list[float] | None:
    """A time-series forecast; None while the model has not seen enough data."""
    try:
        return list(model.forecast(horizon=horizon, xs=xs))
    except (IndexError, ValueError, ZeroDivisionError, KeyError):
        return None


PREDICT_ERRORS = (ValueError, TypeError, KeyError, ZeroDivisionError)


def predict_batch(
    model: Any, blueprint: Blueprint, xs: list[Any]
) -> list[tuple[Any, Any] | Exception]:
    """Predictions for many instances, in order, each equal to `predict` of it float for float;
    an instance the model cannot predict gets its exception in its place (never
    all-or-nothing). Never River's `predict_many`: its matrix product sums in another order
    than `predict_one` (it differs in the last bits on a third of TrumpApproval's rows), and
    with the DataFrame to build it is no faster for one process."""
    results: list[tuple[Any, Any] | Exception] = []
    if blueprint.task == "regression":  # the common batch: predict_one, no per-task dispatch
        predict_one = model.predict_one
        for x in xs:
            try:
                results.append((predict_one(x), None))
            except PREDICT_ERRORS as exc:
                results.append(exc)
        return results
    for x in xs:
        try:
            results.append(predict(model, blueprint, x))
        except PREDICT_ERRORS as exc:
            results.append(exc)
    return results
