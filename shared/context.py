"""Per-request context (request id, tenant) carried by contextvars into logs and errors."""

from __future__ import annotations

import contextvars
import os
import re

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
traceparent_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "traceparent", default=None
)

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def choose_request_id(sent: str | None) -> str:
    """Echo a sane client request id; otherwise mint one."""
    if sent and _CLIENT_REQUEST_ID.match(sent):
        return sent
    return os.urandom(16).hex()


def valid_traceparent(sent: str | None) -> str | None:
    return sent if sent and _TRACEPARENT.match(sent) else None
