"""State store backends behind one interface: pick one from STATE_URL.

A backend implements `StateStore`; consumers take the narrow Protocols of
shared/state/interfaces.py it is the union of.
"""

from __future__ import annotations

import logging

from shared.edge.errors import register
from shared.state.base import StateUnavailable
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


def open_state_store(
    url: str, timeout_seconds: float = 2.0, breaker_cooldown_seconds: float = 0.0
) -> StateStore:
    if url.startswith("memory://"):
        return MemoryStateStore()
    return RedisStateStore(url, timeout_seconds, breaker_cooldown_seconds)


__all__ = [
    "MemoryStateStore",
    "RedisStateStore",
    "StateStore",
    "StateUnavailable",
    "open_state_store",
]
