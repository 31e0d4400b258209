"""Where tenant key records live: one small map per tenant, key id → JSON record (the key's
SHA-256 and when it was issued; never the key). `memory://` and `redis://` side by side, like
the series state; the format and the checks are shared/tenant_keys.py's.

On Redis each tenant's records are one hash, `ml:{<tenant>}:keys` (hash tag: the tenant's
slot, next to its rate-limit bucket), with no expiry: a key is valid until it is revoked.
"""

from __future__ import annotations

from typing import Literal, Protocol

import shared.state.lua as lua
from shared.state.interfaces import StateStore
from shared.state.redis_connection import RedisConnection
from shared.state.redis_store import RedisStateStore

Added = Literal["added", "exists", "full"]


class KeyRecords(Protocol):
    async def add(self, tenant: str, key_id: str, record: str, max_keys: int) -> Added:
        """Store the record unless the id is taken or the tenant holds `max_keys` (atomic)."""

    async def get(self, tenant: str, key_id: str) -> str | None: ...

    async def remove(self, tenant: str, key_id: str) -> bool:
        """Delete the record; False if there was none."""

    async def all(self, tenant: str) -> dict[str, str]:
        """Every record of the tenant, by key id."""


class MemoryKeyRecords:
    """In one process (`memory://`): nothing awaits while mutating, so each call is atomic."""

    def __init__(self) -> None:
        self._records: dict[str, dict[str, str]] = {}

    async def add(self, tenant: str, key_id: str, record: str, max_keys: int) -> Added:
        held = self._records.setdefault(tenant, {})
        if key_id in held:
            return "exists"
        if len(held) >= max_keys:
            return "full"
        held[key_id] = record
        return "added"

    async def get(self, tenant: str, key_id: str) -> str | None:
        return self._records.get(tenant, {}).get(key_id)

    async def remove(self, tenant: str, key_id: str) -> bool:
        return self._records.get(tenant, {}).pop(key_id, None) is not None

    async def all(self, tenant: str) -> dict[str, str]:
        return dict(self._records.get(tenant, {}))


# lua.KEY_RECORD_ADD answers 1 added, 0 full, -1 id taken
_ADDED: dict[int, Added] = {1: "added", 0: "full", -1: "exists"}


class RedisKeyRecords:
    def __init__(self, connection: RedisConnection) -> None:
        # the model store's connection: its client, breaker and error mapping
        self.connection = connection
        self._add = connection.script(lua.KEY_RECORD_ADD)

    @staticmethod
    def _key(tenant: str) -> str:
        return f"ml:{{{tenant}}}:keys"

    async def add(self, tenant: str, key_id: str, record: str, max_keys: int) -> Added:
        keys, args = [self._key(tenant)], [key_id, record, max_keys]
        return _ADDED[int(await self.connection.call(lambda: self._add(keys=keys, args=args)))]

    async def get(self, tenant: str, key_id: str) -> str | None:
        raw = await self.connection.call(
            lambda: self.connection.client.hget(self._key(tenant), key_id)
        )
        return raw.decode() if raw is not None else None

    async def remove(self, tenant: str, key_id: str) -> bool:
        return bool(
            await self.connection.call(
                lambda: self.connection.client.hdel(self._key(tenant), key_id)
            )
        )

    async def all(self, tenant: str) -> dict[str, str]:
        raw = await self.connection.call(lambda: self.connection.client.hgetall(self._key(tenant)))
        return {k.decode(): v.decode() for k, v in raw.items()}


def open_key_records(store: StateStore) -> KeyRecords:
    """Key records on the same backend as the model state store."""
    if isinstance(store, RedisStateStore):
        return RedisKeyRecords(store.connection)
    return MemoryKeyRecords()
