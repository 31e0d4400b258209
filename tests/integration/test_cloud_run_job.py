"""TRAIN_JOB_NAME set: training is launched as a Cloud Run Job through google-cloud-run's
REST transport (against a local Run Admin API stand-in), and the execution — this image's
`python -m shared.training run` — finishes the job."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import httpx

from tests.fake_run_api import FakeRunApi
from tests.servers import ROOT, AppProcess

H = {"X-Tenant-ID": "acme"}
SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}


def test_job_runs_as_a_cloud_run_execution(
    redis_url: str, app_factory: Callable[..., AppProcess]
) -> None:
    with FakeRunApi() as run_api:
        env = {
            "STATE_URL": redis_url,
            "TRAIN_JOB_NAME": "trainer",
            "GOOGLE_CLOUD_PROJECT": "proj",
            "TRAIN_JOB_REGION": "europe-west1",
            "RUN_API_ENDPOINT": run_api.url,
        }
        app = app_factory(env)
        with httpx.Client(base_url=app.url, headers=H) as http:
            assert http.post("/api/v1/models", json=SPEC).status_code == 201
            submitted = http.post("/api/v1/models/m/train", json={"dataset": "TrumpApproval"})
            assert submitted.status_code == 202
            job = submitted.json()
            assert job["status"] == "queued" and job["runner"] == "cloud_run"
            assert job["operation"].startswith("projects/proj/locations/europe-west1/operations/")

            [call] = run_api.calls
            assert call["path"] == "/v2/projects/proj/locations/europe-west1/jobs/trainer:run"
            [override] = call["body"]["overrides"]["containerOverrides"]
            job_env = {e["name"]: e["value"] for e in override["env"]}
            assert job_env == {"JOB_TENANT": "acme", "JOB_ID": job["id"]}
            assert http.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "queued"

            # what Cloud Run does next: start the execution with those overrides
            done = subprocess.run(
                [sys.executable, "-m", "shared.training", "run"],
                env={**app.env, **job_env},
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            final = http.get(f"/api/v1/jobs/{job['id']}").json()
            assert final["status"] == "succeeded" and final["version"] == 2
            versions = http.get("/api/v1/models/m/versions").json()["versions"]
            assert [v["version"] for v in versions] == [1, 2]


def test_refused_launch_fails_the_job_visibly(
    redis_url: str, app_factory: Callable[..., AppProcess]
) -> None:
    with FakeRunApi(fail_with=403) as run_api:
        env = {
            "STATE_URL": redis_url,
            "TRAIN_JOB_NAME": "projects/p/locations/r/jobs/t",
            "RUN_API_ENDPOINT": run_api.url,
        }
        app = app_factory(env)
        with httpx.Client(base_url=app.url, headers=H) as http:
            assert http.post("/api/v1/models", json=SPEC).status_code == 201
            refused = http.post("/api/v1/models/m/train", json={"dataset": "TrumpApproval"})
            assert refused.status_code == 502
            assert refused.json()["error"]["code"] == "job_launch_failed"
            assert len(run_api.requests) == 1


def test_entry_point_needs_a_job(tmp_path: object) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shared.training", "run"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "JOB_TENANT" in done.stderr
