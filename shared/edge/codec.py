"""JSON out of the edge: compact, and never NaN or Infinity (JSON has neither).

orjson writes it (several times faster than `json` on an answer); it writes a non-finite
float as null, keeps a dict's key order and writes a float's shortest round-trip repr, as
`json` does. What orjson refuses (an int past 64 bits, a float subclass such as numpy's) goes
through `json` with the same result.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import orjson
from starlette.responses import Response

_OPTIONS = orjson.OPT_NON_STR_KEYS  # a classifier's proba may be keyed by int or bool labels


def finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by null (a model's NaN output is reported,
    not a broken document)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dump_json(data: Any) -> bytes:
    try:
        return orjson.dumps(data, option=_OPTIONS)
    except TypeError:  # the rare value orjson does not take: the standard library's walk
        text = json.dumps(finite(data), allow_nan=False, separators=(",", ":"))
        return text.encode()


def dump_text(data: Any, default: Callable[[Any], Any] | None = None) -> str:
    """`dump_json` as text, for what the state store keeps (outcomes, kept features, audit
    rows): parsed back, it gives the same values and the same key order as `json` would.
    `default` turns a value neither codec knows into one it does (as json's `default`)."""
    try:
        return orjson.dumps(data, default=default, option=_OPTIONS).decode()
    except TypeError:
        return json.dumps(finite(data), allow_nan=False, separators=(",", ":"), default=default)


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dump_json(content)
