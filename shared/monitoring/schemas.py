"""Response bodies of the monitoring routes (for OpenAPI; the views build plain dicts)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class VersionMetrics(BaseModel):
    version: int
    kind: str | None
    samples: int
    scored: int
    first_seq: int
    last_seq: int
    first_at: str | None
    last_at: str | None
    cumulative: dict[str, float | None]
    rolling: dict[str, dict[str, float | None]]
    history: list[dict[str, Any]]
    cluster_sizes: dict[str, int] | None = Field(
        None,
        description="a clusterer: samples each cluster id took (predict_learn, labels); the "
        '50 largest, the rest summed under "other"',
    )


class MetricsOut(BaseModel):
    model: str
    task: str | None
    active_version: int | None
    folded_seq: int
    windows: list[int]
    versions: list[VersionMetrics]


class DriftOut(BaseModel):
    model: str
    active_version: int | None
    version: int
    samples: int
    detected: bool
    error: dict[str, Any] | None = None
    features: dict[str, Any] | None = None
    episodes: list[dict[str, Any]] = []


class FreshnessOut(BaseModel):
    model: str
    seq: int
    last_learn_at: str | None
    seconds_since_last_learn: float | None
    last_prediction_at: str | None
    seconds_since_last_prediction: float | None
    newest_version: int | None
    samples_since_last_version: int
    active_version: int | None
    active_version_created_at: str | None
    active_version_age_seconds: float | None
    pending_labels: int = Field(0, description="kept predictions not labelled yet")
    oldest_pending_label_age_seconds: float | None = None


class LatencyOut(BaseModel):
    model: str
    unit: str
    measured: str
    routes: dict[str, dict[str, float | int | None]]


class AuditRow(BaseModel):
    at: str
    request_id: str
    tenant: str
    model: str
    version: int | None
    route: str
    input_hash: str
    output: dict[str, Any]
    seq: int | None
    latency_ms: float
    actual: Any = None  # the target, once known (predict_learn, or a delayed label)
    prediction_error: float | None = None  # |prediction - actual|, or 0/1 for a label
    prediction_id: str | None = Field(None, description="a predict's id (a label names it)")
    labelled_at: str | None = Field(None, description="when its delayed label arrived")


class TimelinePoint(BaseModel):
    at: str
    route: str
    version: int | None
    seq: int | None
    prediction_id: str | None
    prediction: Any
    actual: Any = Field(None, description="null until known (predict_learn, or its label)")
    error: float | None = Field(None, description="|prediction - actual|, or 0/1 for a label")
    rolling_error: float | None = Field(
        None, description="mean of the last rolling_window known errors, up to this point"
    )


class TimelineOut(BaseModel):
    model: str
    active_version: int | None
    rolling_window: int
    points: list[TimelinePoint] = Field(description="oldest first")
    drift_episodes: list[dict[str, Any]] = Field(
        description="oldest first: version, started_at/seq, ended_at/seq (null while open), "
        "signals, features"
    )


class RecentOut(BaseModel):
    predictions: list[AuditRow]


class AuditCleared(BaseModel):
    deleted: int


class OverviewOut(BaseModel):
    tenant: str
    at: str
    models: list[dict[str, Any]]
