"""train: create, list, inspect and delete online models; learn samples; the catalog.

Entry point: `functions-framework --asgi --target app --source functions/train/main.py`.
"""

from __future__ import annotations

import re

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compat.engine import routes as engine
from compat.ml_service import handlers as ml_service
from compat.online import models as online_models
from shared import datasets_api
from shared.app import build_router
from shared.catalog import describe, import_all
from shared.edge.body import parse_body
from shared.edge.bridge import forward
from shared.edge.codec import JSON
from shared.edge.idempotency import idempotency_of
from shared.errors import ApiError
from shared.labels import Label
from shared.limits import over
from shared.monitoring.failures import counts_failures
from shared.online import public_record
from shared.openapi import api
from shared.runtime import current_runtime
from shared.schemas import (
    CatalogOut,
    JobOut,
    LabelOut,
    LabelRequest,
    LearnOut,
    LearnRequest,
    ModelInfo,
    ModelList,
    ModelSpec,
    TrainRequest,
)
from shared.selectors import selects
from shared.tenancy import path_name, tenant_of

# train builds whatever spec it is sent: every kind's River module is imported at start, as a
# predict function's never is (docs/architecture.md: the catalog, lazy by kind)
import_all()

JOB_ID = re.compile(r"^[0-9a-f]{32}$")


@api("train", response=CatalogOut)
async def catalog(request: Request) -> Response:
    """List every allow-listed model kind with its task and parameters."""
    return JSON({"kinds": describe()})


@api("train", body=ModelSpec, response=ModelInfo, status=201)
async def create_model(request: Request) -> Response:
    """Create an online model from the catalog (snapshot 0)."""
    tenant = tenant_of(request)
    spec = await parse_body(request, ModelSpec)
    record = await current_runtime().lifecycle.create(tenant, spec)
    return JSON(public_record(record, seq=0), status_code=201)


@api("train", response=ModelList)
async def list_models(request: Request) -> Response:
    """List this tenant's models."""
    tenant = tenant_of(request)
    records = await current_runtime().lifecycle.records(tenant)
    return JSON({"models": [public_record(r) for r in records]})


@api("train", response=ModelInfo)
async def get_model(request: Request) -> Response:
    """Show a model: spec, task, version and samples learned (seq); for a model selector,
    the candidate it prefers now (`preferred`)."""
    tenant, name = tenant_of(request), path_name(request)
    runtime = current_runtime()
    record = await runtime.lifecycle.record(tenant, name)
    seq = await runtime.models.seq_of(tenant, name)
    degraded = await runtime.degraded.status(tenant, name, record.get("uid"))
    if selects(record.get("spec")):  # a model selector: which candidate it prefers now
        described = await runtime.serving.describe(tenant, name)
        extra = {"seq": described["seq"], "preferred": described.get("preferred")}
        return JSON(public_record(record, degraded=degraded, **extra))
    return JSON(public_record(record, seq=seq, degraded=degraded))


@api("train", status=204)
async def delete_model(request: Request) -> Response:
    """Delete a model, its snapshot and its learn log."""
    tenant, name = tenant_of(request), path_name(request)
    runtime = current_runtime()
    await runtime.lifecycle.delete(tenant, name)
    await runtime.serving.forget_predictions(tenant, name)
    return Response(status_code=204)


@api("train", body=LearnRequest, response=LearnOut)
@counts_failures("learn")
async def learn(request: Request) -> Response:
    """Learn one {x, y} or many {samples} in order; the append is the acknowledgement."""
    tenant, name = tenant_of(request), path_name(request)
    body = await parse_body(request, LearnRequest)
    result = await current_runtime().serving.learn(
        tenant, name, body.as_samples(), idempotency_of(request)
    )
    return JSON(result)


@api("train", body=LabelRequest, response=LabelOut)
@counts_failures("label")
async def label(request: Request) -> Response:
    """Delayed labels: learn `{prediction_id, y}` or `{labels: [...]}` with the features kept
    when each was predicted (seq at label time); one result or error per label."""
    tenant, name = tenant_of(request), path_name(request)
    body = await parse_body(request, LabelRequest)
    items = body.items()
    runtime = current_runtime()
    bound = runtime.settings.label_max_per_request
    if len(items) > bound:
        raise over(
            "the number of labels", len(items), "LABEL_MAX_PER_REQUEST", bound, "too_many_labels"
        )
    labels = [Label(item.prediction_id, item.y) for item in items]
    answer = await runtime.serving.label(tenant, name, labels, idempotency_of(request))
    failed = answer["results"][0].get("error")
    if body.labels is None and failed is not None:  # one label: its error is the answer
        raise ApiError(answer["results"][0]["status"], failed["code"], failed["message"])
    return JSON(answer)


@api("train", body=TrainRequest, response=JobOut, status=202)
async def train(request: Request) -> Response:
    """Batch-train a new version from a River data set or a CSV/Parquet file: 202 + a job."""
    tenant, name = tenant_of(request), path_name(request)
    body = await parse_body(request, TrainRequest)
    job = await current_runtime().jobs.submit(tenant, name, body)
    return JSON(job, status_code=202, headers={"Location": f"/api/v1/jobs/{job['id']}"})


@api("train", response=JobOut)
async def get_job(request: Request) -> Response:
    """A training job: status (queued, running, succeeded, failed), progress, version, error."""
    tenant = tenant_of(request)
    job_id = request.path_params["job_id"]
    if not JOB_ID.match(job_id):
        raise ApiError(400, "invalid_job_id", "job ids are 32 lower-case hex characters")
    return JSON(await current_runtime().jobs.get(tenant, job_id))


ROUTES = [
    Route("/api/v1/catalog", catalog, methods=["GET"]),
    Route("/api/v1/models", create_model, methods=["POST"]),
    Route("/api/v1/models", list_models, methods=["GET"]),
    Route("/api/v1/models/{model}", get_model, methods=["GET"]),
    Route("/api/v1/models/{model}", delete_model, methods=["DELETE"]),
    Route("/api/v1/models/{model}/learn", learn, methods=["POST"]),
    Route("/api/v1/models/{model}/labels", label, methods=["POST"]),
    Route("/api/v1/models/{model}/train", train, methods=["POST"]),
    Route("/api/v1/jobs/{job_id}", get_job, methods=["GET"]),
    # data sets (shared/datasets_api.py)
    Route("/api/v1/datasets", datasets_api.register, methods=["POST"], name="datasets_register"),
    Route(
        "/api/v1/datasets",
        datasets_api.list_datasets,
        methods=["GET"],
        name="datasets_list_datasets",
    ),
    Route(
        "/api/v1/datasets/{dataset_id}",
        datasets_api.get_dataset,
        methods=["GET"],
        name="datasets_get_dataset",
    ),
    # compat, online-learning platform (seeds 000, 001)
    Route(
        "/api/v1/online/models/{model}/train",
        online_models.train,
        methods=["POST"],
        name="online_model_train",
    ),
    # compat, ML engine (seeds 002, 004): each `engine.mount(path, ...)` serves
    # /api/v1/engine<path>, the bare <path> and /api/v1<path> unless the core owns it
    *engine.mount("/admin/train", engine.admin_train, "POST"),
    *engine.mount("/admin/train/status", engine.admin_train_status, "GET"),
    # compat, ML service (seed 003)
    Route("/api/v1/ml/models/train", ml_service.train, methods=["POST"], name="ml_service_train"),
]
router = build_router("train", ROUTES)


@functions_framework.aio.http
async def app(request: Request) -> Response:
    return forward(router, request)
