"""`file://<path>`: the registry in a local directory (make run, tests, one machine).

Exclusive creates are a temp file plus `os.link`, which fails if the target exists, so a
version is never half-written under its final name. Alias compare-and-set holds an exclusive
`flock` on `aliases.lock`; the generation counter lives in the sidecar `aliases.gen`, so
aliases.json holds the caller's document exactly as on GCS.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

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
    RegistryError,
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

_LOCK = "aliases.lock"
_TMP = ".tmp-"


class FilesystemRegistry:
    def __init__(self, root: str | os.PathLike[str], *, executor: Executor | None = None) -> None:
        # abspath, not resolve(): no I/O here, and a later chdir cannot move the registry.
        self.root = Path(os.path.abspath(root))
        self.executor = executor  # IO_WORKERS (shared/executors.py)

    async def put_definition(self, tenant: str, model: str, definition: dict[str, Any]) -> None:
        path = self._model_dir(tenant, model) / DEFINITION
        await self._run(_write_replace, path, dump_json(definition))

    async def get_definition(self, tenant: str, model: str) -> dict[str, Any] | None:
        return await self._run(_read_json, self._model_dir(tenant, model) / DEFINITION)

    async def list_models(self, tenant: str) -> list[str]:
        tenant_dir = self.root / check_tenant(tenant)

        def scan() -> list[str]:
            try:
                entries = list(tenant_dir.iterdir())
            except FileNotFoundError:
                return []
            return sorted(e.name for e in entries if (e / DEFINITION).is_file())

        return await self._run(scan)

    async def delete_model(self, tenant: str, model: str) -> None:
        model_dir = self._model_dir(tenant, model)
        kept = {*KEPT_ON_DELETE, *map(_generation_file, KEPT_ON_DELETE), _LOCK}

        def delete() -> None:
            # model.json first: from then on the model is not listed, whatever is left
            with contextlib.suppress(FileNotFoundError):
                (model_dir / DEFINITION).unlink()
            try:
                entries = list(model_dir.iterdir())
            except FileNotFoundError:
                return
            for entry in entries:
                if entry.name in kept:
                    continue  # the high-water marks outlive the model; the lock file stays
                with contextlib.suppress(FileNotFoundError):
                    if entry.is_dir():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()

        await self._run(delete)

    async def create_version(
        self, tenant: str, model: str, version: int, artifact: bytes, meta: dict[str, Any]
    ) -> dict[str, Any]:
        version_dir = self._version_dir(tenant, model, version)
        stored = stored_meta(meta, version, artifact)
        meta_bytes = dump_json(stored)
        # the mark first: no version exists that the high-water mark does not cover
        await raise_high_water(self, tenant, model, version=version)

        def create() -> None:
            version_dir.mkdir(parents=True, exist_ok=True)
            try:
                _write_exclusive(version_dir / ARTIFACT, artifact)
                # Only the writer that created model.pkl gets here; meta.json makes it visible.
                _write_exclusive(version_dir / META, meta_bytes)
            except FileExistsError as exc:
                raise VersionExists(f"{tenant}/{model} version {version} exists") from exc

        await self._run(create)
        return stored

    async def next_version(self, tenant: str, model: str) -> int:
        versions_dir = self._model_dir(tenant, model) / VERSIONS
        # Count every version folder, visible or not: a create that died before meta.json
        # still holds its number, and handing that number out again would fail forever. The
        # high-water mark covers the versions of a deleted incarnation of the name.
        taken = await self._run(_version_numbers, versions_dir)
        marks = await high_water(self, tenant, model)
        return max(*taken, marks.get("version", 0), 0) + 1

    async def list_versions(self, tenant: str, model: str) -> list[dict[str, Any]]:
        versions_dir = self._model_dir(tenant, model) / VERSIONS

        def scan() -> list[dict[str, Any]]:
            metas = (
                _read_json(versions_dir / str(n) / META) for n in _version_numbers(versions_dir)
            )
            return [m for m in metas if m is not None]

        return await self._run(scan)

    async def get_version(self, tenant: str, model: str, version: int) -> dict[str, Any] | None:
        return await self._run(_read_json, self._version_dir(tenant, model, version) / META)

    async def load_artifact(self, tenant: str, model: str, version: int) -> bytes:
        version_dir = self._version_dir(tenant, model, version)

        def load() -> bytes:
            meta = _read_json(version_dir / META)
            if meta is None:
                raise VersionNotFound(f"{tenant}/{model} version {version} not found")
            try:
                artifact = (version_dir / ARTIFACT).read_bytes()
            except FileNotFoundError as exc:
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
        model_dir, name = self._model_dir(tenant, model), check_doc(name)

        def read() -> Doc:
            if not model_dir.is_dir():
                return Doc({}, None)  # a read never creates folders
            with _locked(model_dir, fcntl.LOCK_SH):
                return Doc(_read_json(model_dir / name) or {}, _generation(model_dir, name))

        return await self._run(read)

    async def write_doc(
        self, tenant: str, model: str, name: str, doc: dict[str, Any], expected: str | None
    ) -> str:
        model_dir, name = self._model_dir(tenant, model), check_doc(name)
        data = dump_json(doc)

        def write() -> str:
            model_dir.mkdir(parents=True, exist_ok=True)
            with _locked(model_dir, fcntl.LOCK_EX):
                current = _generation(model_dir, name)
                if current != expected:
                    raise AliasConflict(
                        f"{tenant}/{model}/{name} is at generation {current}, not {expected}"
                    )
                # Clock-based like GCS generations, so a generation read before a delete_model
                # can never match one issued after it.
                new = str(max(_counter(model_dir, name) + 1, time.time_ns()))
                # Document first, counter last: a crash in between leaves the old generation,
                # so the dead write simply loses to the next writer.
                _write_replace(model_dir / name, data)
                _write_replace(model_dir / _generation_file(name), new.encode())
                return new

        return await self._run(write)

    async def ping(self) -> None:
        def check() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise RegistryUnavailable(f"registry root {self.root} is not writable")

        await self._run(check)

    async def put_blob(
        self, tenant: str, key: str, data: bytes, *, exclusive: bool = False
    ) -> bool:
        path = self.root / blob_key(tenant, key)

        def put() -> bool:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not exclusive:
                _write_replace(path, data)
                return True
            try:
                _write_exclusive(path, data)
            except FileExistsError:
                return False
            return True

        return await self._run(put)

    async def get_blob(self, tenant: str, key: str) -> bytes | None:
        path = self.root / blob_key(tenant, key)

        def get() -> bytes | None:
            try:
                return path.read_bytes()
            except FileNotFoundError:
                return None

        return await self._run(get)

    async def list_blobs(self, tenant: str, prefix: str) -> list[str]:
        base = self.root / check_tenant(tenant)
        start = self.root / blob_key(tenant, prefix)

        def scan() -> list[str]:
            if not start.is_dir():
                return []
            return sorted(
                str(p.relative_to(base))
                for p in start.rglob("*")
                if p.is_file() and not p.name.startswith(_TMP)
            )

        return await self._run(scan)

    def blob_uri(self, tenant: str, key: str) -> str:
        return f"file://{self.root / blob_key(tenant, key)}"

    def _model_dir(self, tenant: str, model: str) -> Path:
        return self.root / model_key(tenant, model)

    def _version_dir(self, tenant: str, model: str, version: int) -> Path:
        return self._model_dir(tenant, model) / VERSIONS / str(check_version(version))

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking file I/O in a thread; an OSError left unhandled means no registry."""
        try:
            return await run_in(self.executor, fn, *args)
        except RegistryError:
            raise
        except OSError as exc:
            raise RegistryUnavailable(f"registry at {self.root}: {exc}") from exc


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return load_json(path.read_bytes())
    except FileNotFoundError:
        return None


