"""The Open Inference Protocol v2 routes (KServe / Triton REST) over the data plane.

Thin handlers: the codec (shared/protocols/oip.py) turns the request into rows and the
predictions into the answer; every model call goes through `Serving`. The edge
(shared/edge/request.py) scopes /v2/models/… to the tenant exactly as /api/v1 (X-Tenant-ID,
the tenant key, the rate limit), and this module registers OIP's error shape for every /v2
path, `{"error": "<message>"}` (shared/edge/errors.py renderers), so an error the edge raises
before a handler runs has that shape too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from shared.app import readiness
from shared.edge.codec import JSON
from shared.edge.errors import register_renderer
from shared.errors import ApiError, unavailable
from shared.openapi import api
from shared.protocols import oip
from shared.runtime import current_runtime
from shared.tenancy import path_name, tenant_of


def _oip_error(error: ApiError) -> Response:
    return JSON(
        oip.error_body(error.message),
        status_code=oip.error_status(error.status),
        headers=error.headers,
    )


register_renderer(oip.is_oip_path, _oip_error)


# ----- OpenAPI descriptions (the codec, not pydantic, reads the requests) -----------------


class OipError(BaseModel):
    error: str


class OipLive(BaseModel):
    live: bool


class OipReady(BaseModel):
    ready: bool


class OipModelReady(BaseModel):
    name: str
    ready: bool


class OipServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class OipTensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class OipModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[OipTensorMetadata]
    outputs: list[OipTensorMetadata]


class OipInputTensor(BaseModel):
    name: str = Field(description="a feature's name (a text model: any name)")
    datatype: str = Field(description="BOOL, BYTES, INT8..INT64, UINT8..UINT64, FP16..FP64")
    shape: list[int] = Field(description="[n] or [n, 1]: one value per row")
    data: list[Any] | None = Field(None, description="the values, flat or [[v], ...]")
    parameters: dict[str, Any] | None = Field(
        None, description="binary_data_size: the input's bytes after the JSON header"
    )


class OipRequestedOutput(BaseModel):
    name: str


class OipInferRequest(BaseModel):
    """JSON, or (Inference-Header-Content-Length) a JSON header and binary tensor data."""

    id: str | None = Field(None, pattern=oip.ID_PATTERN.pattern)
    parameters: dict[str, Any] | None = None
    inputs: list[OipInputTensor]
    outputs: list[OipRequestedOutput] | None = None


class OipOutputTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any]
    parameters: dict[str, Any] | None = None


class OipInferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[OipOutputTensor]


# ----- handlers ---------------------------------------------------------------------------


@api("oip", response=OipLive, error=OipError)
async def oip_live(request: Request) -> Response:
    """OIP server liveness: the process is up."""
    return JSON({"live": True})


@api("oip", response=OipReady, error=OipError)
async def oip_ready(request: Request) -> Response:
    """OIP server readiness: the state store, registry and event bus answer (503 if not)."""
    ok, _ = await readiness()
    if not ok:
        raise unavailable("not ready: a dependency is unreachable (see /ready)", retry_after=2)
    return JSON({"ready": True})


@api("oip", response=OipServerMetadata, error=OipError)
async def oip_server_metadata(request: Request) -> Response:
    """OIP server metadata: name, version, protocol extensions."""
    return JSON(oip.server_metadata())


@api("oip", response=OipModelMetadata, error=OipError)
async def oip_model_metadata(request: Request) -> Response:
    """OIP model metadata: one input per feature the model (or that version) has learned,
    its outputs (`predict`; a classifier's `predict_proba` too) and its registered versions."""
    tenant, name = tenant_of(request), path_name(request)
    serving = current_runtime().serving
    described = await serving.describe(tenant, name, version=request.path_params.get("version"))
    versions = await serving.versions(tenant, name)
    return JSON(oip.model_metadata(name, versions, described))


@api("oip", response=OipModelReady, error=OipError)
async def oip_model_ready(request: Request) -> Response:
    """OIP model readiness: the model (or that version) loads and can predict (404 if it does
    not exist for this tenant)."""
    tenant, name = tenant_of(request), path_name(request)
    serving = current_runtime().serving
    await serving.describe(tenant, name, version=request.path_params.get("version"))
    return JSON({"name": name, "ready": True})


@api("oip", body=OipInferRequest, response=OipInferResponse, error=OipError)
async def oip_infer(request: Request) -> Response:
    """OIP infer: n rows predicted in one call, with the live model or, on a version path,
    that registered version as frozen. Each row equals POST /api/v1/models/{model}/predict.

    Tabular: one input per feature, shape [n] or [n, 1]; a text model: one BYTES input.
    Outputs: `predict` (FP64, a classifier's BYTES labels) and a classifier's `predict_proba`
    (FP64 [n, k], the class order in its parameters' `classes`, a JSON list)."""
    tenant, name = tenant_of(request), path_name(request)
    version = request.path_params.get("version")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise ApiError(415, "unsupported_encoding", "send the infer request uncompressed")
    settings = current_runtime().settings
    bounds = oip.Bounds(settings.oip_max_rows, settings.max_features_per_sample)
    body = await request.body()  # MAX_BODY_BYTES: the edge answers 413 past it
    infer = oip.parse_infer(body, request.headers.get("inference-header-content-length"), bounds)
    serving = current_runtime().serving
    described = await serving.describe(tenant, name, version=version)
    rows = oip.rows_of(infer, text_input=described["text_input"])
    # each row's prediction is kept for a delayed label under "{id}" or "{id}:{row}"
    ids = oip.row_ids(infer.id, len(rows))
    batch = await serving.predict_batch(tenant, name, rows, version=version, ids=ids)
    return JSON(oip.infer_response(name, infer, described["task"], batch))
