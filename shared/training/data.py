"""Training data: an allow-listed River data set, or a CSV / Parquet file read with pandas
from a local path, `file://` or `gs://`."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.deferred import river

if TYPE_CHECKING:
    import pandas as pd

# Data sets River ships as files (no download at run time), single target. Deferred: river.
# datasets loads scikit-learn and scipy.stats, which a process that trains on none never needs.
DATASETS: dict[str, Callable[[], Any]] = {
    "AirlinePassengers": river("datasets.AirlinePassengers"),
    "Bananas": river("datasets.Bananas"),
    "ChickWeights": river("datasets.ChickWeights"),
    "ImageSegments": river("datasets.ImageSegments"),
    "Phishing": river("datasets.Phishing"),
    "SP500Stocks": river("datasets.SP500Stocks"),
    "TrumpApproval": river("datasets.TrumpApproval"),
    "WaterFlow": river("datasets.WaterFlow"),
}
SUFFIXES = (".csv", ".parquet", ".pq")

Row = tuple[Any, Any]


class DataError(ValueError):
    """The data cannot be used as asked (missing column, unreadable file...)."""


def _clean(value: Any) -> Any:
    """JSON-able feature values only: datetimes and NaNs are dropped (River: missing)."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return None if isinstance(value, float) and math.isnan(value) else value
    if hasattr(value, "item"):  # numpy scalar
        return _clean(value.item())
    return None


def _features(x: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
    keys = wanted if wanted is not None else list(x)
    cleaned = {k: _clean(x.get(k)) for k in keys}
    return {k: v for k, v in cleaned.items() if v is not None}


def dataset_rows(name: str, features: list[str] | None) -> list[Row]:
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'; known: {', '.join(sorted(DATASETS))}")
    rows = []
    for x, y in DATASETS[name]():
        if features is not None and (missing := [f for f in features if f not in x]):
            raise DataError(f"dataset {name} has no feature {missing[0]!r}; it has {sorted(x)}")
        rows.append((_features(x, features), _clean(y)))
    return rows


def read_frame(uri: str) -> pd.DataFrame:
    """A CSV or Parquet file from a path, file:// or gs:// URI. Call it only with a URI that
    shared.data_access resolved for the tenant. Messages name the file by its base name only
    (never the server's path) and say nothing of any other file."""
    import pandas as pd  # here: only the routes that read tables load pandas

    lower = uri.lower().split("?", 1)[0]
    if not lower.endswith(SUFFIXES):
        raise DataError("the file must end in .csv or .parquet")
    name = uri.rsplit("/", 1)[-1]
    if uri.startswith("gs://"):
        source: Any = io.BytesIO(_read_gcs(uri, name))
    else:
        path = Path(uri.removeprefix("file://"))
        if not path.is_file():
            raise DataError(f"no such file: {name}")
        source = path
    try:
        if lower.endswith(".csv"):
            return pd.read_csv(source)
        return pd.read_parquet(source)
    except OSError:
        raise DataError(f"cannot read {name}") from None
    except (ValueError, pd.errors.ParserError) as exc:
        detail = str(exc).replace(uri.removeprefix("file://"), name)
        raise DataError(f"cannot read {name}: {detail}") from None


def _read_gcs(uri: str, name: str) -> bytes:
    from google.api_core import exceptions as gexc
    from google.cloud import storage

    bucket, _, key = uri.removeprefix("gs://").partition("/")
    try:
        return storage.Client().bucket(bucket).blob(key).download_as_bytes()
    except gexc.NotFound:
        raise DataError(f"no such object: {name}") from None
    except gexc.GoogleAPICallError:  # forbidden, unavailable…: no detail of the bucket leaves
        raise DataError(f"cannot read {name}") from None


def frame_rows(
    frame: pd.DataFrame, target: str, features: list[str] | None, text: bool
) -> list[Row]:
    columns = list(frame.columns)
    if target not in columns:
        raise DataError(f"target column {target!r} is not in the data; columns: {columns}")
    wanted = features if features is not None else [c for c in columns if c != target]
    if missing := [f for f in wanted if f not in columns]:
        raise DataError(f"feature column {missing[0]!r} is not in the data; columns: {columns}")
    if text and len(wanted) != 1:
        raise DataError("a text model trains on exactly one text column: set features: [column]")
    rows: list[Row] = []
    for record in frame[[*wanted, target]].to_dict(orient="records"):
        y = _clean(record.pop(target))
        if y is None:
            continue  # no target, nothing to learn from
        rows.append((str(record[wanted[0]]) if text else _features(record, wanted), y))
    return rows
