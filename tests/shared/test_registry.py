"""The model registry contract, run against both backends (a directory and a real fake-gcs-server)."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.edge.errors import api_error_of
from shared.registry import (
    AliasConflict,
    ChecksumMismatch,
    FilesystemRegistry,
    Registry,
    RegistryUnavailable,
    VersionExists,
    VersionNotFound,
    open_registry,
)
from shared.registry.base import STATE, high_water, raise_high_water, update_doc
from shared.registry.gcs import GcsRegistry
from tests.gcs_server import gcs_client
from tests.servers import free_port

RawWrite = Callable[[str, bytes], None]


@pytest.fixture(params=["file", "gcs"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    if request.param == "file":
        return open_registry(f"file://{tmp_path / 'registry'}")
    client = gcs_client(request.getfixturevalue("gcs_server"))
    bucket = f"reg-{uuid.uuid4().hex[:12]}"  # one bucket per test: no cleanup, no crosstalk
    client.create_bucket(bucket)
    return open_registry(f"gs://{bucket}/some/prefix", gcs_client=client)


@pytest.fixture
def raw_write(request: pytest.FixtureRequest, registry: Registry) -> RawWrite:
    """Write bytes under the registry root behind its back (a key like `t/m/versions/1/...`)."""
    if isinstance(registry, FilesystemRegistry):

        def write_file(key: str, data: bytes) -> None:
            path = registry.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        return write_file
    assert isinstance(registry, GcsRegistry)
    bucket = gcs_client(request.getfixturevalue("gcs_server")).bucket(registry.bucket_name)

    def write_blob(key: str, data: bytes) -> None:
        bucket.blob(registry.prefix + key).upload_from_string(data)

    return write_blob


async def test_definitions(registry: Registry) -> None:
    assert await registry.list_models("acme") == []
    assert await registry.get_definition("acme", "m1") is None
    await registry.put_definition("acme", "m1", {"kind": "linear", "params": {"lr": 0.1}})
    await registry.put_definition("acme", "m0.v2", {"kind": "tree"})
    await registry.put_definition("acme", "m1", {"kind": "linear", "params": {"lr": 0.2}})
    assert await registry.get_definition("acme", "m1") == {"kind": "linear", "params": {"lr": 0.2}}
    # a model with versions and aliases but no definition is not a model
    await registry.create_version("acme", "orphan", 1, b"x", {})
    await registry.write_aliases("acme", "orphan", {"prod": 1}, None)
    assert await registry.list_models("acme") == ["m0.v2", "m1"]

    await registry.create_version("acme", "m1", 1, b"a", {})
    await registry.write_aliases("acme", "m1", {"prod": 1}, None)
    await registry.delete_model("acme", "m1")
    await registry.delete_model("acme", "m1")  # deleting nothing is fine
    assert await registry.list_models("acme") == ["m0.v2"]
    assert await registry.get_definition("acme", "m1") is None
    assert await registry.list_versions("acme", "m1") == []
    # the high-water mark outlives the model: a recreated m1 never reuses version 1
    assert await registry.next_version("acme", "m1") == 2
    assert (await registry.read_aliases("acme", "m1")).generation is None


async def test_create_list_load_round_trip(registry: Registry) -> None:
    before = datetime.now().astimezone()
    caller_meta = {"kind": "linear", "rows": 10, "sha256": "spoofed", "version": 99}
    meta1 = await registry.create_version("acme", "m", 1, b"artifact-one", caller_meta)
    meta2 = await registry.create_version("acme", "m", 2, b"artifact-two!", {"parent": 1})

    # the registry owns version, sha256, size and created_at; the rest is the caller's
    assert meta1["kind"] == "linear" and meta1["rows"] == 10
    assert meta1["version"] == 1 and meta1["size"] == len(b"artifact-one")
    assert meta1["sha256"] == hashlib.sha256(b"artifact-one").hexdigest()
    created = datetime.fromisoformat(meta1["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= created <= datetime.now().astimezone()

    assert await registry.list_versions("acme", "m") == [meta1, meta2]
    assert await registry.get_version("acme", "m", 2) == meta2
    assert await registry.get_version("acme", "m", 3) is None
    assert await registry.load_artifact("acme", "m", 1) == b"artifact-one"
    assert await registry.load_artifact("acme", "m", 2) == b"artifact-two!"
    with pytest.raises(VersionNotFound):
        await registry.load_artifact("acme", "m", 3)
    with pytest.raises(VersionExists):
        await registry.create_version("acme", "m", 1, b"again", {})
    assert await registry.load_artifact("acme", "m", 1) == b"artifact-one"


async def test_corrupt_artifact_is_never_loaded(registry: Registry, raw_write: RawWrite) -> None:
    await registry.create_version("acme", "m", 1, b"good bytes", {})
    raw_write("acme/m/versions/1/model.pkl", b"evil bytes")  # same size, other content
    with pytest.raises(ChecksumMismatch):
        await registry.load_artifact("acme", "m", 1)
    raw_write("acme/m/versions/1/model.pkl", b"good bytes and more")
    with pytest.raises(ChecksumMismatch):
        await registry.load_artifact("acme", "m", 1)


async def test_concurrent_creates_of_one_version_on_the_event_loop(registry: Registry) -> None:
    for version in (1, 2, 3):
        results = await asyncio.gather(
            registry.create_version("acme", "m", version, b"from A", {"writer": "A"}),
            registry.create_version("acme", "m", version, b"from B", {"writer": "B"}),
            return_exceptions=True,
        )
        won = [r for r in results if isinstance(r, dict)]
        lost = [r for r in results if isinstance(r, VersionExists)]
        assert len(won) == 1 and len(lost) == 1, results
        artifact = await registry.load_artifact("acme", "m", version)
        assert artifact == f"from {won[0]['writer']}".encode()
    assert [m["version"] for m in await registry.list_versions("acme", "m")] == [1, 2, 3]


def test_concurrent_creates_of_one_version_in_threads(registry: Registry) -> None:
    writers = 4
    barrier = threading.Barrier(writers)

    def create(i: int) -> str:
        barrier.wait()  # release them together
        try:
            asyncio.run(registry.create_version("acme", "m", 1, f"w{i}".encode(), {"w": i}))
        except VersionExists:
            return "lost"
        return "won"

    with ThreadPoolExecutor(writers) as pool:
        outcomes = list(pool.map(create, range(writers)))
    assert sorted(outcomes) == ["lost"] * (writers - 1) + ["won"]
    (meta,) = asyncio.run(registry.list_versions("acme", "m"))
    assert asyncio.run(registry.load_artifact("acme", "m", 1)) == f"w{meta['w']}".encode()


async def test_next_version_counts_unfinished_versions(
    registry: Registry, raw_write: RawWrite
) -> None:
    assert await registry.next_version("acme", "m") == 1
    await registry.create_version("acme", "m", 1, b"1", {})
    assert await registry.next_version("acme", "m") == 2
    await registry.create_version("acme", "m", 3, b"3", {})
    assert await registry.next_version("acme", "m") == 4
    # a create that died after model.pkl: invisible, but its number stays taken
    raw_write("acme/m/versions/4/model.pkl", b"half")
    assert await registry.next_version("acme", "m") == 5
    assert [m["version"] for m in await registry.list_versions("acme", "m")] == [1, 3]
    assert await registry.get_version("acme", "m", 4) is None
    with pytest.raises(VersionNotFound):
        await registry.load_artifact("acme", "m", 4)


async def test_publishers_racing_on_next_version_get_distinct_versions(registry: Registry) -> None:
    async def publish(i: int) -> int:
        while True:
            version = await registry.next_version("acme", "m")
            try:
                await registry.create_version("acme", "m", version, f"p{i}".encode(), {"p": i})
            except VersionExists:
                continue
            return version

    versions = await asyncio.gather(*(publish(i) for i in range(5)))
    assert sorted(versions) == [1, 2, 3, 4, 5]
    for meta in await registry.list_versions("acme", "m"):
        artifact = await registry.load_artifact("acme", "m", meta["version"])
        assert artifact == f"p{meta['p']}".encode()


async def test_alias_compare_and_set_under_concurrency(registry: Registry) -> None:
    successes: list[str] = []
    conflicts = 0

    async def add_alias(i: int) -> None:
        nonlocal conflicts
        while True:  # read-modify-write, retried until it is not lost
            current = await registry.read_aliases("acme", "m")
            doc: dict[str, Any] = {**current.doc, f"alias-{i}": i}
            try:
                successes.append(await registry.write_aliases("acme", "m", doc, current.generation))
                return
            except AliasConflict:
                conflicts += 1

    await asyncio.gather(*(add_alias(i) for i in range(8)))
    final = await registry.read_aliases("acme", "m")
    assert final.doc == {f"alias-{i}": i for i in range(8)}
    assert len(successes) == 8 and len(set(successes)) == 8  # one generation per write
    assert final.generation in successes


async def test_stale_generation_write_fails(registry: Registry) -> None:
    empty = await registry.read_aliases("acme", "m")
    assert (empty.doc, empty.generation) == ({}, None)
    g1 = await registry.write_aliases("acme", "m", {"prod": 1}, None)
    with pytest.raises(AliasConflict):
        await registry.write_aliases("acme", "m", {"prod": 9}, None)  # exists already
    g2 = await registry.write_aliases("acme", "m", {"prod": 2}, g1)
    assert g2 != g1
    with pytest.raises(AliasConflict):
        await registry.write_aliases("acme", "m", {"prod": 9}, g1)  # stale
    assert await registry.read_aliases("acme", "m") == type(empty)({"prod": 2}, g2)


async def test_tenants_are_isolated(registry: Registry) -> None:
    await registry.put_definition("a", "m", {"owner": "a"})
    await registry.put_definition("b", "m", {"owner": "b"})
    await registry.create_version("a", "m", 1, b"a1", {})
    await registry.write_aliases("a", "m", {"prod": 1}, None)
    assert await registry.list_models("a") == ["m"]
    assert await registry.list_models("b") == ["m"]
    assert await registry.list_models("c") == []
    assert await registry.get_definition("b", "m") == {"owner": "b"}
    assert await registry.list_versions("b", "m") == []
    assert await registry.next_version("b", "m") == 1
    assert (await registry.read_aliases("b", "m")).generation is None
    await registry.create_version("b", "m", 1, b"b1", {})  # version 1 of another tenant
    assert await registry.load_artifact("a", "m", 1) == b"a1"
    await registry.delete_model("b", "m")
    assert await registry.list_models("b") == []
    assert await registry.get_definition("a", "m") == {"owner": "a"}


BAD_TENANTS = ["../x", "a/b", "..", "", "Acme", "-a", "a b"]
BAD_MODELS = ["../x", "a/b", "..", "", "x..y", ".hidden", "a\\b", "m/../../b"]


@pytest.mark.parametrize("name", BAD_MODELS)
async def test_bad_model_names_are_rejected_before_any_io(registry: Registry, name: str) -> None:
    calls = [
        registry.put_definition("acme", name, {}),
        registry.get_definition("acme", name),
        registry.delete_model("acme", name),
        registry.create_version("acme", name, 1, b"x", {}),
        registry.next_version("acme", name),
        registry.list_versions("acme", name),
        registry.get_version("acme", name, 1),
        registry.load_artifact("acme", name, 1),
        registry.read_aliases("acme", name),
        registry.write_aliases("acme", name, {}, None),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            await call
    assert await registry.list_models("acme") == []
    if isinstance(registry, FilesystemRegistry):
        assert not registry.root.exists()


@pytest.mark.parametrize("tenant", BAD_TENANTS)
async def test_bad_tenants_are_rejected(registry: Registry, tenant: str) -> None:
    with pytest.raises(ValueError):
        await registry.list_models(tenant)
    with pytest.raises(ValueError):
        await registry.put_definition(tenant, "m", {})
    with pytest.raises(ValueError):
        await registry.write_aliases(tenant, "m", {}, None)


@pytest.mark.parametrize("version", [0, -1, True, "1"])
async def test_bad_versions_are_rejected(registry: Registry, version: Any) -> None:
    with pytest.raises(ValueError):
        await registry.create_version("acme", "m", version, b"x", {})
    with pytest.raises(ValueError):
        await registry.load_artifact("acme", "m", version)


async def test_ping(registry: Registry) -> None:
    await registry.ping()


async def test_unreachable_backends_raise_registry_unavailable(
    tmp_path: Path, gcs_server: str
) -> None:
    (tmp_path / "not-a-dir").write_bytes(b"")
    on_a_file = open_registry(f"file://{tmp_path / 'not-a-dir'}")
    with pytest.raises(RegistryUnavailable):
        await on_a_file.ping()
    with pytest.raises(RegistryUnavailable):
        await on_a_file.put_definition("acme", "m", {})

    no_bucket = open_registry("gs://no-such-bucket", gcs_client=gcs_client(gcs_server))
    with pytest.raises(RegistryUnavailable):
        await no_bucket.ping()

    dead = GcsRegistry(
        "reg", client=gcs_client(f"http://127.0.0.1:{free_port()}"), retry_seconds=0.3
    )
    with pytest.raises(RegistryUnavailable):
        await dead.ping()
    with pytest.raises(RegistryUnavailable):
        await dead.get_definition("acme", "m")


def test_open_registry_parses_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_registry("file://./.data/registry")
    assert isinstance(relative, FilesystemRegistry)
    assert relative.root == Path.cwd() / ".data" / "registry"
    absolute = open_registry("file:///srv/registry")
    assert isinstance(absolute, FilesystemRegistry) and absolute.root == Path("/srv/registry")
    gcs = open_registry("gs://bucket/a/b/")
    assert isinstance(gcs, GcsRegistry) and (gcs.bucket_name, gcs.prefix) == ("bucket", "a/b/")
    bare = open_registry("gs://bucket")
    assert isinstance(bare, GcsRegistry) and bare.prefix == ""
    for bad in ["s3://bucket/x", "/plain/path", "file://", "gs://", "gs://b/../x", "gs://b/*"]:
        with pytest.raises(ValueError):
            open_registry(bad)


# ----- high-water marks and documents (issue 11: delete is final, races answer 409) ---------


async def test_high_water_mark_survives_delete_and_recreate(registry: Registry) -> None:
    for version in (1, 2, 3):
        await registry.create_version("acme", "m", version, f"v{version}".encode(), {})
    await registry.put_definition("acme", "m", {"name": "m"})
    await registry.delete_model("acme", "m")
    assert await registry.list_models("acme") == []
    assert await registry.list_versions("acme", "m") == []
    assert await high_water(registry, "acme", "m") == {"version": 3}
    # the recreated name starts above every number the old one used
    assert await registry.next_version("acme", "m") == 4
    await registry.create_version("acme", "m", 4, b"new", {})
    assert await registry.next_version("acme", "m") == 5
    # another model and another tenant have their own marks
    assert await registry.next_version("acme", "other") == 1
    assert await registry.next_version("beta", "m") == 1


async def test_version_numbers_are_never_handed_out_twice_across_a_delete(
    registry: Registry,
) -> None:
    await registry.create_version("acme", "m", 7, b"seven", {})
    await registry.delete_model("acme", "m")
    with pytest.raises(ValueError):
        await registry.create_version("acme", "m", 10**18, b"huge", {})  # over MAX_VERSION
    assert await registry.next_version("acme", "m") == 8


async def test_raise_high_water_only_raises(registry: Registry) -> None:
    await raise_high_water(registry, "acme", "m", version=5, incarnation=2)
    await raise_high_water(registry, "acme", "m", version=3, incarnation=4)
    assert await high_water(registry, "acme", "m") == {"version": 5, "incarnation": 4}


async def test_documents_compare_and_set(registry: Registry) -> None:
    empty = await registry.read_doc("acme", "m", STATE)
    assert empty.doc == {} and empty.generation is None
    first = await registry.write_doc("acme", "m", STATE, {"seq": 1}, None)
    with pytest.raises(AliasConflict):
        await registry.write_doc("acme", "m", STATE, {"seq": 2}, None)  # it exists now
    second = await registry.write_doc("acme", "m", STATE, {"seq": 2}, first)
    with pytest.raises(AliasConflict):
        await registry.write_doc("acme", "m", STATE, {"seq": 3}, first)  # lost the race
    read = await registry.read_doc("acme", "m", STATE)
    assert read.doc == {"seq": 2} and read.generation == second
    with pytest.raises(ValueError):
        await registry.read_doc("acme", "m", "model.pkl")  # only the known documents


async def test_concurrent_document_updates_lose_nothing(registry: Registry) -> None:
    async def bump(i: int) -> None:
        await update_doc(registry, "acme", "m", STATE, lambda d: d.__setitem__(str(i), i))

    await asyncio.gather(*(bump(i) for i in range(8)))
    assert (await registry.read_doc("acme", "m", STATE)).doc == {str(i): i for i in range(8)}


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (VersionExists("v1 exists"), 409, "registry_conflict"),
        (AliasConflict("moved"), 409, "registry_conflict"),
        (VersionNotFound("v9"), 404, "version_not_found"),
        (RegistryUnavailable("down"), 503, "registry_unavailable"),
    ],
)
def test_registry_errors_map_to_4xx_not_500(error: Exception, status: int, code: str) -> None:
    mapped = api_error_of(error)
    assert mapped is not None
    assert (mapped.status, mapped.code) == (status, code)
