"""Request and response bodies of the ML service seed (003); OpenAPI is generated from these."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.schemas import Strict
from shared.tenancy import NAME_PATTERN


class MlTrainIn(Strict):
    model_name: str = Field(pattern=NAME_PATTERN.pattern, max_length=128)
    dataset_id: str = Field(pattern=NAME_PATTERN.pattern, max_length=128)
    model_type: str = Field(description="classification or regression")
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="target, features, steps (a catalog spec), learning_rate, test_size, "
        "shuffle, random_state; others are accepted and reported as ignored",
    )


class MlPredictIn(Strict):
    input_data: dict[str, Any]


class MlBatchIn(Strict):
    input_data: list[Any] = Field(min_length=1, description="one input_data object per item")


class MlDeployIn(Strict):
    version: str = Field(
        "latest",
        max_length=32,
        description="'1.0.0' = the first trained version, '2.0.0' the second...; "
        "'v3' = registry version 3; 'latest'",
    )
    environment: str = Field(
        "production", pattern=NAME_PATTERN.pattern, description="production activates it"
    )


class MlEnvelope(BaseModel):
    """`{"success": true, "message"?, "data": ...}`; errors `{"success": false, "error"}`."""

    success: bool
    message: str | None = None
    data: Any = None
    error: str | None = None
