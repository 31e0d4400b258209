"""Request and response bodies (pydantic); OpenAPI is generated from these."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from shared.tenancy import NAME_PATTERN

# A prediction id: the client's `id` on predict, or one the server made (delayed labels).
PREDICTION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Step(Strict):
    kind: str = Field(description="snake_case River class name from GET /api/v1/catalog")
    params: dict[str, Any] = Field(default_factory=dict)


class ModelSpec(Strict):
    """`{"name", "task"?, "steps": [...]}`, or `{"name", "kind", "params"?}` for one step."""

    name: str = Field(pattern=NAME_PATTERN.pattern, max_length=128)
    task: Literal["regression", "classification", "forecasting", "anomaly", "clustering"] | None = (
        None
    )
    steps: list[Step] = Field(default_factory=list, max_length=16)
    kind: str | None = None
    params: dict[str, Any] | None = None
    description: str = Field("", max_length=1000)

    @model_validator(mode="after")
    def _one_form(self) -> ModelSpec:
        if self.kind is not None:
            if self.steps:
                raise ValueError("give either steps or kind, not both")
            self.steps = [Step(kind=self.kind, params=self.params or {})]
            self.kind, self.params = None, None
        elif self.params is not None:
            raise ValueError("params without kind: put params inside a step")
        if not self.steps:
            raise ValueError("steps must list at least one step (or give kind)")
        if ".." in self.name:
            raise ValueError("name must not contain '..'")
        return self


class Sample(Strict):
    x: Any = Field(None, description="feature object, or a string for text models")
    y: Any = Field(None, description="target: number (regression/forecasting) or class label")


class LearnRequest(Strict):
    """One sample `{x, y}` or many `{samples: [{x, y}, ...]}` learned in order."""

    x: Any = None
    y: Any = None
    samples: list[Sample] | None = Field(
        None, description="at most MAX_SAMPLES_PER_REQUEST (default 1000) samples"
    )

    @model_validator(mode="after")
    def _one_form(self) -> LearnRequest:
        if self.samples is not None and (self.x is not None or self.y is not None):
            raise ValueError("give either {x, y} or samples, not both")
        if self.samples is not None and not self.samples:
            raise ValueError("samples must not be empty")
        return self

    def as_samples(self) -> list[Sample]:
        return self.samples if self.samples is not None else [Sample(x=self.x, y=self.y)]


class PredictRequest(Strict):
    x: Any = None
    id: str | None = Field(
        None,
        pattern=PREDICTION_ID_PATTERN,
        description="the prediction_id to keep this prediction under for a later label "
        "(1-128 of A-Z a-z 0-9 _ . : -); default: a new one",
    )


class ForecastRequest(Strict):
    horizon: int = Field(5, ge=1, le=1000)
    xs: list[dict[str, Any]] | None = Field(None, description="future exogenous features")
    series: str | None = Field(
        None,
        pattern=NAME_PATTERN.pattern,
        description="for a lag regressor: forecast recursively from this series' window",
    )


class ModelInfo(BaseModel):
    name: str
    task: str
    spec: dict[str, Any]
    description: str = ""
    created_at: str
    version: int = 0
    seq: int | None = None
    state_lost: dict[str, Any] | None = Field(
        None,
        description="set when the state store lost this model and it was recovered from the "
        "registry: samples_lost (learned after the newest version) and detected_at",
    )
    degraded: dict[str, Any] | None = Field(
        None, description="set once the model predicted a non-finite number: since, seq, route"
    )
    preferred: dict[str, Any] | None = Field(
        None,
        description="a model selector's current choice: index into params.models, the "
        "candidate's spec, and (successive halving) whether it is decided",
    )


class PredictionOut(BaseModel):
    prediction: Any = Field(
        None,
        description="regression, classification: null when the output is not a finite number",
    )
    proba: dict[str, float | None] | None = None
    score: float | None = Field(
        None, description="anomaly: the detector's score_one (higher: more anomalous)"
    )
    is_anomaly: bool | None = Field(
        None, description="anomaly, behind a quantile_filter or threshold_filter: its classify"
    )
    cluster: Any = Field(None, description="clustering: the cluster id (predict_one)")
    model_version: int
    seq: int
    degraded: bool | None = Field(
        None, description="true when the model's output was not finite (prediction is null)"
    )
    prediction_id: str | None = Field(
        None, description="predict only: label this prediction later with POST …/labels"
    )


class LearnOut(BaseModel):
    learned: int
    first_seq: int
    last_seq: int


class ForecastOut(BaseModel):
    forecast: list[float | None] | None
    horizon: int
    model_version: int
    seq: int
    degraded: bool | None = Field(None, description="true when a step was not finite (null)")


class ModelList(BaseModel):
    models: list[ModelInfo]


class CatalogKind(BaseModel):
    kind: str
    role: str
    task: str | None
    doc: str
    params: dict[str, str]
    required: list[str]
    text_input: bool
    nested: dict[str, str] = Field(
        default_factory=dict,
        description="parameters that take a spec (or a list of specs) and the role it must have",
    )
    bounds: dict[str, str] = Field(default_factory=dict, description="allowed parameter ranges")


class CatalogOut(BaseModel):
    kinds: list[CatalogKind]


class VersionRequest(Strict):
    description: str = Field("", max_length=1000)


class AliasRequest(Strict):
    version: int = Field(ge=1, le=10**18 - 1)


class VersionList(BaseModel):
    versions: list[dict[str, Any]]
    active: int | None
    aliases: dict[str, int]


class Activation(BaseModel):
    name: str
    version: int
    previous: int | None
    seq: int


class AliasesOut(BaseModel):
    name: str
    aliases: dict[str, int]


class ReloadOut(BaseModel):
    dropped: int


class BatchRequest(Strict):
    instances: list[Any] = Field(min_length=1, description="feature objects (or texts), in order")


class BatchItem(Strict):
    model: str = Field(pattern=NAME_PATTERN.pattern, max_length=128)
    x: Any = None


class MultiBatchRequest(Strict):
    """Several models in one call (e.g. one model per market symbol)."""

    items: list[BatchItem] = Field(min_length=1)


class BatchOut(BaseModel):
    results: list[dict[str, Any]]
    model_version: int | None = None
    seq: int | None = None


class TrainRequest(Strict):
    """Batch training from a River data set or a CSV / Parquet file (path, file://, gs://)."""

    dataset: str | None = Field(None, description="a River data set, e.g. TrumpApproval")
    uri: str | None = Field(None, max_length=2048)
    target: str | None = Field(None, description="target column (files only)")
    features: list[str] | None = Field(None, description="feature columns (default: all)")
    test_size: float = Field(0.2, ge=0.0, lt=1.0)
    shuffle: bool = False
    seed: int = 42
    activate: bool = Field(False, description="activate the new version when it succeeds")

    @model_validator(mode="after")
    def _one_source(self) -> TrainRequest:
        if (self.dataset is None) == (self.uri is None):
            raise ValueError("give exactly one of dataset or uri")
        if self.uri is not None and not self.target:
            raise ValueError("a file needs its target column")
        return self


class JobOut(BaseModel):
    id: str
    model: str
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: float
    version: int | None = None
    metrics: dict[str, float | None] | None = None
    error: str | None = None


class Observation(Strict):
    value: float = Field(allow_inf_nan=False, description="the new value of the series")
    ts: str | None = Field(None, max_length=64, description="its timestamp (ISO 8601)")


class ObservationsRequest(RootModel[Observation | list[Observation]]):
    """One `{value, ts?}` or a list of them, applied in order."""

    def points(self) -> list[tuple[float, str | None]]:
        items = self.root if isinstance(self.root, list) else [self.root]
        return [(float(o.value), o.ts) for o in items]


class SeriesRequest(Strict):
    n_lags: int | None = Field(None, ge=1, le=512, description="window size (default N_LAGS)")


ModelName = Annotated[str, Field(pattern=NAME_PATTERN.pattern, max_length=128)]


class SubscribeRequest(Strict):
    models: list[ModelName] = Field(max_length=64)
    n_lags: int | None = Field(None, ge=1, le=512)


class PullRequest(Strict):
    count: int = Field(1, ge=1, le=1000)


# --- labels: delayed labels (POST /api/v1/models/{model}/labels) ---


class LabelItem(Strict):
    prediction_id: str = Field(description="the prediction_id a predict answered")
    y: Any = Field(None, description="the label (target) of that prediction")


class LabelRequest(Strict):
    """One `{prediction_id, y}` or many `{labels: [...]}`, learned in order."""

    prediction_id: str | None = None
    y: Any = None
    labels: list[LabelItem] | None = Field(
        None, description="at most LABEL_MAX_PER_REQUEST (default 1000) labels"
    )

    @model_validator(mode="after")
    def _one_form(self) -> LabelRequest:
        if self.labels is not None and (self.prediction_id is not None or self.y is not None):
            raise ValueError("give either {prediction_id, y} or labels, not both")
        if self.labels is None and self.prediction_id is None:
            raise ValueError("give {prediction_id, y} or labels")
        if self.labels is not None and not self.labels:
            raise ValueError("labels must not be empty")
        return self

    def items(self) -> list[LabelItem]:
        if self.labels is not None:
            return self.labels
        return [LabelItem(prediction_id=self.prediction_id or "", y=self.y)]


class LabelOut(BaseModel):
    learned: int
    first_seq: int | None
    last_seq: int | None
    results: list[dict[str, Any]] = Field(
        description="per label, in order: {prediction_id, seq} or {prediction_id, status, error}"
    )
