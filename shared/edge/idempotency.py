"""Idempotency-Key (architecture.md §3): its shape, checked once by the edge for every route
(shared/edge/steps.py), and the key a write handler stores."""

from __future__ import annotations

import hashlib
import re

from starlette.requests import Request

from shared.edge.request import edge_request_of
from shared.errors import ApiError
from shared.state.base import Idempotency

# 1-255 visible ASCII characters, matched on the raw header bytes (fullmatch: no trailing
# newline slips by)
KEY_SHAPE = re.compile(rb"[\x21-\x7e]{1,255}")


def bad_idempotency_key() -> ApiError:
    return ApiError(
        400, "invalid_idempotency_key", "Idempotency-Key is 1-255 visible ASCII characters"
    )


def idempotency_of(request: Request) -> Idempotency | None:
    """The request's Idempotency-Key (already checked by the edge) with a hash of what it
    asks: method, path and body (call after parse_body)."""
    edge = edge_request_of(request.scope)
    key = edge.idempotency_key
    if key is None:
        return None
    body = edge.body
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode() + body).hexdigest()
    return Idempotency(key, digest)
