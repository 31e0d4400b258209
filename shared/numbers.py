"""Numbers from clients, bounded: no unbounded int→float conversion, no non-finite value.

JSON numbers arrive as Python ints of any size (up to ~4,300 digits) or floats (1e400 parses
as inf). `math.isfinite(10**400)` raises OverflowError, so every check here compares ints as
ints (exact, never converted) and only then converts what is known to be in range.
"""

from __future__ import annotations

import math
from typing import Any

from shared.errors import unprocessable

# |y - ŷ| above this overflows when squared (MSE): such a pair is not scored.
SQUARABLE = 1e150


def is_number(value: Any) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    """A number that converts to a finite float (never raises, whatever its size)."""
    if not is_number(value):
        return False
    if isinstance(value, int):
        return -_FLOAT_MAX_INT <= value <= _FLOAT_MAX_INT
    return math.isfinite(value)


def as_finite(value: Any) -> float | None:
    """The value as a finite float, or None (a non-number, NaN, ±inf or an int too large)."""
    return float(value) if is_finite(value) else None


def within(value: Any, max_abs: float) -> bool:
    """A finite number with |value| <= max_abs (ints compared exactly, never converted)."""
    if not is_number(value):
        return False
    if isinstance(value, int):
        return abs(value) <= max_abs  # int vs float compares exactly in Python
    return math.isfinite(value) and abs(value) <= max_abs


def check_number(value: Any, where: str, max_abs: float, code: str) -> int | float:
    """`value` if it is a finite number within ±max_abs, else 422 naming `where` and the bound."""
    if not within(value, max_abs):
        raise unprocessable(
            f"{where} must be a finite number with |value| <= MAX_ABS_VALUE ({max_abs:g})", code
        )
    return value


def finite_or_none(value: Any) -> Any:
    """A model output made JSON-safe: a non-finite float (or an overflowing int) → None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int) and not isinstance(value, bool) and not is_finite(value):
        return None
    return value


def output_is_finite(value: Any) -> bool:
    """False when a model output (a prediction, a forecast, probabilities) holds a non-finite
    number anywhere: the model is degraded."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int | float):
        return is_finite(value)
    if isinstance(value, dict):
        return all(output_is_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(output_is_finite(v) for v in value)
    try:  # numpy scalars and the like
        return math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return True


_FLOAT_MAX_INT = int(1.7976931348623157e308)
