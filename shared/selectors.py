"""Which candidate a model selector currently prefers (`GET /api/v1/models/{m}`).

A selector (bandit, successive halving, greedy) predicts with River's `best_model`; clients
see it as the index into the spec's `models` and that candidate's spec. A bandit prefers no
arm before its first reward (index null); successive halving has `decided` once one candidate
is left racing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SELECTOR_KINDS = frozenset(
    {
        "bandit_regressor",
        "bandit_classifier",
        "successive_halving_regressor",
        "successive_halving_classifier",
        "greedy_regressor",
    }
)


def selects(spec: Mapping[str, Any] | None) -> bool:
    """Whether the spec's estimator is a model selector."""
    steps = (spec or {}).get("steps") or []
    return (
        bool(steps) and isinstance(steps[-1], Mapping) and steps[-1].get("kind") in SELECTOR_KINDS
    )


def preferred(model: Any, spec: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """`{"index", "candidate", "decided"?}` for a selector's current best model, else None."""
    if not selects(spec):
        return None
    # here: river.model_selection loads river.bandit, its datasets and scikit-learn
    from river import model_selection

    steps = getattr(model, "steps", None)
    selector = list(steps.values())[-1] if steps else model
    if not isinstance(selector, model_selection.base.ModelSelector):
        return None
    best = selector.best_model
    index = next((i for i, m in enumerate(selector.models) if m is best), None)
    candidates = spec["steps"][-1].get("params", {}).get("models") or []  # type: ignore[index]
    shown: dict[str, Any] = {
        "index": index,
        "candidate": candidates[index] if index is not None and index < len(candidates) else None,
    }
    racing = getattr(selector, "_s", None)  # successive halving: candidates still racing
    if isinstance(racing, int):
        shown["decided"] = racing == 1
    return shown
