"""Model registry backends behind one interface: pick one from MODEL_REGISTRY_URI (architecture.md §5)."""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from shared.edge.errors import register
from shared.registry.base import (
    AliasConflict,
    Aliases,
    ChecksumMismatch,
    Doc,
    Registry,
    RegistryError,
    RegistryUnavailable,
    VersionExists,
    VersionNotFound,
)
from shared.registry.filesystem import FilesystemRegistry

if TYPE_CHECKING:
    from google.cloud import storage

# How the registry's failures are answered (shared/edge/errors.py; architecture.md §3).
register(
    ChecksumMismatch,
    409,
    "checksum_mismatch",
    "the stored artifact is corrupt: {exc}",
    log_level=logging.ERROR,
    log_as="registry artifact failed its checksum",
)
for _race in (VersionExists, AliasConflict):
    # a race another writer won (shared/lifecycle.py serialises its own; this is the rest)
    register(
        _race,
        409,
        "registry_conflict",
        "the model changed concurrently; retry",
        log_level=logging.WARNING,
        log_as="registry conflict",
    )
register(VersionNotFound, 404, "version_not_found", "that version does not exist for this model")
register(
    RegistryUnavailable,
    503,
    "registry_unavailable",
    "the model registry is unreachable; retry",
    retry_after=2,
    log_level=logging.WARNING,
    log_as="registry unavailable",
)


def open_registry(
    uri: str, *, gcs_client: storage.Client | None = None, executor: Executor | None = None
) -> Registry:
    """`file://<relative or absolute path>` or `gs://bucket[/prefix]`."""
    if uri.startswith("file://"):
        path = uri.removeprefix("file://")
        if not path:
            raise ValueError(f"registry URI {uri!r} has no path")
        return FilesystemRegistry(path, executor=executor)
    if uri.startswith("gs://"):
        # Imported here: google-cloud-storage costs ~0.2 s of cold start, paid only on GCS.
        from shared.registry.gcs import GcsRegistry

        bucket, _, prefix = uri.removeprefix("gs://").partition("/")
        return GcsRegistry(bucket, prefix, client=gcs_client, executor=executor)
    raise ValueError(f"registry URI {uri!r} must start with file:// or gs://")


__all__ = [
    "AliasConflict",
    "Aliases",
    "ChecksumMismatch",
    "Doc",
    "FilesystemRegistry",
    "Registry",
    "RegistryError",
    "RegistryUnavailable",
    "VersionExists",
    "VersionNotFound",
    "open_registry",
]
