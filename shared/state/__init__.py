"""State store backends behind one interface: pick one from STATE_URL.

A backend implements `StateStore`; consumers take the narrow Protocols of
shared/state/interfaces.py it is the union of.
"""

from __future__ import annotations

import logging

from shared.edge.errors import register
from shared.state.base import ReplicasUnconfirmed, StateUnavailable
from shared.state.interfaces import StateStore
from shared.state.memory import MemoryStateStore
from shared.state.redis_store import RedisStateStore

# The state store down is a dependency down: 503, retry in a second (architecture.md §3).
register(
    StateUnavailable,
    503,
    "state_unavailable",
    "the state store is unreachable; retry",
    retry_after=1,
    log_level=logging.WARNING,
    log_as="state store unavailable",
)
register(
    ReplicasUnconfirmed,
    503,
    "replicas_unconfirmed",
    "the write was not confirmed by STATE_MIN_REPLICAS replicas in time; retry with the same "
    "Idempotency-Key",
    retry_after=1,
    log_level=logging.WARNING,
    log_as="append not confirmed by replicas",
)


def open_state_store(
    url: str,
    timeout_seconds: float = 2.0,
    breaker_cooldown_seconds: float = 0.0,
    *,
    min_replicas: int = 0,
    replica_timeout_ms: int = 500,
) -> StateStore:
    if url.startswith("memory://"):
        return MemoryStateStore()
    return RedisStateStore(
        url,
        timeout_seconds,
        breaker_cooldown_seconds,
        min_replicas=min_replicas,
        replica_timeout_ms=replica_timeout_ms,
    )


__all__ = [
    "MemoryStateStore",
    "RedisStateStore",
    "StateStore",
    "StateUnavailable",
    "open_state_store",
]
