"""The lifecycle lock of one model: create, activate (rollback), version, alias and delete of
one model run one at a time, across every instance.

The lock is a key in the state store (SET NX PX with an owner token), so it holds between
instances; it expires after LIFECYCLE_LOCK_TTL_SECONDS if its holder dies. A change that
cannot take it within LIFECYCLE_LOCK_WAIT_SECONDS answers 409 `model_busy`: the client
retries, rather than two changes interleaving their registry and state writes (a DELETE 204
followed by a model that is still there, or versions and the active alias out of step).
Learns and predictions never take it; they are guarded by the model's uid and incarnation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from shared.errors import conflict
from shared.state.base import StateUnavailable
from shared.state.interfaces import Locks

POLL_SECONDS = 0.02


def lock_key(tenant: str, name: str) -> str:
    # the model's hash tag: the lock lives in the model's slot on Redis Cluster
    return f"{{{tenant}:{name}}}:lifecycle"


class ModelLocks:
    def __init__(self, store: Locks, *, ttl_seconds: float, wait_seconds: float) -> None:
        self.store = store
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.wait_seconds = wait_seconds

    @asynccontextmanager
    async def hold(self, tenant: str, name: str) -> AsyncIterator[None]:
        """Hold the model's lifecycle lock for the block, or raise 409 model_busy."""
        key, owner = lock_key(tenant, name), uuid.uuid4().hex
        deadline = time.monotonic() + self.wait_seconds
        while not await self.store.try_lock(key, self.ttl_ms, owner):
            if time.monotonic() >= deadline:
                raise conflict(
                    f"model '{name}' is being changed by another request "
                    "(create, activate, version or delete); retry",
                    "model_busy",
                )
            await asyncio.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            # the owner token: a lock that expired and was taken by another is left alone.
            # A release that fails leaves the lock to expire; the change itself is done.
            with contextlib.suppress(StateUnavailable):
                await asyncio.shield(self.store.release_lock(key, owner))
