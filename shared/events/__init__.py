"""Lifecycle events: CloudEvents 1.0 on NATS JetStream through an outbox, or a local log."""

from __future__ import annotations

from shared.events.bus import EventBus, LocalEventLog, OutboxRelay, open_event_bus
from shared.events.cloudevent import EVENT_TYPES, STREAM, SUBJECT_PREFIX, build_event, nats_subject
from shared.events.outbox import MemoryOutbox, Outbox, RedisOutbox, open_outbox

__all__ = [
    "EVENT_TYPES",
    "STREAM",
    "SUBJECT_PREFIX",
    "EventBus",
    "LocalEventLog",
    "MemoryOutbox",
    "Outbox",
    "OutboxRelay",
    "RedisOutbox",
    "build_event",
    "nats_subject",
    "open_event_bus",
    "open_outbox",
]
