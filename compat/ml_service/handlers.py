"""The ML service seed (003) under /api/v1/ml: train, predict, batch predict, list, get, deploy.

Every answer is `{"success": true, ...}` and every error `{"success": false, "error": ...}`
(what its clients parse). `model_id` is the core model's name; training is a core batch
training job on a registered data set (POST /api/v1/datasets), whose version is activated
when it succeeds; predictions come from the core's online model; deploy moves an alias named
after the environment, and activates the version for `production`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from compat.edge import ml_service_error, ok, prediction_of, require_point_task
from compat.ml_service import events
from compat.ml_service import models as mapping
from compat.ml_service.schemas import (
    MlBatchIn,
    MlDeployIn,
    MlEnvelope,
    MlPredictIn,
    MlTrainIn,
)
from shared.datasets import Datasets
from shared.edge.body import parse_body
from shared.edge.errors import register_renderer
from shared.errors import ApiError, conflict, not_found
from shared.executors import run_in
from shared.learning import label_key
from shared.openapi import api
from shared.runtime import Runtime, current_runtime
from shared.schemas import ModelSpec, TrainRequest
from shared.tenancy import path_name, tenant_of

STATUS = {"queued": "training", "running": "training", "succeeded": "trained", "failed": "failed"}
_SEMVER = re.compile(r"^([1-9][0-9]*)(\.[0-9]+){0,2}$")
_REGISTRY_VERSION = re.compile(r"^v([1-9][0-9]*)$")
PREFIX = "/api/v1/ml/"


def _is_ml_service_path(path: str) -> bool:
    return path.startswith(PREFIX)


# every error on the ML service's paths in its `{"success": false, ...}` shape, also the edge's
register_renderer(_is_ml_service_path, ml_service_error)


def _runs_prefix(model_id: str) -> str:
    return f"{mapping.FOLDER}/{model_id}/runs/"


async def _config(runtime: Runtime, tenant: str, model_id: str) -> dict[str, Any]:
    record = await runtime.lifecycle.record(tenant, model_id)  # 404 for an unknown model
    require_point_task(record["task"])  # before anything is kept
    config = await mapping.load_config(runtime.registry, tenant, model_id)
    if config is None:
        raise conflict(
            f"model '{model_id}' was not trained through /api/v1/ml; use /api/v1/models",
            "not_an_ml_service_model",
        )
    return config


async def _latest_job(runtime: Runtime, tenant: str, model_id: str) -> dict[str, Any] | None:
    runs = await runtime.registry.list_blobs(tenant, _runs_prefix(model_id))
    if not runs:
        return None
    run = json.loads(await runtime.registry.get_blob(tenant, runs[-1]) or b"{}")
    try:
        return await runtime.jobs.get(tenant, run["job_id"])
    except (ApiError, KeyError):
        return {"id": run.get("job_id"), "status": "unknown", "error": "job record expired"}


def _trained(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Batch-trained versions in order; the seed's labels are 1.0.0, 2.0.0, ... over these."""
    return [v for v in sorted(versions, key=lambda v: v["version"]) if v.get("source") == "batch"]


