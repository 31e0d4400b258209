"""Launch a training job as a Cloud Run Job execution (Run Admin API v2, `google-cloud-run`).

The execution runs this same image with `python -m shared.training run`, and finds its job
through the JOB_TENANT / JOB_ID environment overrides.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

from shared.executors import run_in


def job_resource(job_name: str, project: str | None, region: str) -> str:
    """Accept a full `projects/…/locations/…/jobs/…` name or a short one."""
    if job_name.startswith("projects/"):
        return job_name
    if not project:
        raise ValueError("TRAIN_JOB_NAME is a short name: set GOOGLE_CLOUD_PROJECT too")
    return f"projects/{project}/locations/{region}/jobs/{job_name}"


def _run(resource: str, env: dict[str, str], api_endpoint: str | None) -> str:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2

    options: dict[str, Any] = {}
    credentials = None
    if api_endpoint:
        options["client_options"] = {"api_endpoint": api_endpoint}
        if api_endpoint.startswith("http://"):  # a local endpoint: no Google credentials
            credentials = AnonymousCredentials()
    client = run_v2.JobsClient(credentials=credentials, transport="rest", **options)
    overrides = run_v2.RunJobRequest.Overrides(
        container_overrides=[
            run_v2.RunJobRequest.Overrides.ContainerOverride(
                env=[run_v2.EnvVar(name=k, value=v) for k, v in env.items()]
            )
        ]
    )
    operation = client.run_job(request=run_v2.RunJobRequest(name=resource, overrides=overrides))
    return str(operation.operation.name)


async def launch(
    resource: str, env: dict[str, str], api_endpoint: str | None, executor: Executor | None = None
) -> str:
    """Start an execution; returns the long-running operation's name (not awaited)."""
    return await run_in(executor, _run, resource, env, api_endpoint)
