"""JSON out of the edge: compact, and never NaN or Infinity (JSON has neither)."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import Response


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
    try:  # the common case pays for one dumps; only a non-finite value costs the walk
        text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(finite(data), allow_nan=False, separators=(",", ":"))
    return text.encode()


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dump_json(content)
