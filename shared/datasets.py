"""Registered data sets: a CSV or Parquet file a tenant uploads, or names by URI, stored in the
tenant's data folder under `<DATA_ROOT>/<tenant>/_datasets/<id>/` (shared/data_access.py: a
named URI obeys the same rule as every other file a tenant names).

A data set is immutable once registered (its meta.json is created exclusively, like a model
version), so a model trained "from dataset_123" always means the same rows. Training jobs read
it through its URI, exactly like any other file (shared/training/data.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import uuid
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.data_access import DATASET_META, DATASETS_FOLDER, UPLOAD_SUFFIX, DataAccess, upload_key
from shared.errors import ApiError, conflict, not_found, unprocessable
from shared.executors import run_in
from shared.tenancy import check_name
from shared.training.data import DataError, read_frame

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("ml.datasets")

FOLDER = DATASETS_FOLDER
META = DATASET_META
SUFFIX = UPLOAD_SUFFIX


def _summary(frame: pd.DataFrame) -> dict[str, Any]:
    import pandas as pd  # here: only the routes that read tables load pandas

    """Rows, columns and each column's kind (number or text): what a trainer needs to know."""
    kinds = {
        str(c): "number" if pd.api.types.is_numeric_dtype(frame[c]) else "text"
        for c in frame.columns
    }
    return {"rows": len(frame), "columns": list(kinds), "column_types": kinds}


def _parse(data: bytes, fmt: str) -> pd.DataFrame:
    import pandas as pd  # here: only the routes that read tables load pandas

    try:
        if fmt == "csv":
            return pd.read_csv(io.BytesIO(data))
        return pd.read_parquet(io.BytesIO(data))
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise unprocessable(f"cannot read the {fmt} upload: {exc}", "unreadable_dataset") from None


def _new_id() -> str:
    return f"ds-{uuid.uuid4().hex[:12]}"


class Datasets:
    """One tenant-scoped data set catalogue in the tenants' data folders."""

    def __init__(self, data: DataAccess, executor: Executor | None = None) -> None:
        self.data = data
        self.registry = data.store  # the blob API, rooted at DATA_ROOT
        self.executor = executor  # IO_WORKERS: reading and parsing files (shared/executors.py)

    async def upload(
        self, tenant: str, data: bytes, fmt: str, dataset_id: str | None, description: str = ""
    ) -> dict[str, Any]:
        if fmt not in SUFFIX:
            raise unprocessable("a data set is csv or parquet", "unsupported_format")
        dataset_id = check_name(dataset_id, "dataset") if dataset_id else _new_id()
        frame = await run_in(self.executor, _parse, data, fmt)
        if frame.empty:
            raise unprocessable("the data set has no rows", "empty_dataset")
        digest = hashlib.sha256(data).hexdigest()
        # meta.json, created exclusively, claims the id
        key = upload_key(dataset_id, digest, fmt)
        await self.registry.put_blob(tenant, key, data)
        meta = {
            "dataset_id": dataset_id,
            "source": "upload",
            "format": fmt,
            "uri": self.registry.blob_uri(tenant, key),
            "size": len(data),
            "sha256": digest,
            "description": description,
            **_summary(frame),
        }
        return await self._claim(tenant, meta)

    async def register_uri(
        self, tenant: str, uri: str, dataset_id: str | None, description: str = ""
    ) -> dict[str, Any]:
        """Register a file of the tenant's data folder by reference (path, file:// or gs://);
        it is read once to check it."""
        uri = await self.data.resolve(tenant, uri)  # 403 before anything is read
        dataset_id = check_name(dataset_id, "dataset") if dataset_id else _new_id()
        try:
            frame = await run_in(self.executor, read_frame, uri)
        except DataError as exc:
            raise unprocessable(str(exc), "unreadable_dataset") from None
        fmt = "csv" if uri.lower().split("?", 1)[0].endswith(".csv") else "parquet"
        meta = {
            "dataset_id": dataset_id,
            "source": "uri",
            "format": fmt,
            "uri": uri,
            "description": description,
            **_summary(frame),
        }
        return await self._claim(tenant, meta)

    async def get(self, tenant: str, dataset_id: str) -> dict[str, Any]:
        raw = await self.registry.get_blob(
            tenant, f"{FOLDER}/{check_name(dataset_id, 'dataset')}/{META}"
        )
        if raw is None:
            raise not_found("dataset", dataset_id)
        return json.loads(raw)

    async def list(self, tenant: str) -> list[dict[str, Any]]:
        keys = [k for k in await self.registry.list_blobs(tenant, f"{FOLDER}/") if k.endswith(META)]
        raws = await asyncio.gather(*(self.registry.get_blob(tenant, k) for k in keys))
        return [json.loads(raw) for raw in raws if raw is not None]

    async def frame(self, tenant: str, dataset_id: str) -> pd.DataFrame:
        meta = await self.get(tenant, dataset_id)
        uri = self.data.check(tenant, self.data.dataset_uri(tenant, meta))
        try:
            return await run_in(self.executor, read_frame, uri)
        except DataError as exc:
            raise ApiError(409, "dataset_unreadable", f"dataset '{dataset_id}': {exc}") from None

    async def _claim(self, tenant: str, meta: dict[str, Any]) -> dict[str, Any]:
        meta["created_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        key = f"{FOLDER}/{meta['dataset_id']}/{META}"
        data = json.dumps(meta, separators=(",", ":")).encode()
        if not await self.registry.put_blob(tenant, key, data, exclusive=True):
            raise conflict(
                f"dataset '{meta['dataset_id']}' exists; data sets are immutable, pick another id",
                "dataset_exists",
            )
        return meta
