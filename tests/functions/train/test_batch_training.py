"""Batch training jobs: River data sets and CSV / Parquet files, queued → running →
succeeded | failed, the result a new registry version equal to River in-process."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from river import datasets, linear_model, metrics, preprocessing

LINEAR = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}


async def wait_for_job(client: httpx.AsyncClient, job_id: str) -> list[dict[str, Any]]:
    """Poll until the job ends; returns every state seen, in order."""
    seen: list[dict[str, Any]] = []
    for _ in range(400):
        job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
        if not seen or seen[-1]["status"] != job["status"]:
            seen.append(job)
        if job["status"] in ("succeeded", "failed"):
            return seen
        await asyncio.sleep(0.025)
    raise AssertionError(f"job {job_id} did not finish: {seen[-1]}")


def make_csv(path: Path, rows: int = 300) -> pd.DataFrame:
    rng = random.Random(7)
    frame = pd.DataFrame(
        [
            {"a": rng.uniform(-1, 1), "b": rng.uniform(0, 5), "noise": rng.gauss(0, 1)}
            for _ in range(rows)
        ]
    )
    frame["target"] = 3 * frame["a"] - frame["b"] + 0.1 * frame["noise"]
    frame.to_csv(path, index=False)
    return frame


async def test_train_from_csv_registers_a_version_equal_to_river(
    client: httpx.AsyncClient, data_dir: Path
) -> None:
    frame = make_csv(data_dir / "data.csv")
    assert (await client.post("/api/v1/models", json=LINEAR)).status_code == 201
    body = {
        "uri": f"file://{data_dir / 'data.csv'}",
        "target": "target",
        "features": ["a", "b"],
        "test_size": 0.25,
    }
    submitted = await client.post("/api/v1/models/m/train", json=body)
    assert submitted.status_code == 202
    job = submitted.json()
    assert (
        job["status"] == "queued" and submitted.headers["location"] == f"/api/v1/jobs/{job['id']}"
    )
    states = await wait_for_job(client, job["id"])
    assert [s["status"] for s in states][-1] == "succeeded", states[-1]
    final = states[-1]
    assert final["progress"] == 1.0 and final["version"] == 2

    # the same fit in-process: first 75% in order, score on the last 25%
    local = preprocessing.StandardScaler() | linear_model.LinearRegression()
    records = frame.to_dict(orient="records")
    train, test = records[:225], records[225:]
    for r in train:
        local.learn_one({"a": r["a"], "b": r["b"]}, r["target"])
    mae = metrics.MAE()
    for r in test:
        mae.update(r["target"], local.predict_one({"a": r["a"], "b": r["b"]}))
    assert final["metrics"]["mae"] == mae.get()

    versions = (await client.get("/api/v1/models/m/versions")).json()
    meta = versions["versions"][-1]
    assert meta["version"] == 2 and meta["source"] == "batch" and versions["active"] == 1
    assert meta["training"]["rows_train"] == 225 and meta["training"]["rows_test"] == 75
    probe = {"a": 0.3, "b": 2.0}
    pinned = (await client.post("/api/v1/models/m/predict?version=2", json={"x": probe})).json()
    assert pinned["prediction"] == local.predict_one(probe)


async def test_train_on_a_river_dataset_and_activate(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    assert (await client.post("/api/v1/models", json=LINEAR)).status_code == 201
    body = {"dataset": "TrumpApproval", "test_size": 0.2, "activate": True}
    job = (await client.post("/api/v1/models/m/train", json=body)).json()
    final = (await wait_for_job(client, job["id"]))[-1]
    assert final["status"] == "succeeded", final
    local = preprocessing.StandardScaler() | linear_model.LinearRegression()
    for x, y in itertools.islice(datasets.TrumpApproval(), 801):
        local.learn_one(x, y)
    x, _ = next(iter(datasets.TrumpApproval()))
    live = (await client.post("/api/v1/models/m/predict", json={"x": x})).json()
    assert live["model_version"] == final["version"]  # activated: the online model restarted
    assert live["prediction"] == local.predict_one(x)
    events = [
        json.loads(line) for line in (tmp_path / "events" / "acme.jsonl").read_text().splitlines()
    ]
    types = [e["type"] for e in events]
    assert types[types.index("job.started") :] == [
        "job.started",
        "model.activated",
        "model.trained",
        "job.succeeded",
    ]
    assert events[-1]["data"]["version"] == final["version"] and events[-1]["subject"] == job["id"]


async def test_parquet_and_shuffled_split(client: httpx.AsyncClient, data_dir: Path) -> None:
    frame = make_csv(data_dir / "data.csv", rows=100)
    frame.to_parquet(data_dir / "data.parquet")
    assert (await client.post("/api/v1/models", json=LINEAR)).status_code == 201
    body = {"uri": str(data_dir / "data.parquet"), "target": "target", "shuffle": True, "seed": 3}
    final = (
        await wait_for_job(
            client, (await client.post("/api/v1/models/m/train", json=body)).json()["id"]
        )
    )[-1]
    assert final["status"] == "succeeded", final
    assert final["training"]["rows_train"] == 80 and final["training"]["shuffle"] is True


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"target": "nope"}, "target column 'nope' is not in the data"),
        ({"target": "target", "features": ["a", "zz"]}, "feature column 'zz' is not in the data"),
        ({"target": "target", "test_size": 0.999}, "nothing left to train on"),
    ],
)
async def test_bad_columns_fail_the_job_clearly(
    client: httpx.AsyncClient, data_dir: Path, body: dict[str, Any], error: str
) -> None:
    make_csv(data_dir / "data.csv", rows=50)
    assert (await client.post("/api/v1/models", json=LINEAR)).status_code == 201
    job = (
        await client.post(
            "/api/v1/models/m/train", json={"uri": str(data_dir / "data.csv"), **body}
        )
    ).json()
    states = await wait_for_job(client, job["id"])
    assert job["status"] == "queued"
    assert {s["status"] for s in states} <= {"queued", "running", "failed"}
    assert states[-1]["status"] == "failed" and error in states[-1]["error"]
    assert len((await client.get("/api/v1/models/m/versions")).json()["versions"]) == 1


async def test_text_column_for_a_numeric_model_fails_with_the_row(
    client: httpx.AsyncClient, data_dir: Path
) -> None:
    pd.DataFrame({"a": [1.0, 2.0, "x"], "target": [1.0, 2.0, 3.0]}).to_csv(
        data_dir / "d.csv", index=False
    )
    assert (await client.post("/api/v1/models", json=LINEAR)).status_code == 201
    job = (
        await client.post(
            "/api/v1/models/m/train", json={"uri": str(data_dir / "d.csv"), "target": "target"}
        )
    ).json()
    final = (await wait_for_job(client, job["id"]))[-1]
    assert final["status"] == "failed" and "x.a is text" in final["error"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"dataset": "Nope"}, 422, "unknown_dataset"),
        ({"uri": "/tmp/x.csv"}, 422, "validation_error"),  # no target
        ({"dataset": "TrumpApproval", "uri": "/tmp/x.csv", "target": "y"}, 422, "validation_error"),
        ({"dataset": "TrumpApproval", "test_size": 1.5}, 422, "validation_error"),
    ],
)
async def test_bad_train_requests_are_refused_before_queueing(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, code: str
) -> None:
    assert (await client.post("/api/v1/models", json=LINEAR)).status_code == 201
    response = await client.post("/api/v1/models/m/train", json=body)
    assert response.status_code == status and response.json()["error"]["code"] == code


async def test_unknown_job_and_model(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/jobs/" + "0" * 32)).status_code == 404
    assert (await client.get("/api/v1/jobs/not-hex")).status_code == 400
    assert (
        await client.post("/api/v1/models/ghost/train", json={"dataset": "TrumpApproval"})
    ).status_code == 404


async def test_train_from_a_gs_uri(
    client: httpx.AsyncClient, tmp_path: Path, gcs_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DATA_ROOT on GCS: a tenant trains on objects under gs://<bucket>/<prefix>/<tenant>/."""
    from shared.settings import reset_settings_cache
    from tests.gcs_server import gcs_client

    frame = make_csv(tmp_path / "data.csv", rows=60)
    bucket = gcs_client(gcs_server).create_bucket("training-data")
    bucket.blob("tenants/acme/daily/data.csv").upload_from_filename(str(tmp_path / "data.csv"))
    bucket.blob("daily/data.csv").upload_from_filename(str(tmp_path / "data.csv"))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server)  # google-cloud-storage's own switch
    monkeypatch.setenv("DATA_ROOT", "gs://training-data/tenants")
    reset_settings_cache()  # before the first request builds the runtime
    assert (await client.post("/api/v1/models", json=LINEAR)).status_code == 201
    body = {"uri": "gs://training-data/tenants/acme/daily/data.csv", "target": "target"}
    body["test_size"] = 0.5
    final = (
        await wait_for_job(
            client, (await client.post("/api/v1/models/m/train", json=body)).json()["id"]
        )
    )[-1]
    assert final["status"] == "succeeded", final
    assert final["training"]["rows_train"] == len(frame) // 2
    relative = {**body, "uri": "daily/data.csv"}  # a path is relative to the tenant's folder
    again = (
        await wait_for_job(
            client, (await client.post("/api/v1/models/m/train", json=relative)).json()["id"]
        )
    )[-1]
    assert again["status"] == "succeeded" and again["training"]["uri"] == body["uri"]
    missing = {**body, "uri": "gs://training-data/tenants/acme/nope.csv"}
    failed = (
        await wait_for_job(
            client, (await client.post("/api/v1/models/m/train", json=missing)).json()["id"]
        )
    )[-1]
    assert failed["status"] == "failed" and failed["error"] == "no such object: nope.csv"
    outside = await client.post(
        "/api/v1/models/m/train", json={**body, "uri": "gs://training-data/daily/data.csv"}
    )
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "data_access_denied"
