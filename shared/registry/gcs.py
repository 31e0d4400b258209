"""`gs://bucket/prefix`: the registry in Cloud Storage, shared by every instance.

Exclusive creates are `if_generation_match=0` and alias moves `if_generation_match=<gen>`:
GCS answers 412 when the precondition fails, which becomes VersionExists / AliasConflict.
The client is blocking (requests), so every call runs in a thread.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import requests
from google.api_core import exceptions as gexc
from google.auth.exceptions import TransportError
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from shared.executors import run_in
from shared.registry.base import (
    ALIASES,
    ARTIFACT,
    DEFINITION,
    KEPT_ON_DELETE,
    META,
    VERSIONS,
    AliasConflict,
    Aliases,
    Doc,
    RegistryUnavailable,
    VersionExists,
    VersionNotFound,
    blob_key,
    check_doc,
    check_tenant,
    check_version,
    dump_json,
    high_water,
    load_json,
    model_key,
    raise_high_water,
    stored_meta,
    verify_artifact,
)

T = TypeVar("T")

# Transient by nature: after the client's own retries these mean "GCS is not answering".
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    gexc.RetryError,
    gexc.ServerError,  # 500, 502, 503 (ServiceUnavailable), 504
    gexc.TooManyRequests,
    TransportError,  # credentials refresh could not reach the token server
)
# The prefix goes into match_glob patterns, so it must hold no glob metacharacters.
_PREFIX = re.compile(r"^[A-Za-z0-9_.\-/]*$")
_JSON = "application/json"


class GcsRegistry:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: storage.Client | None = None,
        timeout: float = 10.0,
        retry_seconds: float = 30.0,
        executor: Executor | None = None,
    ) -> None:
        if not bucket or not _PREFIX.match(prefix) or ".." in prefix:
            raise ValueError(f"invalid GCS location gs://{bucket}/{prefix}")
        self.bucket_name = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._client = client
        self.executor = executor  # IO_WORKERS (shared/executors.py)
        self._client_lock = threading.Lock()
        self._timeout = timeout
        self._retry = DEFAULT_RETRY.with_timeout(retry_seconds)

    async def put_definition(self, tenant: str, model: str, definition: dict[str, Any]) -> None:
        name, data = self._key(tenant, model, DEFINITION), dump_json(definition)
        # An overwrite with the same bytes is idempotent, so retrying it is safe.
        await self._run(lambda: self._upload(name, data, _JSON))

    async def get_definition(self, tenant: str, model: str) -> dict[str, Any] | None:
        name = self._key(tenant, model, DEFINITION)
        return await self._run(lambda: self._read_json(name))

    async def list_models(self, tenant: str) -> list[str]:
        prefix = f"{self.prefix}{check_tenant(tenant)}/"
        shape = re.compile(re.escape(prefix) + r"([^/]+)/" + re.escape(DEFINITION))
        names = await self._run(lambda: self._names(prefix, f"{prefix}*/{DEFINITION}"))
        return sorted(m.group(1) for n in names if (m := shape.fullmatch(n)))

    async def delete_model(self, tenant: str, model: str) -> None:
        prefix = self._key(tenant, model, "")

        kept = {prefix + name for name in KEPT_ON_DELETE}

        def delete() -> None:
            bucket = self._bucket()
            listing = self._storage().list_blobs(bucket, prefix=prefix, **self._opts())
            # model.json first: from then on the model is not listed, whatever is left; the
            # high-water marks outlive the model
            blobs = sorted(
                (b for b in listing if b.name not in kept),
                key=lambda b: not b.name.endswith("/" + DEFINITION),
            )
            # on_error: a blob deleted concurrently is already where we want it.
            bucket.delete_blobs(blobs, on_error=lambda _blob: None, **self._opts())

        await self._run(delete)

    async def create_version(
        self, tenant: str, model: str, version: int, artifact: bytes, meta: dict[str, Any]
    ) -> dict[str, Any]:
        base = self._key(tenant, model, f"{VERSIONS}/{check_version(version)}/")
        stored = stored_meta(meta, version, artifact)
        meta_bytes = dump_json(stored)
        # the mark first: no version exists that the high-water mark does not cover
        await raise_high_water(self, tenant, model, version=version)

        def create() -> None:
            try:
                self._upload(base + ARTIFACT, artifact, "application/octet-stream", generation=0)
            except gexc.PreconditionFailed as exc:
                raise VersionExists(f"{tenant}/{model} version {version} exists") from exc
            try:
                self._upload(base + META, meta_bytes, _JSON, generation=0)
            except gexc.PreconditionFailed as exc:
                # Only the writer that created model.pkl gets here, so a 412 means our own
                # request landed and its response was lost, then the client retried it.
                if self._blob(base + META).download_as_bytes(**self._opts()) != meta_bytes:
                    raise VersionExists(f"{tenant}/{model} version {version} exists") from exc

        await self._run(create)
        return stored

    async def next_version(self, tenant: str, model: str) -> int:
        prefix = self._key(tenant, model, f"{VERSIONS}/")

        def taken() -> list[int]:
            # One folder per version number, visible or not: a create that died before
            # meta.json still holds its number.
            listing = self._storage().list_blobs(
                self._bucket(), prefix=prefix, delimiter="/", **self._opts()
            )
            for _page in listing.pages:  # prefixes fill in as the pages are read
                pass
            folders = (p[len(prefix) :].rstrip("/") for p in listing.prefixes)
            return [int(f) for f in folders if f.isdecimal() and str(int(f)) == f]

        marks = await high_water(self, tenant, model)  # versions of a deleted incarnation
        return max(*await self._run(taken), marks.get("version", 0), 0) + 1

    async def list_versions(self, tenant: str, model: str) -> list[dict[str, Any]]:
        prefix = self._key(tenant, model, f"{VERSIONS}/")
        shape = re.compile(re.escape(prefix) + r"[1-9][0-9]*/" + re.escape(META))
        names = await self._run(lambda: self._names(prefix, f"{prefix}*/{META}"))
        wanted = [n for n in names if shape.fullmatch(n)]
        # One GET per meta: run them side by side rather than one after another.
        metas = await asyncio.gather(*(self._run(lambda n=n: self._read_json(n)) for n in wanted))
        return sorted((m for m in metas if m is not None), key=lambda m: m["version"])

    async def get_version(self, tenant: str, model: str, version: int) -> dict[str, Any] | None:
        name = self._key(tenant, model, f"{VERSIONS}/{check_version(version)}/{META}")
        return await self._run(lambda: self._read_json(name))

    async def load_artifact(self, tenant: str, model: str, version: int) -> bytes:
        base = self._key(tenant, model, f"{VERSIONS}/{check_version(version)}/")

        def load() -> bytes:
            meta = self._read_json(base + META)
            if meta is None:
                raise VersionNotFound(f"{tenant}/{model} version {version} not found")
            try:
                artifact = self._blob(base + ARTIFACT).download_as_bytes(**self._opts())
            except gexc.NotFound as exc:
                raise VersionNotFound(
                    f"{tenant}/{model} version {version} has no artifact"
                ) from exc
            return verify_artifact(meta, artifact)

        return await self._run(load)

    async def read_aliases(self, tenant: str, model: str) -> Aliases:
        return await self.read_doc(tenant, model, ALIASES)

    async def write_aliases(
        self, tenant: str, model: str, doc: dict[str, Any], expected_generation: str | None
    ) -> str:
        return await self.write_doc(tenant, model, ALIASES, doc, expected_generation)

    async def read_doc(self, tenant: str, model: str, name: str) -> Doc:
        key = self._key(tenant, model, check_doc(name))

        def read() -> Doc:
            blob = self._blob(key)
            try:
                data = blob.download_as_bytes(**self._opts())
            except gexc.NotFound:
                return Doc({}, None)
            # The generation comes from the same response as the bytes, so they match.
            return Doc(load_json(data), str(blob.generation))

        return await self._run(read)

    async def write_doc(
        self, tenant: str, model: str, name: str, doc: dict[str, Any], expected: str | None
    ) -> str:
        key, data = self._key(tenant, model, check_doc(name)), dump_json(doc)
        generation = 0 if expected is None else int(expected)

        def write() -> str:
            try:
                blob = self._upload(key, data, _JSON, generation=generation)
            except gexc.PreconditionFailed as exc:
                raise AliasConflict(
                    f"{tenant}/{model}/{name} is no longer at generation {expected}"
                ) from exc
            return str(blob.generation)

        return await self._run(write)

    async def ping(self) -> None:
        def check() -> None:
            try:
                # No retries: a health check wants the answer now.
                listing = self._storage().list_blobs(
                    self._bucket(),
                    prefix=self.prefix,
                    max_results=1,
                    timeout=self._timeout,
                    retry=None,
                )
                list(listing)
            except gexc.GoogleAPICallError as exc:  # missing bucket, no permission
                raise RegistryUnavailable(f"gs://{self.bucket_name}: {exc}") from exc

        await self._run(check)

    async def put_blob(
        self, tenant: str, key: str, data: bytes, *, exclusive: bool = False
    ) -> bool:
        name = self.prefix + blob_key(tenant, key)

        def put() -> bool:
            try:
                self._upload(name, data, "application/octet-stream", 0 if exclusive else None)
            except gexc.PreconditionFailed:
                return False
            return True

        return await self._run(put)

    async def get_blob(self, tenant: str, key: str) -> bytes | None:
        name = self.prefix + blob_key(tenant, key)

        def get() -> bytes | None:
            try:
                return self._blob(name).download_as_bytes(**self._opts())
            except gexc.NotFound:
                return None

        return await self._run(get)

    async def list_blobs(self, tenant: str, prefix: str) -> list[str]:
        base = f"{self.prefix}{check_tenant(tenant)}/"
        start = self.prefix + blob_key(tenant, prefix)

        def names() -> list[str]:
            listing = self._storage().list_blobs(self._bucket(), prefix=start, **self._opts())
            return sorted(blob.name[len(base) :] for blob in listing)

        return await self._run(names)

    def blob_uri(self, tenant: str, key: str) -> str:
        return f"gs://{self.bucket_name}/{self.prefix}{blob_key(tenant, key)}"

    def _key(self, tenant: str, model: str, rest: str) -> str:
        return f"{self.prefix}{model_key(tenant, model)}/{rest}"

    def _storage(self) -> storage.Client:
        # Built on first use, in a worker thread: storage.Client() looks up credentials,
        # which can block on the metadata server.
        with self._client_lock:
            if self._client is None:
                self._client = storage.Client()
            return self._client

    def _bucket(self) -> storage.Bucket:
        return self._storage().bucket(self.bucket_name)

    def _blob(self, name: str) -> storage.Blob:
        return self._bucket().blob(name)

    def _opts(self) -> dict[str, Any]:
        return {"timeout": self._timeout, "retry": self._retry}

    def _upload(
        self, name: str, data: bytes, content_type: str, generation: int | None = None
    ) -> storage.Blob:
        blob = self._blob(name)
        blob.upload_from_string(
            data, content_type=content_type, if_generation_match=generation, **self._opts()
        )
        return blob

    def _read_json(self, name: str) -> dict[str, Any] | None:
        try:
            return load_json(self._blob(name).download_as_bytes(**self._opts()))
        except gexc.NotFound:
            return None

    def _names(self, prefix: str, glob: str) -> list[str]:
        # match_glob saves listing every artifact on real GCS; callers still filter the
        # names, since fake-gcs-server ignores matchGlob and lists the whole prefix.
        listing = self._storage().list_blobs(
            self._bucket(), prefix=prefix, match_glob=glob, **self._opts()
        )
        return [blob.name for blob in listing]

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await run_in(self.executor, fn)
        except _UNAVAILABLE as exc:
            raise RegistryUnavailable(f"gs://{self.bucket_name}: {exc}") from exc
