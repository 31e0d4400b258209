"""The model registry interface: immutable versions plus compare-and-set aliases (architecture.md §5).

Layout under the registry root, the same on both backends (`file://`, `gs://`):

    <tenant>/<model>/model.json                       the model definition
    <tenant>/<model>/versions/<n>/model.pkl           the artifact, created exclusively
    <tenant>/<model>/versions/<n>/meta.json           created last: the version is now visible
    <tenant>/<model>/aliases.json                     alias -> version, moved by compare-and-set
    <tenant>/<model>/state.json                       what the state store held last (epoch, seq)
    <tenant>/<model>/hwm.json                         high-water marks (version, incarnation):
                                                      outlives a delete, so a recreated model
                                                      never reuses a version number
    <tenant>/_<folder>/...                            blobs: data sets, compat documents
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.tenancy import NAME_PATTERN, TENANT_PATTERN

DEFINITION = "model.json"
ALIASES = "aliases.json"
VERSIONS = "versions"
ARTIFACT = "model.pkl"
META = "meta.json"
STATE = "state.json"
HIGH_WATER = "hwm.json"
# The small documents read and replaced whole, compare-and-set on their generation.
DOCS = (ALIASES, STATE, HIGH_WATER)
# What delete_model leaves behind (shared/lifecycle.py: delete is final, numbers never reused).
KEPT_ON_DELETE = (HIGH_WATER,)


class RegistryError(Exception):
    """Base of every registry error."""


class VersionExists(RegistryError):
    """Another writer created this version first (exclusive create lost)."""


class VersionNotFound(RegistryError):
    """The version does not exist, or is not visible yet (no meta.json)."""


class ChecksumMismatch(RegistryError):
    """The artifact does not match the sha256 in meta.json: never load it."""


class AliasConflict(RegistryError):
    """aliases.json changed since the caller read it (compare-and-set lost): re-read, retry."""


class RegistryUnavailable(RegistryError):
    """The backend cannot be reached; callers answer 503 with Retry-After."""


@dataclass(frozen=True)
class Doc:
    """A document as read, with the generation to pass back to `write_doc`."""

    doc: dict[str, Any]
    generation: str | None  # None: the document does not exist yet


Aliases = Doc  # aliases.json as read, for `write_aliases`


class Registry(Protocol):
    """Versioned model artifacts. Implementations: FilesystemRegistry, GcsRegistry."""

    async def put_definition(self, tenant: str, model: str, definition: dict[str, Any]) -> None:
        """Write model.json (overwrites)."""

    async def get_definition(self, tenant: str, model: str) -> dict[str, Any] | None: ...

    async def list_models(self, tenant: str) -> list[str]:
        """Names of the tenant's models that have a model.json, sorted."""

    async def delete_model(self, tenant: str, model: str) -> None:
        """Delete everything under <tenant>/<model>/ (no error if absent)."""

    async def create_version(
        self, tenant: str, model: str, version: int, artifact: bytes, meta: dict[str, Any]
    ) -> dict[str, Any]:
        """Exclusively create version n; return the stored meta. Raises VersionExists."""

    async def next_version(self, tenant: str, model: str) -> int:
        """1 + the highest version number taken, visible or not (1 if none)."""

    async def list_versions(self, tenant: str, model: str) -> list[dict[str, Any]]:
        """Metas of the visible versions, sorted by version."""

    async def get_version(self, tenant: str, model: str, version: int) -> dict[str, Any] | None: ...

    async def load_artifact(self, tenant: str, model: str, version: int) -> bytes:
        """The artifact, verified against meta.json. Raises VersionNotFound, ChecksumMismatch."""

    async def read_aliases(self, tenant: str, model: str) -> Aliases: ...

    async def read_doc(self, tenant: str, model: str, name: str) -> Doc:
        """One of DOCS, read atomically with its generation ({} and None if absent)."""

    async def write_doc(
        self, tenant: str, model: str, name: str, doc: dict[str, Any], expected: str | None
    ) -> str:
        """Replace one of DOCS if its generation is still `expected` (None: absent); return
        the new generation. Raises AliasConflict otherwise."""

    async def write_aliases(
        self, tenant: str, model: str, doc: dict[str, Any], expected_generation: str | None
    ) -> str:
        """Replace aliases.json if its generation is still `expected_generation`.

        Returns the new generation; raises AliasConflict otherwise.
        """

    async def ping(self) -> None:
        """Raise RegistryUnavailable unless the backend answers."""

    # Generic blobs beside the models (data sets, compat documents): keys under a folder whose
    # name starts with "_", which no model name can, so a blob never lands in a model's folder.

    async def put_blob(
        self, tenant: str, key: str, data: bytes, *, exclusive: bool = False
    ) -> bool:
        """Write <tenant>/<key>; with `exclusive`, only if absent (False if it exists)."""

    async def get_blob(self, tenant: str, key: str) -> bytes | None: ...

    async def list_blobs(self, tenant: str, prefix: str) -> list[str]:
        """Keys (relative to the tenant) under `prefix`, sorted."""

    def blob_uri(self, tenant: str, key: str) -> str:
        """The blob as a URI pandas can read through shared.training.data (file://, gs://)."""