def _version_numbers(versions_dir: Path) -> list[int]:
    try:
        names = [e.name for e in versions_dir.iterdir()]
    except FileNotFoundError:
        return []
    return sorted(int(n) for n in names if n.isdecimal() and str(int(n)) == n)


def _temp_copy(directory: Path, data: bytes) -> str:
    """A fully written, fsynced temp file in `directory`, ready to be linked or renamed."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=_TMP)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _write_exclusive(path: Path, data: bytes) -> None:
    """Create `path` with `data`; FileExistsError if it exists. Never visible half-written."""
    tmp = _temp_copy(path.parent, data)
    try:
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


def _write_replace(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_copy(path.parent, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(model_dir: Path, operation: int) -> Iterator[None]:
    # One open file description per call, so threads of one process exclude each other too.
    fd = os.open(model_dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)  # releases the lock


def _generation_file(name: str) -> str:
    """The sidecar holding a document's generation counter: aliases.json → aliases.gen."""
    return name.removesuffix(".json") + ".gen"


def _counter(model_dir: Path, name: str) -> int:
    try:
        return int((model_dir / _generation_file(name)).read_text())
    except FileNotFoundError:
        return 0


def _generation(model_dir: Path, name: str) -> str | None:
    """None while the document does not exist; the counter keeps counting across deletions."""
    if not (model_dir / name).exists():
        return None
    return str(_counter(model_dir, name))
