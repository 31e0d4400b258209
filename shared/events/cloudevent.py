"""Lifecycle events as CloudEvents 1.0 structured JSON, and their NATS subjects (architecture.md §6)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudevents.conversion import to_json
from cloudevents.http import CloudEvent

from shared.context import request_id_var, traceparent_var
from shared.tenancy import TENANT_PATTERN

EVENT_TYPES: tuple[str, ...] = (
    "model.created",
    "model.trained",
    "model.version_created",
    "model.activated",
    "model.deleted",
    "drift.detected",
    "model.degraded",
    "job.started",
    "job.succeeded",
    "job.failed",
    "series.observed",
    "tenant.key_issued",
    "tenant.key_revoked",
    "state.lost",
)
SUBJECT_PREFIX = "ml.events"
STREAM = "ML_EVENTS"
CONTENT_TYPE = "application/cloudevents+json"


@dataclass(frozen=True)
class Envelope:
    """One event ready to send: its id, NATS subject, tenant and structured JSON bytes."""

    id: str
    tenant: str
    subject: str
    payload: bytes

    def as_dict(self) -> dict[str, Any]:
        return json.loads(self.payload)


def new_event_id() -> str:
    """A UUIDv7 (RFC 9562) as 32 hex digits: the first 48 bits are the Unix time in ms.

    Time-ordered, so a stream resumed by Last-Event-ID can start reading the store near the
    event's time instead of at the beginning (shared/events/feed.py)."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return f"{value:032x}"


def event_id_time(event_id: str) -> float | None:
    """The Unix time a UUIDv7 event id was minted, None for another id (older ids were v4)."""
    if len(event_id) != 32 or event_id[12] != "7":
        return None
    try:
        return int(event_id[:12], 16) / 1000
    except ValueError:
        return None


def check_tenant(tenant: str) -> str:
    # The tenant becomes a file name and a NATS subject token: it must never contain '.', '/',
    # '*' or '>'. TENANT_PATTERN excludes all of them.
    if not TENANT_PATTERN.match(tenant):
        raise ValueError(f"invalid tenant {tenant!r}: must match {TENANT_PATTERN.pattern}")
    return tenant


def check_type(event_type: str) -> str:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}: one of {', '.join(EVENT_TYPES)}")
    return event_type


def nats_subject(tenant: str, event_type: str | None = None) -> str:
    """`ml.events.<tenant>.<type>`, or every type of the tenant (`ml.events.<tenant>.>`)."""
    return (
        f"{SUBJECT_PREFIX}.{check_tenant(tenant)}.{check_type(event_type) if event_type else '>'}"
    )


def build_event(
    tenant: str,
    event_type: str,
    data: dict[str, Any],
    *,
    subject: str | None = None,
    source: str = "/online-ml",
) -> Envelope:
    """Build the CloudEvent with the SDK; trace and request ids come from the request context."""
    check_type(event_type)
    check_tenant(tenant)
    if not isinstance(data, dict):
        raise ValueError("event data must be a JSON object (a dict)")
    try:
        # NaN/Infinity would serialise to invalid JSON that other languages refuse.
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"event data is not JSON: {exc}") from None
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": new_event_id(),
        "source": source,
        "type": event_type,
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "tenant": tenant,
    }
    if subject:
        attributes["subject"] = subject
    if traceparent := traceparent_var.get():
        attributes["traceparent"] = traceparent
    if (request_id := request_id_var.get()) != "-":
        attributes["requestid"] = request_id
    event = CloudEvent(attributes, data)
    return Envelope(
        id=attributes["id"],
        tenant=tenant,
        subject=nats_subject(tenant, event_type),
        payload=to_json(event),
    )
