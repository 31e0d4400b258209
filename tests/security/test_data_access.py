"""Data access: a tenant reads only its own data sets and its own folder of DATA_ROOT.

Every route that takes a URI (training, a series' csv source, registering a data set) is tried
with every way out of the tenant's folder: another tenant's upload and folder, `..`, a symlink
leading out, absolute paths, other schemes, another bucket. Each answers 403
`data_access_denied` with one fixed message (nothing of the file: not its columns, not whether
it exists), and nothing changes: no job, no version, no series window, no data set. The
tenant's own data still works, by path, by URI and as `dataset:<id>`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import reset_settings_cache
from tests.security.conftest import assert_envelope, model_state

OTHER = {"X-Tenant-ID": "globex"}
SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
# Distinctive names: any of them in a refusal would be a leak of globex's file.
SECRET_COLUMN = "globex_secret_column"
SECRET_CSV = f"price,{SECRET_COLUMN}\n1.0,2.0\n2.0,3.0\n3.0,4.0\n".encode()
OWN_CSV = b"price,target\n1.0,2.0\n2.0,4.0\n3.0,6.0\n4.0,8.0\n"


@dataclass(frozen=True)
class Route:
    """A route that takes a URI: how to send one."""

    name: str
    method: str
    path: str
    body: Callable[[str], dict[str, Any]]


ROUTES = [
    Route("train", "POST", "/api/v1/models/m/train", lambda u: {"uri": u, "target": "price"}),
    Route(
        "series source",
        "PUT",
        "/api/v1/series/s/source",
        lambda u: {"kind": "csv", "uri": u, "column": "price"},
    ),
    Route("register dataset", "POST", "/api/v1/datasets", lambda u: {"uri": u}),
]


@dataclass
class World:
    root: Path  # DATA_ROOT
    own: Path  # acme's folder
    upload_uri: str  # globex's uploaded data set, as its meta shows it
    outside: Path  # a CSV outside DATA_ROOT


# Each attack: how to build the URI from the world.
ATTACKS: dict[str, Callable[[World], str]] = {
    "other tenant's upload": lambda w: w.upload_uri,
    "other tenant's folder": lambda w: f"file://{w.root / 'globex' / 'prices.csv'}",
    "other tenant's folder, bare path": lambda w: str(w.root / "globex" / "prices.csv"),
    "../ traversal, absolute": lambda w: f"file://{w.own}/../globex/prices.csv",
    "../ traversal, relative": lambda w: "../globex/prices.csv",
    "symlink out of the folder": lambda w: str(w.own / "link.csv"),
    "symlinked folder out": lambda w: str(w.own / "linkdir" / "prices.csv"),
    "absolute /etc/passwd": lambda w: "/etc/passwd",
    "file:///etc/passwd": lambda w: "file:///etc/passwd",
    "file://host/…": lambda w: f"file://localhost{w.own}/own.csv",
    "outside DATA_ROOT": lambda w: str(w.outside),
    "DATA_ROOT itself": lambda w: f"file://{w.root}/prices.csv",
    "other bucket": lambda w: "gs://someone-elses-bucket/acme/own.csv",
    "http://": lambda w: "http://127.0.0.1:9/own.csv",
    "https://": lambda w: "https://example.com/acme/own.csv",
    "s3://": lambda w: "s3://bucket/acme/own.csv",
    "data:": lambda w: "data:text/csv,price%0A1",
    "a query": lambda w: f"{w.own}/own.csv?x=1",
    "a NUL byte": lambda w: f"{w.own}/own.csv\x00.csv",
}


@pytest.fixture
async def world(client: httpx.AsyncClient, data_dir: Path, tmp_path: Path) -> World:
    """acme with model m (v1), series s (two values), its own file and data set; globex with
    an uploaded data set and a file in its folder; a file outside DATA_ROOT; two symlinks
    from acme's folder out."""
    root = data_dir.parent
    upload = await client.post(
        "/api/v1/datasets?dataset_id=secret",
        content=SECRET_CSV,
        headers={"Content-Type": "text/csv", **OTHER},
    )
    assert upload.status_code == 201, upload.text
    (root / "globex" / "prices.csv").write_bytes(SECRET_CSV)
    outside = tmp_path / "outside.csv"
    outside.write_bytes(SECRET_CSV)
    (data_dir / "own.csv").write_bytes(OWN_CSV)
    (data_dir / "link.csv").symlink_to(root / "globex" / "prices.csv")
    (data_dir / "linkdir").symlink_to(root / "globex", target_is_directory=True)
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    await client.put("/api/v1/series/s", json={"n_lags": 2})
    for value in (1.0, 2.0):
        await client.post("/api/v1/series/s/observations", json={"value": value})
    return World(root, data_dir, upload.json()["uri"], outside)


