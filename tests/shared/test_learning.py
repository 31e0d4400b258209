"""Input checks: `check_many` answers each row exactly as `check_x` does."""

from __future__ import annotations

from typing import Any

import pytest

from shared import learning
from shared.catalog import build_model
from shared.errors import ApiError
from shared.limits import current

LINEAR, _ = build_model({"steps": [{"kind": "linear_regression"}]})
TEXT, _ = build_model({"steps": [{"kind": "tfidf"}, {"kind": "multinomial_nb"}]})


def one_by_one(blueprint: Any, xs: list[Any]) -> list[Any]:
    out: list[Any] = []
    for x in xs:
        try:
            out.append(learning.check_x(blueprint, x))
        except ApiError as exc:
            out.append((exc.status, exc.code, exc.message))
    return out


def as_compared(checked: list[Any]) -> list[Any]:
    return [(c.status, c.code, c.message) if isinstance(c, ApiError) else c for c in checked]


def rows() -> list[Any]:
    bounds = current()
    top = bounds.max_abs_value
    return [
        {"a": 1.0, "b": -2, "c": 0},
        {},
        {"a": top, "b": -top, "c": int(top)},
        {"a": top * 1.5},
        {"a": int(top) + 1},
        {"a": float("nan")},
        {"a": float("inf")},
        {"a": 10**400},
        {"a": True, "b": None},
        {"a": "text"},
        {"a": [1.0]},
        {"n" * (bounds.max_feature_name_chars + 1): 1.0},
        {f"f{i}": 1.0 for i in range(bounds.max_features_per_sample + 1)},
        {f"f{i}": 1.0 for i in range(bounds.max_features_per_sample)},
        None,
        42,
        "a text",
        ["a", "list"],
    ]


@pytest.mark.parametrize("blueprint", [LINEAR, TEXT], ids=["numbers", "text"])
def test_check_many_equals_check_x_row_by_row(blueprint: Any) -> None:
    xs = rows()
    checked = learning.check_many(blueprint, xs)
    assert as_compared(checked) == one_by_one(blueprint, xs)
    # a passed row is the row itself, as check_x returns it
    assert all(c is x for c, x in zip(checked, xs, strict=True) if isinstance(x, dict) and c == x)