def _labelled(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    labels = {v["version"]: f"{i}.0.0" for i, v in enumerate(_trained(versions), start=1)}
    return [
        {
            "version": labels.get(v["version"]),
            "registry_version": v["version"],
            "source": v.get("source"),
            "created_at": v.get("created_at"),
            "metrics": v.get("metrics") or {},
        }
        for v in versions
    ]


async def _describe(runtime: Runtime, tenant: str, model_id: str) -> dict[str, Any]:
    record = await runtime.lifecycle.record(tenant, model_id)
    config = await mapping.load_config(runtime.registry, tenant, model_id) or {}
    versions, job = await asyncio.gather(
        runtime.lifecycle.versions(tenant, model_id), _latest_job(runtime, tenant, model_id)
    )
    return {
        "model_id": model_id,
        "model_name": model_id,
        "model_type": config.get("model_type", record["task"]),
        "status": STATUS.get(job["status"], job["status"]) if job else "created",
        "dataset_id": config.get("dataset_id"),
        "target": config.get("target"),
        "features": config.get("features"),
        "created_at": record.get("created_at"),
        "active_version": versions["active"],
        "deployments": versions["aliases"],
        "versions": _labelled(versions["versions"]),
        "training": job,
    }


@api("compat", body=MlTrainIn, response=MlEnvelope, status=202)
async def train(request: Request) -> Response:
    """ML service `POST /api/v1/ml/models/train`: train `model_name` on a registered data set
    (asynchronously; the model serves the new version once it succeeds)."""
    tenant = tenant_of(request)
    body = await parse_body(request, MlTrainIn)
    runtime = current_runtime()
    datasets = Datasets(runtime.data, runtime.executors.io)
    dataset = await datasets.get(tenant, body.dataset_id)
    model_id = body.model_name
    config = await _ensure_model(runtime, tenant, model_id, body, dataset)
    missing = [c for c in [config["target"], *config["features"]] if c not in dataset["columns"]]
    if missing:
        raise ApiError(
            422, "unknown_column", f"dataset '{body.dataset_id}' lacks this model's {missing}"
        )
    uri, features = dataset["uri"], config["features"]
    if config["text"]:
        frame = await datasets.frame(tenant, body.dataset_id)
        data = await run_in(runtime.executors.cpu, mapping.text_csv, frame, config)
        key = mapping.derived_key(model_id, body.dataset_id)
        # derived data sits in the tenant's data folder, like every file a job reads
        await runtime.data.store.put_blob(tenant, key, data)
        uri, features = runtime.data.store.blob_uri(tenant, key), [mapping.TEXT]
    hp = body.hyperparameters
    training = TrainRequest(
        uri=uri,
        target=config["target"],
        features=features,
        test_size=hp.get("test_size", 0.2),
        shuffle=hp.get("shuffle", config["task"] == "classification"),
        seed=hp.get("random_state", 42),
        activate=True,
    )
    job = await runtime.jobs.submit(tenant, model_id, training, origin=events.ORIGIN)
    run = {"job_id": job["id"], "dataset_id": body.dataset_id, "hyperparameters": hp}
    key = f"{_runs_prefix(model_id)}{time.time_ns():020d}-{job['id']}.json"
    await runtime.registry.put_blob(tenant, key, json.dumps(run).encode())
    data = {
        "model_id": model_id,
        "job_id": job["id"],
        "status": STATUS[job["status"]],
        "ignored_hyperparameters": sorted(set(hp) - mapping.KNOWN),
    }
    return ok(data, 202, "Model training initiated")


async def _ensure_model(
    runtime: Runtime, tenant: str, model_id: str, body: MlTrainIn, dataset: dict[str, Any]
) -> dict[str, Any]:
    """The model's configuration; the first training creates the model from it."""
    config = await mapping.load_config(runtime.registry, tenant, model_id)
    try:
        await runtime.lifecycle.record(tenant, model_id)
        exists = True
    except ApiError as exc:
        if exc.status != 404:
            raise
        exists = False
    if exists:
        if config is None:
            raise conflict(
                f"model '{model_id}' exists and was not made through /api/v1/ml", "model_exists"
            )
        return config
    config = mapping.plan(model_id, body.model_type, dataset, body.hyperparameters)
    config["dataset_id"] = dataset["dataset_id"]
    spec = ModelSpec.model_validate(
        {
            "name": model_id,
            "task": config["task"],
            "steps": config["steps"],
            "description": f"ML service {body.model_type} model",
        }
    )
    await runtime.lifecycle.create(tenant, spec)
    # a config left by a deleted model of the same name is replaced with the new one
    blob = json.dumps(config).encode()
    await runtime.registry.put_blob(tenant, mapping.config_key(model_id), blob)
    return config


def _answer(result: dict[str, Any]) -> dict[str, Any]:
    prediction, proba = prediction_of(result), result.get("proba")
    confidence = proba.get(label_key(prediction)) if proba and prediction is not None else None
    # where to send the label later (POST /api/v1/models/{model_id}/labels)
    return {
        "prediction": prediction,
        "confidence": confidence,
        "prediction_id": result.get("prediction_id"),
    }


@api("compat", body=MlPredictIn, response=MlEnvelope)
async def predict(request: Request) -> Response:
    """ML service `POST /api/v1/ml/models/{model_id}/predict` `{input_data}`: the prediction
    and its confidence (the class probability; null for a regressor)."""
    tenant, model_id = tenant_of(request), path_name(request, "model_id")
    body = await parse_body(request, MlPredictIn)
    runtime = current_runtime()
    config = await _config(runtime, tenant, model_id)
    result = await runtime.serving.predict(tenant, model_id, mapping.x_of(config, body.input_data))
    return ok({**_answer(result), "model_id": model_id, "model_version": result["model_version"]})


@api("compat", body=MlBatchIn, response=MlEnvelope)
async def predict_batch(request: Request) -> Response:
    """ML service `POST /api/v1/ml/models/{model_id}/predict/batch` `{input_data: [...]}`:
    one prediction or one error per item, in order."""
    tenant, model_id = tenant_of(request), path_name(request, "model_id")
    body = await parse_body(request, MlBatchIn)
    runtime = current_runtime()
    config = await _config(runtime, tenant, model_id)
    xs: list[Any] = []
    errors: dict[int, dict[str, str]] = {}
    for index, item in enumerate(body.input_data):
        try:
            xs.append(mapping.x_of(config, item))
        except ApiError as exc:
            errors[index] = {"code": exc.code, "message": exc.message}
            xs.append(None)  # the core answers an error for it too; ours is more precise
    answer = await runtime.serving.predict_batch(tenant, model_id, xs)
    predictions = [
        {"error": errors[i]}
        if i in errors
        else ({"error": r["error"]} if "error" in r else _answer(r))
        for i, r in enumerate(answer["results"])
    ]
    return ok({"model_id": model_id, "predictions": predictions})


@api("compat", response=MlEnvelope)
async def list_models(request: Request) -> Response:
    """ML service `GET /api/v1/ml/models`: this tenant's models with their status."""
    tenant = tenant_of(request)
    runtime = current_runtime()
    records = await runtime.lifecycle.records(tenant)
    described = await asyncio.gather(*(_describe(runtime, tenant, r["name"]) for r in records))
    keys = ("model_id", "model_name", "model_type", "status", "active_version", "created_at")
    return ok({"models": [{k: d[k] for k in keys} for d in described]})


@api("compat", response=MlEnvelope)
async def get_model(request: Request) -> Response:
    """ML service `GET /api/v1/ml/models/{model_id}`: status, versions, deployments, training."""
    tenant, model_id = tenant_of(request), path_name(request, "model_id")
    return ok(await _describe(current_runtime(), tenant, model_id))


def _resolve(raw: str, versions: list[dict[str, Any]]) -> int:
    trained = _trained(versions)
    if raw == "latest":
        if not trained:
            raise conflict("the model has no trained version yet", "not_trained")
        return int(trained[-1]["version"])
    if match := _REGISTRY_VERSION.match(raw):
        number = int(match.group(1))
        if all(v["version"] != number for v in versions):
            raise not_found("version", raw)
        return number
    if match := _SEMVER.match(raw):
        index = int(match.group(1))
        if index > len(trained):
            raise not_found("version", raw)
        return int(trained[index - 1]["version"])
    raise ApiError(400, "invalid_version", "version is 'latest', '1.0.0' (nth trained) or 'v3'")


@api("compat", body=MlDeployIn, response=MlEnvelope)
async def deploy(request: Request) -> Response:
    """ML service `POST /api/v1/ml/models/{model_id}/deploy` `{version, environment}`: point
    the environment's alias at the version; `production` also makes it the serving version."""
    tenant, model_id = tenant_of(request), path_name(request, "model_id")
    body = await parse_body(request, MlDeployIn)
    lifecycle = current_runtime().lifecycle
    listed = await lifecycle.versions(tenant, model_id)
    number = _resolve(body.version, listed["versions"])
    await lifecycle.set_alias(tenant, model_id, body.environment, number)
    production = body.environment == "production"
    if production:
        await lifecycle.activate(tenant, model_id, number)
    data = {
        "model_id": model_id,
        "version": body.version,
        "registry_version": number,
        "environment": body.environment,
        "serving": production,
    }
    return ok(data, message="Model deployed")
