"""Data sets in the tenants' data folders (DATA_ROOT): the registry's blob store on both
backends (a directory and a real fake-gcs-server), and POST/GET /api/v1/datasets."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest

from shared.data_access import DataAccess
from shared.datasets import Datasets
from shared.registry import FilesystemRegistry, Registry, open_registry
from tests.compat.conftest import OTHER
from tests.gcs_server import gcs_client

CSV = b"title,priority\nServer down,critical\nTypo,low\n"


@pytest.fixture(params=["file", "gcs"])
def registry(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Registry:
    if request.param == "file":
        return open_registry(f"file://{tmp_path / 'registry'}")
    endpoint = request.getfixturevalue("gcs_server")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)  # how training reads gs:// files
    client = gcs_client(endpoint)
    bucket = f"ds-{uuid.uuid4().hex[:12]}"
    client.create_bucket(bucket)
    return open_registry(f"gs://{bucket}/root", gcs_client=client)


async def test_blobs(registry: Registry) -> None:
    assert await registry.get_blob("acme", "_things/a.txt") is None
    assert await registry.put_blob("acme", "_things/a.txt", b"one")
    assert not await registry.put_blob("acme", "_things/a.txt", b"two", exclusive=True)
    assert await registry.get_blob("acme", "_things/a.txt") == b"one"
    assert await registry.put_blob("acme", "_things/a.txt", b"three")  # overwrite
    await registry.put_blob("acme", "_things/deep/b.txt", b"b")
    await registry.put_blob("globex", "_things/c.txt", b"c")
    assert await registry.list_blobs("acme", "_things/") == ["_things/a.txt", "_things/deep/b.txt"]
    assert await registry.get_blob("globex", "_things/a.txt") is None
    assert registry.blob_uri("acme", "_things/a.txt").endswith("/acme/_things/a.txt")
    await registry.put_definition("acme", "m", {"kind": "x"})
    assert await registry.list_models("acme") == ["m"]  # blobs never look like models
    for bad in ("things/a", "_x/../../etc", "/_x/a", "_x/a b", "m/model.json"):
        with pytest.raises(ValueError):
            await registry.put_blob("acme", bad, b"")


def data_root(registry: Registry) -> str:
    """A DATA_ROOT at the fixture's registry location."""
    if isinstance(registry, FilesystemRegistry):
        return f"file://{registry.root}"
    return f"gs://{registry.bucket_name}/{registry.prefix}"  # type: ignore[attr-defined]


async def test_a_dataset_round_trips(registry: Registry) -> None:
    datasets = Datasets(DataAccess(data_root(registry)))
    meta = await datasets.upload("acme", CSV, "csv", "tickets", "two tickets")
    assert meta["rows"] == 2 and meta["column_types"] == {"title": "text", "priority": "text"}
    assert (await datasets.get("acme", "tickets"))["uri"] == meta["uri"]
    frame = await datasets.frame("acme", "tickets")
    assert frame["priority"].tolist() == ["critical", "low"]
    assert [d["dataset_id"] for d in await datasets.list("acme")] == ["tickets"]
    assert await datasets.list("globex") == []


async def test_upload_register_list_get(client: httpx.AsyncClient, data_dir: Path) -> None:
    csv = await client.post(
        "/api/v1/datasets?dataset_id=tickets", content=CSV, headers={"Content-Type": "text/csv"}
    )
    assert csv.status_code == 201
    assert csv.json()["rows"] == 2 and csv.json()["format"] == "csv"
    buffer = io.BytesIO()
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]}).to_parquet(buffer)
    parquet = await client.post(
        "/api/v1/datasets",
        content=buffer.getvalue(),
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert parquet.status_code == 201
    generated = parquet.json()["dataset_id"]
    assert generated.startswith("ds-") and parquet.json()["column_types"]["x"] == "number"
    path = data_dir / "mine.csv"  # a file the operator put in the tenant's data folder
    path.write_bytes(CSV)
    by_uri = await client.post("/api/v1/datasets", json={"uri": str(path), "dataset_id": "ref"})
    assert by_uri.status_code == 201 and by_uri.json()["source"] == "uri"
    # uploads and named files share the tenant's folder
    assert csv.json()["uri"].startswith(f"file://{data_dir}/_datasets/tickets/")

    listed = (await client.get("/api/v1/datasets")).json()["datasets"]
    assert sorted(d["dataset_id"] for d in listed) == sorted(["tickets", generated, "ref"])
    assert (await client.get("/api/v1/datasets/tickets")).json()["rows"] == 2
    assert (await client.get("/api/v1/datasets", headers=OTHER)).json()["datasets"] == []
    assert (await client.get("/api/v1/datasets/tickets", headers=OTHER)).status_code == 404


async def test_bad_uploads(client: httpx.AsyncClient) -> None:
    post = client.post
    await post("/api/v1/datasets?dataset_id=d", content=CSV, headers={"Content-Type": "text/csv"})
    again = await post(
        "/api/v1/datasets?dataset_id=d", content=CSV, headers={"Content-Type": "text/csv"}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "dataset_exists"
    text = await post("/api/v1/datasets", content=CSV, headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    empty = await post("/api/v1/datasets", content=b"", headers={"Content-Type": "text/csv"})
    assert empty.status_code == 400
    junk = await post(
        "/api/v1/datasets", content=b"PAR1junk", headers={"Content-Type": "application/x-parquet"}
    )
    assert junk.status_code == 422
    missing = await post("/api/v1/datasets", json={"uri": "nowhere/x.csv"})  # in its folder
    assert missing.status_code == 422
    assert missing.json()["error"]["message"] == "no such file: x.csv"  # no server path
    elsewhere = await post("/api/v1/datasets", json={"uri": "/nowhere/x.csv"})
    assert elsewhere.status_code == 403
    bad_id = await post(
        "/api/v1/datasets?dataset_id=../x", content=CSV, headers={"Content-Type": "text/csv"}
    )
    assert bad_id.status_code == 400


async def test_no_peeking_at_another_tenants_data(client: httpx.AsyncClient) -> None:
    theirs = await client.post(
        "/api/v1/datasets?dataset_id=secret",
        content=CSV,
        headers={"Content-Type": "text/csv", **OTHER},
    )
    uri = theirs.json()["uri"]
    stolen = await client.post("/api/v1/datasets", json={"uri": uri})
    assert stolen.status_code == 403 and stolen.json()["error"]["code"] == "data_access_denied"
    sneaky = uri.replace("/globex/", "/acme/../globex/")
    assert (await client.post("/api/v1/datasets", json={"uri": sneaky})).status_code == 403


async def test_uploads_follow_their_folder_when_it_moves(tmp_path: Path) -> None:
    """An upload's file is found from its content, not its stored URI: moving a tenant's
    `_datasets` to another DATA_ROOT (e.g. the pre-DATA_ROOT `<registry>/<tenant>/_datasets`)
    keeps every data set usable, still under the one access rule."""
    old = DataAccess(f"file://{tmp_path / 'old'}")
    await Datasets(old).upload("acme", CSV, "csv", "tickets")
    (tmp_path / "new" / "acme").mkdir(parents=True)
    (tmp_path / "old" / "acme" / "_datasets").rename(tmp_path / "new" / "acme" / "_datasets")
    new = DataAccess(f"file://{tmp_path / 'new'}")
    frame = await Datasets(new).frame("acme", "tickets")
    assert frame["priority"].tolist() == ["critical", "low"]
    assert (await new.resolve("acme", "dataset:tickets")).startswith(f"file://{tmp_path}/new/")
