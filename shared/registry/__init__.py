"""Model registry backends behind one interface: pick one from MODEL_REGISTRY_URI (architecture.md §5)."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import TYPE_CHECKING

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