def check_tenant(tenant: str) -> str:
    # Defence in depth: the edge validates too, but no path may ever leave its tenant folder.
    if not isinstance(tenant, str) or not TENANT_PATTERN.match(tenant):
        raise ValueError(f"invalid tenant {tenant!r}")
    return tenant


def check_model(model: str) -> str:
    if not isinstance(model, str) or not NAME_PATTERN.match(model) or ".." in model:
        raise ValueError(f"invalid model name {model!r}")
    return model


MAX_VERSION = 10**18 - 1  # 18 digits: what a URL may name (shared/lifecycle.parse_version)


def check_version(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise ValueError(f"invalid version {version!r}: versions are integers 1..{MAX_VERSION}")
    return version


def check_doc(name: str) -> str:
    if name not in DOCS:
        raise ValueError(f"unknown registry document {name!r}: one of {', '.join(DOCS)}")
    return name


async def update_doc(
    registry: Registry, tenant: str, model: str, name: str, change: Callable[[dict[str, Any]], Any]
) -> dict[str, Any]:
    """Read-modify-write one document, compare-and-set, retrying on a lost race."""
    for _ in range(64):
        current = await registry.read_doc(tenant, model, name)
        doc = json.loads(json.dumps(current.doc))
        change(doc)
        if doc == current.doc and current.generation is not None:
            return doc  # nothing to write
        try:
            await registry.write_doc(tenant, model, name, doc, current.generation)
            return doc
        except AliasConflict:
            await asyncio.sleep(0.005)
    raise AliasConflict(f"{tenant}/{model}/{name} kept changing under compare-and-set")


async def raise_high_water(registry: Registry, tenant: str, model: str, **marks: int) -> None:
    """hwm.json[field] = max(its value, mark) for each mark (version, incarnation)."""

    def change(doc: dict[str, Any]) -> None:
        for field_name, value in marks.items():
            doc[field_name] = max(int(doc.get(field_name, 0)), value)

    await update_doc(registry, tenant, model, HIGH_WATER, change)


async def high_water(registry: Registry, tenant: str, model: str) -> dict[str, int]:
    doc = (await registry.read_doc(tenant, model, HIGH_WATER)).doc
    return {k: int(v) for k, v in doc.items() if isinstance(v, int)}


_BLOB_KEY = re.compile(r"^_[A-Za-z0-9_.-]{1,63}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,127})*/?$")


def blob_key(tenant: str, key: str) -> str:
    """`<tenant>/<key>` for a blob: the first folder starts with "_" (never a model's)."""
    if not isinstance(key, str) or not _BLOB_KEY.match(key) or ".." in key:
        raise ValueError(f"invalid blob key {key!r}: _folder/name[/name...] without '..'")
    return f"{check_tenant(tenant)}/{key}"


def model_key(tenant: str, model: str) -> str:
    """`<tenant>/<model>`, after validating both names."""
    return f"{check_tenant(tenant)}/{check_model(model)}"


def stored_meta(meta: dict[str, Any], version: int, artifact: bytes) -> dict[str, Any]:
    """The caller's meta plus the fields the registry owns (they win over the caller's)."""
    return {
        **meta,
        "version": version,
        "sha256": hashlib.sha256(artifact).hexdigest(),
        "size": len(artifact),
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def dump_json(doc: dict[str, Any]) -> bytes:
    """Serialise before any I/O, so an unserialisable meta leaves no half-written version."""
    if not isinstance(doc, dict):
        raise TypeError(f"expected a JSON object, got {type(doc).__name__}")
    return json.dumps(doc, separators=(",", ":")).encode()


def load_json(data: bytes) -> dict[str, Any]:
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise RegistryError("registry document is not a JSON object")
    return doc


def verify_artifact(meta: dict[str, Any], artifact: bytes) -> bytes:
    """Return the artifact if it matches meta.json, else raise ChecksumMismatch."""
    digest = hashlib.sha256(artifact).hexdigest()
    if digest != meta.get("sha256") or len(artifact) != meta.get("size"):
        raise ChecksumMismatch(
            f"version {meta.get('version')}: artifact sha256 {digest} ({len(artifact)} bytes) "
            f"!= meta.json {meta.get('sha256')} ({meta.get('size')} bytes)"
        )
    return artifact
