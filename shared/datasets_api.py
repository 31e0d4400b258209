"""Data set routes: register a CSV / Parquet upload or a file by URI; list; show.

Upload the file as the body (`Content-Type: text/csv`, or `application/vnd.apache.parquet`),
with `?dataset_id=` to name it; or send JSON `{"uri", "dataset_id"?, "description"?}` for a
file in the tenant's own data folder (shared/data_access.py). A training request then names
it by id (`dataset:<id>`).
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from shared.datasets import Datasets
from shared.edge.body import parse_body
from shared.edge.codec import JSON
from shared.errors import ApiError
from shared.openapi import api
from shared.runtime import current_runtime
from shared.schemas import Strict
from shared.tenancy import NAME_PATTERN, path_name, tenant_of

UPLOAD_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/octet-stream": "parquet",
}


class DatasetByUri(Strict):
    uri: str = Field(
        max_length=2048,
        description="CSV or Parquet in the tenant's data folder: a path relative to it, "
        "file://<DATA_ROOT>/<tenant>/… or gs://<bucket>/<prefix>/<tenant>/…",
    )
    dataset_id: str | None = Field(None, pattern=NAME_PATTERN.pattern, max_length=128)
    description: str = Field("", max_length=1000)


class DatasetOut(BaseModel):
    dataset_id: str
    source: str
    format: str
    uri: str
    rows: int
    columns: list[str]
    column_types: dict[str, str]
    description: str
    created_at: str
    size: int | None = None
    sha256: str | None = None


class DatasetList(BaseModel):
    datasets: list[DatasetOut]


def _datasets() -> Datasets:
    runtime = current_runtime()
    return Datasets(runtime.data, runtime.executors.io)


@api("datasets", body=DatasetByUri, response=DatasetOut, status=201)
async def register(request: Request) -> Response:
    """Register a data set: the CSV / Parquet file as the body (`?dataset_id=` names it), or
    JSON `{"uri"}` for a file in the tenant's own data folder (anything else: 403
    data_access_denied). Data sets are immutable."""
    tenant = tenant_of(request)
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == "application/json":
        body = await parse_body(request, DatasetByUri)
        meta = await _datasets().register_uri(tenant, body.uri, body.dataset_id, body.description)
        return JSON(meta, status_code=201)
    fmt = UPLOAD_TYPES.get(content_type)
    if fmt is None:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send text/csv or application/vnd.apache.parquet (the file), or application/json",
        )
    data = await request.body()
    if not data.strip():
        raise ApiError(400, "empty_body", "the upload is empty")
    params = request.query_params
    description = params.get("description", "")[:1000]
    meta = await _datasets().upload(tenant, data, fmt, params.get("dataset_id"), description)
    return JSON(meta, status_code=201)


@api("datasets", response=DatasetList)
async def list_datasets(request: Request) -> Response:
    """This tenant's data sets."""
    return JSON({"datasets": await _datasets().list(tenant_of(request))})


@api("datasets", response=DatasetOut)
async def get_dataset(request: Request) -> Response:
    """One data set: rows, columns and their kinds, where it is stored."""
    tenant, dataset_id = tenant_of(request), path_name(request, "dataset_id", "dataset")
    return JSON(await _datasets().get(tenant, dataset_id))