async def acme_state(client: httpx.AsyncClient) -> dict[str, Any]:
    """What a refused request must not change."""
    versions = (await client.get("/api/v1/models/m/versions")).json()
    series = await client.get("/api/v1/series/s")
    return {
        "model": await model_state(client, "m"),
        "versions": len(versions["versions"]),
        "series": series.json() if series.status_code == 200 else {"absent": True},
        "datasets": (await client.get("/api/v1/datasets")).json(),
    }


@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
async def test_every_way_out_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, world: World, route: Route, attack: str
) -> None:
    before = await acme_state(client)
    uri = ATTACKS[attack](world)
    response = await client.request(route.method, route.path, json=route.body(uri))
    assert_envelope(response, 403, "data_access_denied")
    message = response.json()["error"]["message"]
    for leak in (SECRET_COLUMN, "globex", "passwd", str(world.root), "exist", "columns:"):
        assert leak not in message
    assert await acme_state(client) == before


async def test_the_refusal_is_the_same_whatever_the_file(
    client: httpx.AsyncClient, world: World
) -> None:
    """No existence oracle: a file that exists and one that does not are refused alike."""
    answers = {
        (
            await client.post("/api/v1/datasets", json={"uri": str(world.root / "globex" / name)})
        ).text.split('"request_id"')[0]
        for name in ("prices.csv", "nothing-here.csv")
    }
    assert len(answers) == 1


async def test_another_tenants_data_set_id_is_unknown_here(
    client: httpx.AsyncClient, world: World
) -> None:
    before = await acme_state(client)
    for route in ROUTES:
        response = await client.request(route.method, route.path, json=route.body("dataset:secret"))
        assert_envelope(response, 404, "dataset_not_found")
        assert SECRET_COLUMN not in response.text
    assert await acme_state(client) == before


