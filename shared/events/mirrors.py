"""Event mirrors: a second, differently shaped message for an event, on a subject of its own.

The core publishes its events as CloudEvents on `ml.events.<tenant>.<type>`. An earlier
system's clients (the compat packages) may expect another shape on another subject for some
of those events; such a package registers a mirror here when it is imported, so the core never
imports it (architecture.md §2, §6). A mirror is a pure function of the event; the relay puts
what it returns into the outbox with the event, so the mirrored message is kept and relayed
exactly like the event itself (at least once, deduplicated by its Nats-Msg-Id).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from shared.events.cloudevent import SUBJECT_PREFIX, Envelope, check_tenant

# (tenant, event type, event data) -> (subject, message) or None when the event is not mirrored
Mirror = Callable[[str, str, dict[str, Any]], tuple[str, dict[str, Any]] | None]

_MIRRORS: list[Mirror] = []


def register_mirror(mirror: Mirror) -> None:
    if mirror not in _MIRRORS:
        _MIRRORS.append(mirror)


def mirrored(envelope: Envelope, event_type: str, data: dict[str, Any]) -> list[Envelope]:
    """The mirrored messages of one event, each with an id derived from the event's (a
    redelivered event mirrors to the same ids, so JetStream drops the double)."""
    out = []
    for index, mirror in enumerate(_MIRRORS):
        if (shaped := mirror(envelope.tenant, event_type, data)) is None:
            continue
        subject, message = shaped
        # a mirror speaks for the event's tenant only: its subject stays under that tenant
        tenant_subject = f"{SUBJECT_PREFIX}.{check_tenant(envelope.tenant)}"
        if subject != tenant_subject and not subject.startswith(f"{tenant_subject}."):
            raise ValueError(f"a mirror of {envelope.tenant}'s event published on {subject}")
        payload = json.dumps(message, allow_nan=False, separators=(",", ":")).encode()
        out.append(Envelope(f"{envelope.id}.m{index}", envelope.tenant, subject, payload))
    return out
