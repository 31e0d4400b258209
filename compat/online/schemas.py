"""Request and response bodies of the online-learning seeds (000, 001), as they documented
them; OpenAPI is generated from these."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.schemas import Strict
from shared.tenancy import NAME_PATTERN

# --- ingestion service ---------------------------------------------------------------------


class OnlineStreamObservation(BaseModel):
    observation_id: int = Field(description="1-based position in the stream")
    input: str | None = Field(description="the observation's timestamp")
    target: float
    remaining: int


class OnlineTickerObservation(BaseModel):
    series_id: str
    target: float
    datetime: str


class OnlineStreamReset(BaseModel):
    message: str
    total_observations: int | None


class OnlineStreamStatus(BaseModel):
    current_index: int
    total_observations: int | None
    remaining: int | None
    completed: bool


# --- feature service -----------------------------------------------------------------------


class OnlineAddIn(Strict):
    series_id: str = Field("default", pattern=NAME_PATTERN.pattern, max_length=128)
    value: float = Field(allow_inf_nan=False)


class OnlineAddOut(BaseModel):
    series_id: str
    features: dict[str, float] = Field(description="in_1..in_N, most recent first, 0.0-filled")
    target: float
    available_lags: int = Field(description="values present before this observation")


class OnlineSeriesInfo(BaseModel):
    series_id: str
    length: int
    latest_value: float | None
    available_lags: int


class OnlineFeatureInfo(BaseModel):
    service: str
    max_lags: int
    output_format: str
    series_info: dict[str, dict[str, Any]]


# --- model services ------------------------------------------------------------------------


class OnlineFeaturesIn(Strict):
    features: dict[str, Any] = Field(description="any features, e.g. in_1..in_N")


class OnlineSampleIn(Strict):
    features: dict[str, Any]
    target: float = Field(allow_inf_nan=False)


class OnlinePredictManyIn(Strict):
    features: dict[str, Any] = Field(description="the lags in_1..in_N, most recent first")
    horizon: int = Field(5, ge=1, le=100, description="the seeds forecast 5 steps")


class OnlineForecastPoint(BaseModel):
    value: float | None
    prediction_id: str | None = None  # /predict's point: kept for a delayed label


class OnlineForecastOut(BaseModel):
    forecast: list[OnlineForecastPoint]


class OnlineTrainedOut(BaseModel):
    message: str


class OnlinePredictionOut(BaseModel):
    prediction: float | None


class OnlineModelInfo(BaseModel):
    model_name: str
    model_version: str  # the library version, as the seed documents it
    registry_version: int
    forecast_horizon: int
    feature_agnostic: bool
    regression_model: bool
    available_models: list[str]
