"""Anomaly detection and clustering as River serves them (issue 17): learn x alone, answer a
detector's score_one (and its filter's classify) or a clusterer's predict_one.

What a request may carry, by task (docs/architecture.md §4):

- anomaly: `x` (features); `y` optional, a ground-truth flag (true/false, 1/0) that the
  detector never learns (River's learn_one takes x alone) but the monitoring scores the
  answered score against (ROC AUC). A univariate detector (gaussian_scorer,
  standard_absolute_deviation, or a filter around one) scores `y` itself: a finite number,
  required to learn and to score, `x` ignored (River's `score_one(None, y)`).
- clustering: `x` alone; a `y` is refused (422 unexpected_target): a clusterer has no target,
  and a label silently dropped would be a client bug hidden.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared import limits, numbers
from shared.errors import unprocessable

if TYPE_CHECKING:
    from shared.catalog import Blueprint

TASKS = frozenset({"anomaly", "clustering"})


def check_y(blueprint: Blueprint, y: Any) -> Any:
    """The y a detector or clusterer sample may carry (see the module docstring)."""
    if blueprint.task == "clustering":
        if y is not None:
            raise unprocessable("a clusterer learns x alone: send no y", "unexpected_target")
        return None
    if blueprint.scores_target:
        if not numbers.is_number(y):
            raise unprocessable(
                "this detector scores a univariate y: send y as a finite number",
                "invalid_target" if y is not None else "missing_target",
            )
        return numbers.check_number(y, "y", limits.current().max_abs_value, "invalid_target")
    if y is None:
        return None
    if isinstance(y, bool) or (type(y) is int and y in (0, 1)):
        return bool(y)
    raise unprocessable(
        "an anomaly detector learns x alone; y, if sent, is the true flag: true/false or 1/0",
        "invalid_target",
    )


def learn(model: Any, blueprint: Blueprint, x: Any, y: Any) -> None:
    if blueprint.scores_target:
        model.learn_one(x, y)
    else:
        model.learn_one(x)  # a ground-truth flag is for the monitoring, never learned


def detector_filter(model: Any) -> Any | None:
    """The quantile/threshold filter that ends the model (it classifies scores), if any."""
    steps = getattr(model, "steps", None)
    last = list(steps.values())[-1] if steps else model
    return last if hasattr(last, "classify") else None


def predict(model: Any, blueprint: Blueprint, x: Any, y: Any) -> tuple[Any, Any]:
    """(score, is_anomaly or None) of a detector; (cluster id, None) of a clusterer. Pure:
    River's score_one and predict_one never learn (outside learn_during_predict)."""
    if blueprint.task == "clustering":
        if _no_cluster_yet(model):
            return None, None
        return model.predict_one(x), None
    if blueprint.scores_target:
        if y is None:
            raise ValueError(
                "this detector scores a univariate y, which predict does not carry: "
                'use predict_learn with {"y"}'
            )
        score = model.score_one(x, y)
    else:
        score = model.score_one(x)
    flagging = detector_filter(model)
    is_anomaly = None
    if flagging is not None and numbers.is_finite(score):
        is_anomaly = bool(flagging.classify(score))
    return score, is_anomaly


def _no_cluster_yet(model: Any) -> bool:
    """STREAMKMeans before its first chunk (no centres), DenStream before n_samples_init
    (River answers 0 then, a cluster that does not exist). Only STREAMKMeans is asked for
    its centres: DBSTREAM's and DenStream's are filled by predict_one itself, so asking
    them first would answer null for ever."""
    from river import cluster, compose  # here: a process serving no clusterer never loads them

    final = list(model.steps.values())[-1] if isinstance(model, compose.Pipeline) else model
    if isinstance(final, cluster.DenStream):
        return not final.initialized
    return isinstance(final, cluster.STREAMKMeans) and not final.centers


def answer(task: str, prediction: Any, extra: Any) -> dict[str, Any]:
    """The answer body: `{"score", "is_anomaly"?}` or `{"cluster"}`; a non-finite score is
    null with `degraded: true`, as a supervised prediction is."""
    if task == "clustering":
        return {"cluster": prediction}
    body: dict[str, Any] = {"score": numbers.finite_or_none(prediction)}
    if extra is not None:
        body["is_anomaly"] = extra
    if not numbers.output_is_finite(prediction):
        body["degraded"] = True
    return body