async def wait_for_job(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    for _ in range(400):
        job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        await asyncio.sleep(0.025)
    raise AssertionError(job)


@pytest.mark.parametrize(
    "uri",
    [
        "own.csv",  # relative to the tenant's folder
        "OWN",  # its absolute path
        "file://OWN",
        "dataset:mine",  # an uploaded data set, by id
    ],
)
async def test_own_data_works_on_every_route(
    client: httpx.AsyncClient, world: World, uri: str
) -> None:
    upload = await client.post(
        "/api/v1/datasets?dataset_id=mine", content=OWN_CSV, headers={"Content-Type": "text/csv"}
    )
    assert upload.status_code == 201
    uri = uri.replace("OWN", str(world.own / "own.csv"))
    submitted = await client.post(
        "/api/v1/models/m/train", json={"uri": uri, "target": "target", "test_size": 0.25}
    )
    assert submitted.status_code == 202, submitted.text
    job = await wait_for_job(client, submitted.json()["id"])
    assert job["status"] == "succeeded", job
    source = await client.put(
        "/api/v1/series/own/source", json={"kind": "csv", "uri": uri, "column": "price"}
    )
    assert source.status_code == 200 and source.json()["total"] == 4
    pulled = (await client.post("/api/v1/series/own/pull", json={"count": 4})).json()
    assert [o["value"] for o in pulled["observations"]] == [1.0, 2.0, 3.0, 4.0]
    registered = await client.post("/api/v1/datasets", json={"uri": uri})
    assert registered.status_code == 201 and registered.json()["rows"] == 4


async def test_errors_on_own_files_name_only_that_file(
    client: httpx.AsyncClient, world: World
) -> None:
    """A column missing from the tenant's own file: its own columns, by its base name; no
    server path, nothing of any other file."""
    response = await client.put(
        "/api/v1/series/s/source", json={"kind": "csv", "uri": "own.csv", "column": "nope"}
    )
    assert_envelope(response, 422, "unknown_column")
    message = response.json()["error"]["message"]
    assert message == "column 'nope' is not in own.csv; columns: ['price', 'target']"
    missing = await client.post("/api/v1/datasets", json={"uri": "gone.csv"})
    assert_envelope(missing, 422, "unreadable_dataset")
    assert missing.json()["error"]["message"] == "no such file: gone.csv"


async def test_a_file_swapped_for_a_link_out_is_refused_at_pull(
    client: httpx.AsyncClient, world: World
) -> None:
    """The check is made on every read, not only when the source is set: a file replaced by
    a symlink to another tenant's file after configuration is refused, and nothing observed."""
    source = {"kind": "csv", "uri": "own.csv", "column": "price"}
    assert (await client.put("/api/v1/series/s/source", json=source)).status_code == 200
    (world.own / "own.csv").unlink()
    (world.own / "own.csv").symlink_to(world.root / "globex" / "prices.csv")
    before = await acme_state(client)
    assert_envelope(
        await client.post("/api/v1/series/s/pull", json={"count": 2}), 403, "data_access_denied"
    )
    assert_envelope(await client.get("/api/v1/series/s/source"), 403, "data_access_denied")
    assert await acme_state(client) == before


# ----- DATA_ROOT on GCS (a real fake-gcs-server) ----------------------------------------------


GCS_ATTACKS = {
    "other bucket": "gs://other-bucket/tenants/acme/own.csv",
    "other tenant's prefix": "gs://data-bucket/tenants/globex/prices.csv",
    "outside the prefix": "gs://data-bucket/prices.csv",
    "traversal in the name": "gs://data-bucket/tenants/acme/../globex/prices.csv",
    "empty segment": "gs://data-bucket/tenants/acme//own.csv",
    "a local path": "/etc/passwd",
    "file://": "file:///etc/passwd",
    "relative traversal": "../globex/prices.csv",
}


async def test_gcs_data_root(
    client: httpx.AsyncClient, gcs_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.gcs_server import gcs_client

    storage = gcs_client(gcs_server)
    for name in ("data-bucket", "other-bucket"):
        if storage.lookup_bucket(name) is None:
            storage.create_bucket(name)
    bucket = storage.bucket("data-bucket")
    bucket.blob("tenants/acme/own.csv").upload_from_string(OWN_CSV)
    bucket.blob("tenants/globex/prices.csv").upload_from_string(SECRET_CSV)
    bucket.blob("prices.csv").upload_from_string(SECRET_CSV)
    storage.bucket("other-bucket").blob("tenants/acme/own.csv").upload_from_string(SECRET_CSV)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server)
    monkeypatch.setenv("DATA_ROOT", "gs://data-bucket/tenants")
    reset_settings_cache()  # before the first request builds the runtime
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    before = await acme_state(client)
    for attack, uri in GCS_ATTACKS.items():
        for route in ROUTES:
            response = await client.request(route.method, route.path, json=route.body(uri))
            assert_envelope(response, 403, "data_access_denied")
            assert SECRET_COLUMN not in response.text, attack
    assert await acme_state(client) == before
    for uri in ("own.csv", "gs://data-bucket/tenants/acme/own.csv"):
        source = {"kind": "csv", "uri": uri, "column": "price"}
        assert (await client.put("/api/v1/series/own/source", json=source)).json()["total"] == 4
    upload = await client.post(
        "/api/v1/datasets?dataset_id=up", content=OWN_CSV, headers={"Content-Type": "text/csv"}
    )
    assert upload.json()["uri"].startswith("gs://data-bucket/tenants/acme/_datasets/up/")
    job = await client.post(
        "/api/v1/models/m/train", json={"uri": "dataset:up", "target": "target"}
    )
    assert (await wait_for_job(client, job.json()["id"]))["status"] == "succeeded"
