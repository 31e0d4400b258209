"""Request and response bodies of the ML engine seeds (002, 004); OpenAPI is generated from
these. The seeds documented paths and a few fields, not full schemas: where they were silent
the bodies carry what the core knows (model, core version, request id)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.schemas import Strict


class EngineTrainIn(Strict):
    """Every field defaults to its TRAIN_* setting (the seed's `POST /admin/train` sent none)."""

    symbols: list[str] | None = Field(None, max_length=100, description="TRAIN_SYMBOLS")
    lookback: int | None = Field(None, ge=30, le=100_000, description="TRAIN_LOOKBACK")
    test_size: float | None = Field(None, ge=0, lt=1, description="TRAIN_TEST_SIZE")
    random_state: int | None = Field(None, description="TRAIN_RANDOM_STATE")
    cv_folds: int | None = Field(None, ge=1, le=20, description="TRAIN_CV_FOLDS (recorded)")
    activate: bool = Field(True, description="activate each symbol's version when it succeeds")


class EngineBatchIn(Strict):
    symbols: list[str] = Field(min_length=1, max_length=1000)


class EngineFeaturesOut(BaseModel):
    symbol: str
    features: dict[str, float]
    n_lags: int
    as_of: str | None
    source: str


class EnginePredictionOut(BaseModel):
    symbol: str
    prediction: float | None
    model: str
    model_version: int
    features: dict[str, float]
    as_of: str | None
    request_id: str


class EngineBatchOut(BaseModel):
    results: list[dict[str, Any]]
    succeeded: int
    failed: int


class EngineRelease(BaseModel):
    """A trained version; `GET /admin/train/status` before any training: status "idle"."""

    version: str | None
    status: str
    created_at: str | None = None
    params: dict[str, Any] = {}
    symbols: dict[str, dict[str, Any]] = {}
    metrics: dict[str, float | None] = {}
    active: bool = False


class EngineModelsOut(BaseModel):
    available_versions: list[str]
    active_version: str | None
    versions: list[EngineRelease]


class EngineActivationOut(BaseModel):
    active_version: str
    previous_version: str | None
    symbols: dict[str, int]
