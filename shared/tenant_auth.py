"""The edge's tenant check with TENANT_AUTH=keys: the X-Tenant-Key sent must be a key of the
tenant in X-Tenant-ID.

Answers are remembered per process for TENANT_KEY_CACHE_SECONDS, keyed by the key's SHA-256
(the raw key is never kept): a verified key costs no store round trip within the window, and
a revoked one keeps working on an instance that verified it for at most that long. Refusals
are remembered too, so repeating one bad key cannot hammer the store (a key that was unknown
or revoked never becomes valid, so remembering a refusal is never wrong). Malformed keys are
refused without a lookup and without taking a cache slot.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from shared.errors import ApiError
from shared.tenant_keys import TenantKeys, digest, parse_key

TENANT_KEY_HEADER = "x-tenant-key"


def missing_key() -> ApiError:
    return ApiError(
        401, "missing_tenant_key", "send a key of this tenant in the X-Tenant-Key header"
    )


def invalid_key() -> ApiError:
    return ApiError(401, "invalid_tenant_key", "the X-Tenant-Key is not a valid tenant key")


def mismatched_key() -> ApiError:
    return ApiError(
        403, "tenant_key_mismatch", "the X-Tenant-Key does not belong to the tenant in X-Tenant-ID"
    )


class TenantAuth:
    """Checks X-Tenant-Key against the tenant's keys, with a small in-process TTL cache."""

    def __init__(
        self,
        keys: TenantKeys,
        cache_seconds: float,
        cache_size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._ttl = cache_seconds
        self._size = cache_size
        self._clock = clock
        # sha256(key) → (owner tenant or None for a refused key, expiry). One TTL for every
        # entry, so insertion order is expiry order: the oldest entry is dropped first.
        self._cache: OrderedDict[str, tuple[str | None, float]] = OrderedDict()

    async def authenticate(self, tenant: str, sent: str | None) -> None:
        """Return if `sent` is a valid key of `tenant`; else raise 401 (missing, unknown,
        revoked) or 403 (a valid key of another tenant)."""
        if sent is None:
            raise missing_key()
        if parse_key(sent) is None:
            raise invalid_key()
        owner = await self._owner(sent)
        if owner is None:
            raise invalid_key()
        if owner != tenant:
            raise mismatched_key()

    def forget(self) -> None:
        """Drop every remembered answer (this instance revoked a key: effective here at once)."""
        self._cache.clear()

    async def _owner(self, key: str) -> str | None:
        name = digest(key)
        now = self._clock()
        hit = self._cache.get(name)
        if hit is not None:
            if hit[1] > now:
                return hit[0]
            del self._cache[name]
        owner = await self._keys.verify(key)  # StateUnavailable propagates: 503, never a pass
        if self._ttl > 0:
            self._remember(name, owner, now)
        return owner

    def _remember(self, name: str, owner: str | None, now: float) -> None:
        cache = self._cache
        while cache:  # expired entries sit at the front
            first = next(iter(cache.values()))
            if first[1] > now and len(cache) < self._size:
                break
            cache.popitem(last=False)
        cache[name] = (owner, now + self._ttl)
