"""CloudEvents 1.0 received over HTTP (README: Push ingestion), a pure codec: the binary mode
(`ce-*` headers), the structured mode (`application/cloudevents+json`), the batched mode
(`application/cloudevents-batch+json`) and the Pub/Sub push envelope
(`{"message": {"data", "attributes", "messageId"}, "subscription"}`) become `Received`
events, or one `ApiError` per event that cannot be one.

The `cloudevents` SDK parses each event. Its `CloudEvent` fills in a missing `id` with a new
uuid, so `id` and `source` are checked on the raw attributes first: an event without them
could never be recognised when it is delivered again (at-least-once made exactly-once).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_dict, from_http

from shared.errors import ApiError, bad_request

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
TENANT_ATTRIBUTE = "tenant"  # the CloudEvents extension attribute naming the tenant
# ... and the one carrying its X-Tenant-Key (TENANT_AUTH=keys): a Pub/Sub push or a Knative
# Trigger cannot add a header, but the producer can set an attribute
TENANT_KEY_ATTRIBUTE = "tenantkey"


@dataclass(frozen=True)
class Received:
    """One event as received: the attributes that route and dedupe it, and its data."""

    id: str
    source: str
    type: str
    tenant: str | None  # the `tenant` extension attribute, when sent
    tenant_key: str | None  # the `tenantkey` extension attribute, when sent
    data: Any


@dataclass(frozen=True)
class Delivery:
    """What one request carried: a batch answers one result per event."""

    batch: bool
    events: list[Received | ApiError]


def bad_event(message: str) -> ApiError:
    return bad_request(message, "invalid_cloudevent")


def parse_delivery(headers: Mapping[str, str], body: bytes, max_events: int) -> Delivery:
    """The events of one push request (headers with lower-case names). A body that is no
    delivery at all raises; an event that is not a usable CloudEvent is its own ApiError."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if "ce-specversion" in headers:
        return Delivery(False, [_one(_binary, headers, body)])
    if content_type == STRUCTURED:
        return Delivery(False, [_one(_structured, _json(body))])
    if content_type == BATCH:
        items = _json(body)
        if not isinstance(items, list):
            raise bad_event("a batch of CloudEvents is a JSON array of events")
        if len(items) > max_events:
            raise ApiError(
                422,
                "too_many_events",
                f"the number of events is {len(items)}; EVENTS_MAX_PER_BATCH is {max_events}",
            )
        return Delivery(True, [_one(_structured, item) for item in items])
    envelope = _json(body)
    if isinstance(envelope, dict) and isinstance(envelope.get("message"), dict):
        return Delivery(False, [_one(_pubsub, envelope)])
    raise bad_event(
        "send a CloudEvent: binary mode (ce-* headers), structured mode "
        f"({STRUCTURED}), a batch ({BATCH}) or a Pub/Sub push envelope"
    )


def _one(parse: Any, *args: Any) -> Received | ApiError:
    try:
        event: Received = parse(*args)
    except ApiError as exc:
        return exc
    except (GenericException, ValueError, TypeError) as exc:
        return bad_event(f"not a CloudEvent 1.0: {exc}")
    return event


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise bad_event("the body is not JSON") from None


def _binary(headers: Mapping[str, str], body: bytes) -> Received:
    _require({k[3:]: v for k, v in headers.items() if k.startswith("ce-")})
    return _received(from_http(dict(headers), body))


def _structured(item: Any) -> Received:
    if not isinstance(item, dict):
        raise bad_event("a CloudEvent in structured mode is a JSON object")
    _require(item)
    if "data_base64" in item:  # the SDK's from_dict takes `data` only: decode it here
        encoded = item["data_base64"]
        item = {k: v for k, v in item.items() if k != "data_base64"}
        item["data"] = _base64(encoded, "data_base64")
    return _received(from_dict(item))


def _pubsub(envelope: dict[str, Any]) -> Received:
    """The CloudEvent's attributes in the message's attributes (a `ce-` prefix allowed) with
    the data as its data, or else the data itself a structured CloudEvent. Without an `id`
    the message's `messageId` is the id (Pub/Sub redelivers a message with its messageId),
    without a `source` the subscription is."""
    message: dict[str, Any] = envelope["message"]
    raw = message.get("data")
    data = _base64(raw, "message.data") if raw is not None else None
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise bad_event("message.attributes is an object")
    attrs = {k.removeprefix("ce-").lower(): v for k, v in attributes.items()}
    if "specversion" not in attrs:
        return _structured(_json(data or b""))
    attrs.setdefault("id", message.get("messageId") or message.get("message_id"))
    attrs.setdefault("source", envelope.get("subscription"))
    _require(attrs)
    return _received(from_dict({**attrs, "data": _json(data) if data else None}))


def _base64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise bad_event(f"{where} is a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad_event(f"{where} is not base64") from None


def _require(attributes: Mapping[str, Any]) -> None:
    for name in ("specversion", "id", "source", "type"):
        value = attributes.get(name)
        if not isinstance(value, str) or not value:
            raise bad_event(f"the CloudEvent attribute '{name}' is required (a non-empty string)")
    if attributes["specversion"] != "1.0":
        raise bad_event(f"specversion '{attributes['specversion']}' is not 1.0")
    for name in (TENANT_ATTRIBUTE, TENANT_KEY_ATTRIBUTE):
        value = attributes.get(name)
        if value is not None and not isinstance(value, str):
            raise bad_event(f"the '{name}' attribute is a string")


def _received(event: CloudEvent) -> Received:
    data = event.get_data()
    if isinstance(data, bytes | bytearray | str) and data:
        data = _json(data.encode() if isinstance(data, str) else bytes(data))
    return Received(
        id=event["id"],
        source=event["source"],
        type=event["type"],
        tenant=event.get(TENANT_ATTRIBUTE),
        tenant_key=event.get(TENANT_KEY_ATTRIBUTE),
        data=data,
    )
