"""Tenant-scoped data access: the one place a URI a tenant names becomes something we read.

Every route that takes a file (training `{"uri"}`, a series' csv source, `POST /datasets`)
resolves it here, before any read. A tenant may name only

- `dataset:<id>`: one of its own registered data sets (looked up in its own folder only);
- a file under its own folder of DATA_ROOT: `file://<DATA_ROOT>/<tenant>/…` (or that absolute
  path, or a path relative to the folder), `gs://<bucket>/<prefix>/<tenant>/…` on GCS.

Anything else (another tenant's folder, `..`, a symlink leading out, another absolute path,
another bucket, another scheme) is refused with one fixed 403 `data_access_denied`, whose
message says nothing of the file: not whether it exists, not its columns.

Uploaded data sets live in the same folders (`<DATA_ROOT>/<tenant>/_datasets/<id>/`), so an
upload and a named file obey one rule. DATA_ROOT defaults to `<registry root>/_data`; `_data`
can never be a tenant's folder, since tenant names start with a letter or digit.
"""

from __future__ import annotations

import json
import os
import re

from shared.errors import ApiError, not_found
from shared.registry import Registry, open_registry
from shared.registry.base import check_tenant
from shared.settings import Settings
from shared.tenancy import NAME_PATTERN

DATASET_REF = "dataset:"
DATASETS_FOLDER = "_datasets"
DATASET_META = "meta.json"
UPLOAD_SUFFIX = {"csv": ".csv", "parquet": ".parquet"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# Characters no file a tenant may name contains: they only serve to confuse a parser.
_FORBIDDEN = ("\x00", "\\", "?", "#")


def denied() -> ApiError:
    # One message for every refusal: a different one per case would be an existence oracle.
    return ApiError(
        403,
        "data_access_denied",
        "a tenant reads only its own data: name one of its data sets (dataset:<id>) or a "
        "file under its own data folder (see GET /api/v1/datasets and DATA_ROOT in the README)",
    )


def data_root_uri(settings: Settings) -> str:
    """DATA_ROOT, or `<registry root>/_data` beside the model registry."""
    if settings.data_root:
        root = settings.data_root.rstrip("/")
    else:
        root = f"{settings.model_registry_uri.rstrip('/')}/_data"
    if root.startswith("file://"):
        return "file://" + os.path.abspath(root.removeprefix("file://"))
    return root


class DataAccess:
    """DATA_ROOT: each tenant's folder, its uploads (`store`), and the access rule."""

    def __init__(self, root_uri: str) -> None:
        self.root_uri = root_uri
        # The uploads' blob store: the registry's blob API, rooted at DATA_ROOT.
        self.store: Registry = open_registry(root_uri)
        if root_uri.startswith("file://"):
            self.scheme = "file"
            self.bucket = ""
            # Compared resolved: a root reached through a symlink (/tmp on macOS) still matches.
            self.base = os.path.realpath(root_uri.removeprefix("file://"))
        elif root_uri.startswith("gs://"):
            self.scheme = "gs"
            self.bucket, _, prefix = root_uri.removeprefix("gs://").partition("/")
            self.base = prefix.strip("/")
        else:
            raise ValueError(f"DATA_ROOT {root_uri!r} must start with file:// or gs://")

    def folder_uri(self, tenant: str) -> str:
        """Where the tenant's own files go (what the README tells an operator)."""
        check_tenant(tenant)
        if self.scheme == "file":
            return f"file://{self.base}/{tenant}/"
        return f"gs://{self.bucket}/{self._gcs_folder(tenant)}"

    async def resolve(self, tenant: str, uri: str) -> str:
        """The URI to read for what `tenant` named, or 403 `data_access_denied`."""
        check_tenant(tenant)
        if uri.startswith(DATASET_REF):
            return self.check(tenant, await self._dataset_uri(tenant, uri[len(DATASET_REF) :]))
        return self.check(tenant, uri)

    def check(self, tenant: str, uri: str) -> str:
        """The rule itself, without I/O beyond resolving symlinks: the canonical URI inside the
        tenant's folder, or 403."""
        check_tenant(tenant)
        if not isinstance(uri, str) or not uri or any(c in uri for c in _FORBIDDEN):
            raise denied()
        if uri.startswith("gs://"):
            return self._check_gcs(tenant, uri)
        if uri.startswith("file://"):
            path = uri.removeprefix("file://")
            if not path.startswith("/"):  # file://host/… names another machine's file
                raise denied()
        elif _SCHEME.match(uri):
            raise denied()  # http://, s3://, data:, … : never read on a tenant's behalf
        else:
            path = uri
        if self.scheme == "gs":
            if path.startswith("/") or uri.startswith("file://"):
                raise denied()
            return self._check_gcs(tenant, f"gs://{self.bucket}/{self._gcs_folder(tenant)}{path}")
        return self._check_file(tenant, path)

    def _check_file(self, tenant: str, path: str) -> str:
        if self.scheme != "file" or ".." in path.split("/"):
            raise denied()
        folder = os.path.join(self.base, tenant)
        absolute = path if path.startswith("/") else os.path.join(folder, path)
        # Symlinks resolved: a link in the folder pointing out of it is as foreign as the
        # target; a root reached through a link is compared with its real path too.
        real = os.path.realpath(absolute)
        # (An operator may make a tenant's folder a link to its own volume; tenants make none.)
        inside = (folder + os.sep, os.path.realpath(folder) + os.sep)
        if not real.startswith(inside):
            raise denied()
        return f"file://{real}"

    def _check_gcs(self, tenant: str, uri: str) -> str:
        if self.scheme != "gs":
            raise denied()
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        # Object names are literal on GCS, but "..", "." and "//" have no business in them.
        if bucket != self.bucket or any(s in ("", ".", "..") for s in name.split("/")):
            raise denied()
        if not name.startswith(self._gcs_folder(tenant)):
            raise denied()
        return f"gs://{bucket}/{name}"

    def _gcs_folder(self, tenant: str) -> str:
        return f"{self.base}/{tenant}/" if self.base else f"{tenant}/"

    async def _dataset_uri(self, tenant: str, dataset_id: str) -> str:
        # Only this tenant's catalogue is searched: another tenant's id is simply unknown here.
        if not NAME_PATTERN.match(dataset_id) or ".." in dataset_id:
            raise not_found("dataset", dataset_id[:128])
        raw = await self.store.get_blob(tenant, f"{DATASETS_FOLDER}/{dataset_id}/{DATASET_META}")
        if raw is None:
            raise not_found("dataset", dataset_id)
        return self.dataset_uri(tenant, json.loads(raw))

    def dataset_uri(self, tenant: str, meta: dict[str, object]) -> str:
        """Where a data set's file is now: an upload's is derived from its content (so a
        catalogue moved to another DATA_ROOT keeps working), a registered file's is as stored."""
        if meta.get("source") == "upload":
            key = upload_key(str(meta["dataset_id"]), str(meta["sha256"]), str(meta["format"]))
            return self.store.blob_uri(tenant, key)
        return str(meta["uri"])


def upload_key(dataset_id: str, sha256: str, fmt: str) -> str:
    """An upload's blob key: named by its content, so a retried upload rewrites the same
    bytes and a crash before meta.json leaves the id free."""
    return f"{DATASETS_FOLDER}/{dataset_id}/{sha256[:16]}{UPLOAD_SUFFIX[fmt]}"


__all__ = [
    "DATASETS_FOLDER",
    "DATASET_META",
    "DATASET_REF",
    "DataAccess",
    "data_root_uri",
    "denied",
    "upload_key",
]
