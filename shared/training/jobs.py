"""Training jobs: 202 + a job document in the state store, run in-process (the JOB_WORKERS
pool, shared/executors.py, the fit itself in a JOB_PROCESSES worker process) or as a Cloud
Run Job when TRAIN_JOB_NAME is set.
queued → running → succeeded | failed.

In-process jobs are bounded per instance: MAX_JOBS_PER_TENANT queued or running for one
tenant, MAX_QUEUED_JOBS for all together; one more answers 429 before anything is stored.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import tempfile
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from typing import Any

import pebble

from shared.catalog import Blueprint
from shared.data_access import DataAccess
from shared.errors import ApiError, not_found, unprocessable
from shared.events import EventBus
from shared.executors import Executors, run_in
from shared.lifecycle import Lifecycle
from shared.online import blueprint_of
from shared.schemas import TrainRequest
from shared.settings import Settings
from shared.state.interfaces import Documents
from shared.training import cloudrun
from shared.training.data import DATASETS, DataError, Row, dataset_rows, frame_rows, read_frame
from shared.training.fit import (
    FitCrashed,
    FitOptions,
    FitResult,
    fit,
    fit_in_worker,
    read_progress,
)

log = logging.getLogger("ml.training")
JOB = "job"
PROGRESS_EVERY = 0.5  # seconds between progress writes while fitting
QUOTA_RETRY_AFTER = "5"  # seconds: jobs take a while to make room


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Jobs:
    def __init__(
        self,
        store: Documents,  # job status documents
        lifecycle: Lifecycle,
        events: EventBus,
        settings: Settings,
        data: DataAccess,
        executors: Executors,
    ) -> None:
        self.store, self.lifecycle, self.events, self.settings = store, lifecycle, events, settings
        self.data = data
        self.executors = executors
        self._running: set[asyncio.Task[None]] = set()
        self._active: Counter[str] = Counter()  # tenant → in-process jobs queued or running

    def active(self, tenant: str) -> int:
        """The tenant's in-process jobs queued or running (what MAX_JOBS_PER_TENANT bounds)."""
        return self._active[tenant]

    async def submit(
        self, tenant: str, model: str, request: TrainRequest, *, origin: str | None = None
    ) -> dict[str, Any]:
        """Queue a training job. `origin` names the API that asked for it (e.g. a compat
        surface); it rides on the job and on its `model.trained` event, for event mirrors."""
        await self.lifecycle.record(tenant, model)  # 404 before anything is queued
        if request.dataset is not None and request.dataset not in DATASETS:
            raise unprocessable(
                f"unknown dataset '{request.dataset}'; known: {', '.join(sorted(DATASETS))}",
                "unknown_dataset",
            )
        if request.uri is not None:  # 403 before anything is queued; the job keeps what to read
            request = request.model_copy(
                update={"uri": await self.data.resolve(tenant, request.uri)}
            )
        in_process = not self.settings.train_job_name
        if in_process:
            self._reserve(tenant)  # no await since the check: two submits cannot both pass
        try:
            return await self._submit(tenant, model, request, in_process, origin)
        except BaseException:
            if in_process:
                self._release(tenant)
            raise

    async def _submit(
        self, tenant: str, model: str, request: TrainRequest, in_process: bool, origin: str | None
    ) -> dict[str, Any]:
        job = {
            "id": uuid.uuid4().hex,
            "model": model,
            "status": "queued",
            "progress": 0.0,
            "request": request.model_dump(),
            "runner": "cloud_run" if self.settings.train_job_name else "in_process",
            "created_at": _now(),
            "started_at": None,
            "finished_at": None,
            "version": None,
            "metrics": None,
            "error": None,
        }
        if origin is not None:
            job["origin"] = origin
        await self._save(tenant, job)
        if not in_process:
            await self._launch_cloud_run(tenant, job)
        else:
            task = asyncio.get_running_loop().create_task(self.run(tenant, job["id"]))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            task.add_done_callback(lambda _: self._release(tenant))
        return job

    def _reserve(self, tenant: str) -> None:
        """Count one more job for `tenant`, or 429 if that is over a quota."""
        per_tenant, total = self.settings.max_jobs_per_tenant, self.settings.max_queued_jobs
        if self._active[tenant] >= per_tenant:
            raise ApiError(
                429,
                "job_quota_exceeded",
                f"this tenant already has {self._active[tenant]} training jobs queued or "
                f"running (MAX_JOBS_PER_TENANT is {per_tenant}); retry when one has finished",
                {"Retry-After": QUOTA_RETRY_AFTER},
            )
        if sum(self._active.values()) >= total:
            raise ApiError(
                429,
                "job_queue_full",
                f"{total} training jobs are queued or running on this instance "
                "(MAX_QUEUED_JOBS); retry later",
                {"Retry-After": QUOTA_RETRY_AFTER},
            )
        self._active[tenant] += 1

    def _release(self, tenant: str) -> None:
        self._active[tenant] -= 1
        if self._active[tenant] <= 0:
            del self._active[tenant]

    async def get(self, tenant: str, job_id: str) -> dict[str, Any]:
        raw = await self.store.get_doc(JOB, tenant, job_id)
        if raw is None:
            raise not_found("job", job_id)
        return json.loads(raw)

    async def run(self, tenant: str, job_id: str, *, own_process: bool = False) -> dict[str, Any]:
        """Run one job to its end; every failure is recorded on the job, never raised.
        `own_process`: this process runs nothing but the job (a Cloud Run Job), so the fit
        stays in it rather than in a fit worker process."""
        job = await self.get(tenant, job_id)
        job.update(status="running", started_at=_now())
        await self._save(tenant, job)
        await self.events.publish(
            tenant, "job.started", _public(job), subject=job_id, source="/online-ml/train"
        )
        try:
            await self._train(tenant, job, own_process)
        except (DataError, ApiError) as exc:
            await self._fail(tenant, job, exc.message if isinstance(exc, ApiError) else str(exc))
        except Exception as exc:
            log.exception("training job %s failed", job_id)
            kind = exc.kind if isinstance(exc, FitCrashed) else exc.__class__.__name__
            await self._fail(tenant, job, f"internal error ({kind})")
        return job

    async def drain(self) -> None:
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _train(self, tenant: str, job: dict[str, Any], own_process: bool = False) -> None:
        request = TrainRequest.model_validate(job["request"])
        model = job["model"]
        record = await self.lifecycle.record(tenant, model)
        blueprint = blueprint_of(record)
        # version 1 is the freshly built estimator: batch training starts from it, so the
        # result does not depend on which instance runs the job
        snapshot = await self.lifecycle.registry.load_artifact(tenant, model, 1)
        # the job's blocking steps (its data read included) run in the job pool, its fit in
        # a fit worker process (`_fit`): however many jobs wait, they wait behind each other,
        # never in front of other requests' work
        pool = self.executors.jobs
        if request.dataset is not None:
            source = {"dataset": request.dataset}
            rows = await run_in(pool, dataset_rows, request.dataset, request.features)
        else:
            assert request.uri is not None and request.target is not None
            # checked again where it runs (a Cloud Run job reads the queued document)
            uri = self.data.check(tenant, request.uri)
            source = {"uri": uri, "target": request.target}
            frame = await run_in(pool, read_frame, uri)
            rows = await run_in(
                pool, frame_rows, frame, request.target, request.features, blueprint.text_input
            )
        result = await self._fit(tenant, job, snapshot, blueprint, rows, request, own_process)
        training = {
            **source,
            "features": request.features,
            "test_size": request.test_size,
            "shuffle": request.shuffle,
            "seed": request.seed,
            "rows_train": result.rows_train,
            "rows_test": result.rows_test,
        }
        meta = {
            "source": "batch",
            "parent": 1,
            "metrics": result.metrics,
            "training": training,
            "job_id": job["id"],
            "seq": 0,
        }
        version = await self.lifecycle.add_trained_version(tenant, model, result.blob, meta)
        if request.activate:
            await self.lifecycle.activate(tenant, model, version["version"])
        job.update(
            status="succeeded",
            progress=1.0,
            finished_at=_now(),
            version=version["version"],
            metrics=result.metrics,
            training=training,
        )
        await self._save(tenant, job)
        await self.events.publish(
            tenant,
            "model.trained",
            {"name": model, **version, **({"origin": job["origin"]} if "origin" in job else {})},
            subject=model,
            source="/online-ml/train",
        )
        await self.events.publish(
            tenant, "job.succeeded", _public(job), subject=job["id"], source="/online-ml/train"
        )

    async def _fit(
        self,
        tenant: str,
        job: dict[str, Any],
        snapshot: bytes,
        blueprint: Blueprint,
        rows: list[Row],
        request: TrainRequest,
        own_process: bool,
    ) -> FitResult:
        """The fit, in a fit worker process (JOB_PROCESSES: a long fit holds no GIL the
        serving process needs) or else in the job's thread; its progress is saved on the
        job every PROGRESS_EVERY seconds while it runs."""
        options = FitOptions(request.test_size, request.shuffle, request.seed)
        pool = None if own_process else self.executors.fits.pool()
        if pool is None:
            reported = {"value": 0.0}
            fitting = run_in(
                self.executors.jobs,
                fit,
                snapshot,
                blueprint,
                rows,
                options,
                lambda value: reported.__setitem__("value", value),
            )
            return await self._watch(tenant, job, fitting, lambda: reported["value"])
        with tempfile.NamedTemporaryFile(prefix="fit-progress-") as shared:
            args = (shared.name, snapshot, blueprint, rows, options)
            progress = functools.partial(read_progress, shared.fileno())
            try:
                try:
                    return await self._watch(tenant, job, self._in_worker(args), progress)
                except BrokenProcessPool:  # the pool broke before this fit began: a new one
                    return await self._watch(tenant, job, self._in_worker(args), progress)
            except pebble.ProcessExpired as exc:
                # this fit's own process (out of memory, say): the other jobs' fits go on
                log.error(
                    "the fit worker process of job %s died (exit code %s)", job["id"], exc.exitcode
                )
                raise unprocessable(
                    f"the fit's worker process ended (exit code {exc.exitcode}); the data or "
                    "the model may not fit in memory",
                    "fit_process_ended",
                ) from None

    async def _in_worker(self, args: tuple[object, ...]) -> FitResult:
        # scheduled from a job thread: the pool's first task waits for its fork server
        fits = self.executors.fits
        scheduled = await run_in(self.executors.jobs, fits.schedule, fit_in_worker, args)
        return await asyncio.wrap_future(scheduled)

    async def _watch(
        self,
        tenant: str,
        job: dict[str, Any],
        fitting: Awaitable[FitResult],
        progress: Callable[[], float],
    ) -> FitResult:
        """Await the fit, saving its progress on the job as it changes."""
        task = asyncio.ensure_future(fitting)
        while not task.done():
            await asyncio.wait({task}, timeout=PROGRESS_EVERY)
            value = progress()
            if value != job["progress"]:
                job["progress"] = round(value, 4)
                await self._save(tenant, job)
        return task.result()

    async def _fail(self, tenant: str, job: dict[str, Any], error: str) -> None:
        job.update(status="failed", finished_at=_now(), error=error)
        await self._save(tenant, job)
        await self.events.publish(
            tenant, "job.failed", _public(job), subject=job["id"], source="/online-ml/train"
        )

    async def _launch_cloud_run(self, tenant: str, job: dict[str, Any]) -> None:
        settings = self.settings
        assert settings.train_job_name is not None
        resource = cloudrun.job_resource(
            settings.train_job_name, settings.google_cloud_project, settings.train_job_region
        )
        env = {"JOB_TENANT": tenant, "JOB_ID": job["id"]}
        try:
            job["operation"] = await cloudrun.launch(
                resource, env, settings.run_api_endpoint, self.executors.io
            )
        except Exception as exc:  # the Run API said no: the job fails visibly, not silently
            log.exception("could not launch Cloud Run job %s", resource)
            await self._fail(tenant, job, f"could not start Cloud Run job: {exc}")
            raise ApiError(502, "job_launch_failed", f"Cloud Run refused the job: {exc}") from None
        await self._save(tenant, job)

    async def _save(self, tenant: str, job: dict[str, Any]) -> None:
        await self.store.put_doc(
            JOB, tenant, job["id"], json.dumps(job), self.settings.job_ttl_seconds
        )


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: job.get(k) for k in ("id", "model", "status", "version", "metrics", "error")}
