"""Tenant API keys: their format, issue, verify, revoke and list (storage: shared/state/tenant_keys).

A key reads `tk_<tenant>_<key_id>_<secret>`: the tenant and a 64-bit random id say where its
record is (one hash per tenant, no global index), the secret is 256 random bits from
`secrets`. Only the key's SHA-256 is stored, and a presented key is compared in constant
time against it. No slow KDF (bcrypt, scrypt, argon2) is needed: those protect low-entropy
passwords against guessing after a leak of the hashes, and a 256-bit random secret cannot be
guessed at any hash speed; a fast hash also keeps a store lookup per request cheap, where a
deliberately slow one would hand every caller a CPU lever.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.state.tenant_keys import KeyRecords

KEY_PREFIX = "tk"
KEY_ID_BYTES = 8  # 16 hex digits: an id, not a secret (listed, logged, in the DELETE path)
SECRET_BYTES = 32  # 256 bits
KEY_ID_PATTERN = re.compile(r"[0-9a-f]{16}")
# tenant as shared.tenancy.TENANT_PATTERN (no '_'), then the id, then token_urlsafe(32)
_KEY = re.compile(r"tk_([a-z0-9][a-z0-9-]{0,62})_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
MAX_KEY_LENGTH = 3 + 63 + 1 + 16 + 1 + 43


@dataclass(frozen=True)
class IssuedKey:
    """A new key: the only time `key` itself is ever seen."""

    tenant: str
    key_id: str
    key: str
    created_at: str


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown of a stored key: its id and when it was issued."""

    key_id: str
    created_at: str


@dataclass(frozen=True)
class ParsedKey:
    tenant: str
    key_id: str


class TooManyKeys(Exception):
    """The tenant already holds TENANT_KEYS_MAX keys."""


def parse_key(key: str) -> ParsedKey | None:
    """The tenant and id a well-formed key names, or None (no store lookup needed)."""
    if len(key) > MAX_KEY_LENGTH:
        return None
    match = _KEY.fullmatch(key)
    return ParsedKey(match[1], match[2]) if match else None


def digest(key: str) -> str:
    """What is stored of a key (and what the edge's cache is keyed on)."""
    return hashlib.sha256(key.encode()).hexdigest()


class TenantKeys:
    """Issue, verify, revoke and list tenant keys over a `KeyRecords` backend."""

    def __init__(self, records: KeyRecords, max_keys: int) -> None:
        self._records = records
        self._max_keys = max_keys

    @property
    def max_keys(self) -> int:
        return self._max_keys

    async def issue(self, tenant: str) -> IssuedKey:
        """A new key for `tenant`; TooManyKeys when it already holds `max_keys`."""
        created_at = datetime.now(UTC).isoformat(timespec="seconds")
        while True:  # an id taken already (2^-64 per key held) just draws another
            key_id = secrets.token_hex(KEY_ID_BYTES)
            key = f"{KEY_PREFIX}_{tenant}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
            record = json.dumps({"sha256": digest(key), "created_at": created_at})
            added = await self._records.add(tenant, key_id, record, self._max_keys)
            if added == "full":
                raise TooManyKeys
            if added == "added":
                return IssuedKey(tenant, key_id, key, created_at)

    async def verify(self, key: str) -> str | None:
        """The tenant this key belongs to, or None (malformed, unknown or revoked)."""
        parsed = parse_key(key)
        if parsed is None:
            return None
        record = await self._records.get(parsed.tenant, parsed.key_id)
        if record is None:
            return None
        stored = json.loads(record)["sha256"]
        if not hmac.compare_digest(digest(key).encode(), stored.encode()):
            return None
        return parsed.tenant

    async def revoke(self, tenant: str, key_id: str) -> bool:
        """Delete the key's record; False if the tenant holds no such key."""
        if not KEY_ID_PATTERN.fullmatch(key_id):
            return False
        return await self._records.remove(tenant, key_id)

    async def list(self, tenant: str) -> list[KeyInfo]:
        """The tenant's keys, oldest first (never the key or its hash)."""
        rows = await self._records.all(tenant)
        infos = [KeyInfo(key_id, json.loads(raw)["created_at"]) for key_id, raw in rows.items()]
        return sorted(infos, key=lambda info: (info.created_at, info.key_id))
