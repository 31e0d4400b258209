"""Configuration: read once from the environment, validated at start-up (architecture.md §9)."""

from __future__ import annotations

import functools
import re
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.outbound import parse_allowed
from shared.state.redis_client import cluster_seeds, cluster_tls, is_cluster_url

STATE_SCHEMES = ("memory", "redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
# What a browser sends in `Origin`: scheme://host[:port], no path, no trailing slash.
_ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$"
)
MIN_PROD_ADMIN_KEY = 16  # a shorter ADMIN_API_KEY is guessable; prod refuses to start with one


class Settings(BaseSettings):
    """Every knob of the platform; one environment variable per field (upper-case name)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    env: Literal["dev", "test", "prod"] = "dev"
    port: int = Field(8080, ge=1, le=65535)
    state_url: str = "memory://"
    model_registry_uri: str = "file://./.data/registry"
    nats_url: str | None = None
    admin_api_key: SecretStr | None = None
    rate_limit_per_minute: int = Field(0, ge=0, description="0 disables the limit")
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    snapshot_every: int = Field(1000, ge=1)
    n_lags: int = Field(12, ge=1, le=512)
    cors_origins: str = Field("", description="comma-separated origins; '*' any (not in prod)")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    google_cloud_project: str | None = None
    train_job_name: str | None = None
    challenger_promote_margin: float | None = Field(
        None, ge=0, lt=1, description="promote a challenger whose error is this much lower"
    )
    challenger_window: int = Field(200, ge=1, description="samples compared before promoting")
    train_job_region: str = "europe-west1"
    run_api_endpoint: str | None = Field(None, description="Run Admin API override (tests)")
    model_cache_size: int = Field(256, ge=1)
    web_concurrency: int = Field(1, ge=1, description="worker processes serving this app")
    state_timeout_seconds: float = Field(2.0, gt=0)
    idempotency_ttl_seconds: int = Field(24 * 3600, ge=60)
    events_dir: str = ".data/events"
    batch_max_items: int = Field(10_000, ge=1)
    job_ttl_seconds: int = Field(7 * 24 * 3600, ge=60)
    audit_max_rows: int = Field(10_000, ge=1, description="prediction audit rows kept per tenant")
    # Tracing is on only when an OTLP endpoint is configured (the exporter reads the standard
    # OTEL_* variables itself); unset costs nothing per request.
    otel_exporter_otlp_endpoint: str | None = None
    # --- keys: tenant API keys (shared/tenant_keys.py, shared/tenant_auth.py) ---
    # `keys`: every tenant-scoped request needs X-Tenant-Key of its tenant; `none`: X-Tenant-ID
    # is trusted as sent (today's behaviour). Unset: `keys` with ENV=prod, `none` otherwise.
    tenant_auth: Literal["keys", "none"] = Field(
        None,  # type: ignore[assignment]  # resolved from ENV by _tenant_auth_by_profile
        validate_default=True,
        description="keys | none; default keys with ENV=prod, none with dev and test",
    )
    tenant_key_cache_seconds: float = Field(
        5.0,
        ge=0,
        le=300,
        description="verified (and refused) tenant keys are remembered this long per process: "
        "a revoked key stops working everywhere within it; 0 asks the store every time",
    )
    tenant_key_cache_size: int = Field(
        10_000, ge=1, description="tenant keys remembered per process (oldest dropped first)"
    )
    tenant_keys_max: int = Field(
        10, ge=1, le=1000, description="keys one tenant may hold at once (for rotation)"
    )
    # --- data: tenant-scoped data access, outbound HTTP, /metrics (shared/data_access.py,
    # shared/outbound.py, shared/metrics_auth.py) ---
    data_root: str | None = Field(
        None,
        description="where tenants' files live, one folder per tenant (file:// or gs://); "
        "unset: <MODEL_REGISTRY_URI>/_data",
    )
    ticker_allowed_hosts: str = Field(
        "api.coinbase.com",
        description="comma-separated hosts a ticker source may call: host (https only) or "
        "http://host:port (plain http to exactly that port)",
    )
    metrics_token: SecretStr | None = Field(
        None, description="/metrics needs Authorization: Bearer <token>; required with ENV=prod"
    )
    metrics_tenant_labels: bool = Field(
        True, description="false: /metrics sums over tenant and model (no names exposed)"
    )
    # --- races: the per-model lifecycle lock (shared/model_lock.py) ---
    lifecycle_lock_ttl_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="a lifecycle lock (create/activate/delete/version of one model) left by a "
        "crashed instance expires after this long",
    )
    lifecycle_lock_wait_seconds: float = Field(
        2.0,
        ge=0,
        le=60,
        description="how long a lifecycle change waits for another one on the same model "
        "before answering 409 model_busy",
    )
    # --- bounds: input bounds (shared/limits.py, shared/numbers.py, shared/param_bounds.py,
    # shared/spec_proof.py); over a bound → 422 naming it, before anything is built or stored ---
    max_abs_value: float = Field(
        1e15, gt=0, le=1e300, description="largest |number| accepted in x, y or an observation"
    )
    max_features_per_sample: int = Field(1000, ge=1, description="features in one x object")
    max_feature_name_chars: int = Field(
        256, ge=1, description="characters of a feature name, a string feature or a class label"
    )
    max_text_chars: int = Field(10_000, ge=1, description="characters of a text x")
    max_samples_per_request: int = Field(
        1000,
        ge=1,
        validation_alias=AliasChoices("max_samples_per_request", "max_samples_per_learn"),
        description="samples in one learn request (MAX_SAMPLES_PER_LEARN is read too)",
    )
    max_fanout: int = Field(
        1000, ge=1, description="observations x subscribed models in one ingest request"
    )
    max_models_per_tenant: int = Field(1000, ge=1, description="models one tenant may hold")
    max_model_features: int = Field(
        10_000, ge=1, description="distinct feature names (or text terms) one model may learn"
    )
    max_ensemble_models: int = Field(
        100, ge=1, description="estimators of an ensemble (n_models, n_estimators)"
    )
    max_tree_depth: int = Field(50, ge=1, description="max_depth of a tree or forest")
    max_ngram: int = Field(3, ge=1, le=10, description="upper end of a text ngram_range")
    spec_proof_seconds: float = Field(
        5.0, gt=0, le=300, description="time a new spec gets to build, learn and predict once"
    )
    max_model_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="pickled size of a new model after its proof"
    )
    # --- isolation: bounded executors, job quotas, state-store deadline (shared/executors.py,
    # shared/training/jobs.py, shared/state/breaker.py, shared/deadline.py) ---
    cpu_workers: int = Field(
        2,
        ge=1,
        le=64,
        description="threads for CPU-heavy request work: model builds, learn batches, cold "
        "loads, batch predictions, monitoring folds",
    )
    io_workers: int = Field(
        8, ge=1, le=256, description="threads for registry, data-set and event-log I/O"
    )
    job_workers: int = Field(
        2, ge=1, le=64, description="threads running training jobs (a pool of their own)"
    )
    max_jobs_per_tenant: int = Field(
        2,
        ge=1,
        le=1000,
        description="one tenant's training jobs queued or running in this instance at once; "
        "one more answers 429 job_quota_exceeded",
    )
    max_queued_jobs: int = Field(
        16,
        ge=1,
        le=10_000,
        description="training jobs queued or running in this instance, all tenants together; "
        "one more answers 429 job_queue_full",
    )
    request_deadline_seconds: float = Field(
        8.0,
        gt=0,
        le=600,
        description="how long one request may wait for a model's lock in all (behind other "
        "requests to the same model); past it: 503",
    )
    state_breaker_cooldown_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="after a state-store call fails, calls fail at once (503) for this long, "
        "then one call probes the store; 0 disables the breaker",
    )
    # --- server: connection protections of the launcher (shared/server.py, connection_guard) ---
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="a connection that has not sent a whole request header "
        "this long after it opened (or after its first byte on a kept-alive one) is closed",
    )
    body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=600,
        description="a request body that sends no byte for this long is "
        "answered 408 (or closed, if the response has started)",
    )
    keepalive_timeout_seconds: float = Field(
        5.0, gt=0, le=600, description="an idle keep-alive connection is closed after this"
    )
    max_connections: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="open connections per worker process (also kept "
        "under the open-file limit); at the cap the connection waiting longest for a request "
        "header is closed for a new one, and with none waiting the new one gets 503",
    )
    max_header_bytes: int = Field(
        64 * 1024, ge=1024, le=1024 * 1024, description="request line plus headers; more → 431"
    )
    # --- labels: delayed labels (shared/state/predictions.py, shared/labels.py) ---
    label_ttl_seconds: int = Field(
        7 * 24 * 3600,
        ge=1,
        description="how long a prediction's features are kept for a later label",
    )
    label_max_per_request: int = Field(
        1000, ge=1, le=10_000, description="labels in one POST …/labels request"
    )
    label_max_kept_per_model: int = Field(
        100_000,
        ge=1,
        description="unlabelled predictions kept per model; beyond it the oldest are dropped",
    )
    # --- oip: the Open Inference Protocol v2 on the predict function (shared/oip_api.py) ---
    oip_max_rows: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="rows of one Open Inference Protocol infer request (an input's shape[0]); "
        "inputs per request are bounded by MAX_FEATURES_PER_SAMPLE, the body by MAX_BODY_BYTES",
    )

    # --- pushin: push ingestion of CloudEvents (shared/push_ingest.py) ---
    events_max_per_batch: int = Field(
        100,
        ge=1,
        le=10_000,
        description="CloudEvents in one batched-mode POST /api/v1/events "
        "(application/cloudevents-batch+json); the body is bounded by MAX_BODY_BYTES",
    )

    # --- scale: clustered state and events (issue 16; shared/state, shared/events/jetstream.py) ---
    state_min_replicas: int = Field(
        0,
        ge=0,
        le=5,
        description="replicas that must confirm an append (Redis WAIT on the append's own "
        "connection) before it is acknowledged; not confirmed in time -> 503. 0 acknowledges "
        "on the primary alone (a primary failover can then lose acknowledged learns)",
    )
    state_replica_timeout_ms: int = Field(
        500,
        ge=1,
        le=60_000,
        description="how long an append waits for STATE_MIN_REPLICAS confirmations",
    )
    events_replicas: int | None = Field(
        None,
        ge=1,
        le=5,
        description="JetStream replicas of the event stream (3 on a 3-node NATS cluster); "
        "unset: a new stream gets 1 and an existing one keeps its count",
    )

    # --- ensembles: model selection, ensembles, wrappers, feature extraction (issue 17;
    # shared/catalog_families.py, shared/param_bounds.py) ---
    max_nested_models: int = Field(
        10,
        ge=2,
        le=100,
        description="specs in one list of models (a selector's or an ensemble's `models`)",
    )
    max_multiclass_labels: int = Field(
        100,
        ge=2,
        le=10_000,
        description="classes a one_vs_rest / one_vs_one classifier learns (one binary "
        "classifier per class, per pair of classes)",
    )
    max_polynomial_features: int = Field(
        10_000, ge=1, description="features a polynomial_extender may make of one x"
    )
    max_rbf_components: int = Field(1000, ge=1, description="n_components of an rbf_sampler")
    max_agg_groups: int = Field(
        100_000, ge=1, description="groups (distinct `by` values) an agg / target_agg keeps"
    )
    max_agg_by: int = Field(8, ge=1, le=100, description="features an agg / target_agg groups by")
    # --- sse: live Server-Sent Events (shared/monitoring/sse.py, shared/events/feed.py, live.py) ---
    stream_max_clients: int = Field(
        100,
        ge=1,
        le=10_000,
        description="open GET /api/v1/stream/events streams per instance; one more answers "
        "503 stream_capacity with Retry-After",
    )
    stream_heartbeat_seconds: float = Field(
        15.0, gt=0, le=300, description="a comment line on an idle stream this often"
    )
    stream_prediction_every: int = Field(
        10,
        ge=0,
        le=1_000_000,
        description="every n-th prediction of a model (per instance) is a live `prediction` "
        "event; 0 sends none",
    )
    stream_metrics_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="a live `metrics` event per model this often while it learns",
    )
    stream_queue_events: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="events buffered for one slow stream; past it the stream ends (the "
        "client resumes by Last-Event-ID)",
    )
    stream_max_filter_chars: int = Field(
        512, ge=16, le=8192, description="the `types` and `model` query parameters, each"
    )
    stream_poll_seconds: float = Field(
        0.25, gt=0, le=10, description="how often a stream reads the local event log (no NATS)"
    )
    stream_resume_window_seconds: float = Field(
        60.0,
        ge=0,
        le=86_400,
        description="a Last-Event-ID is searched from this long before its time (clock skew "
        "between instances, NATS and the outbox's delay)",
    )
    stream_live_log_bytes: int = Field(
        1024 * 1024,
        ge=4096,
        description="the local live log (no NATS) is rotated past this size",
    )
    # --- catalogfix: micro-clusters a density-based clusterer keeps (shared/bounded_clusterers.py) ---
    max_micro_clusters: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="micro-clusters a dbstream / denstream keeps (a sample that would open "
        "one more is refused, 422 learn_failed) and the most a clustream may ask for",
    )

    # --- live2: the live chart's history (shared/monitoring/timeline.py) ---
    timeline_max_points: int = Field(
        1000,
        ge=1,
        le=10_000,
        description="points GET /api/v1/models/{m}/timeline answers at most (its ?limit=: "
        "the model's newest audited predictions)",
    )

    # --- ssefix: bounds of one SSE stream (shared/monitoring/sse.py, shared/events/feed.py) ---
    stream_max_clients_per_tenant: int = Field(
        10,
        ge=1,
        le=10_000,
        description="open streams of one tenant per instance; one more answers 429 "
        "stream_tenant_capacity (so one tenant cannot take every STREAM_MAX_CLIENTS place)",
    )
    stream_send_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="a stream whose client reads nothing for this long (its socket buffer "
        "full) is dropped and its place freed",
    )
    stream_max_seconds: float = Field(
        3600.0,
        gt=0,
        le=86_400,
        description="a stream ends cleanly after this long; the client reconnects with its "
        "Last-Event-ID (and its tenant key is checked again)",
    )
    stream_resume_max_events: int = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="events one Last-Event-ID resume may scan; past it the stream starts "
        "from now (what lies between is not replayed)",
    )
    stream_metrics_max_models: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="models whose live `metrics` one instance folds per STREAM_METRICS_SECONDS "
        "tick; the rest wait for the next tick",
    )
    # --- noisy: one tenant's CPU-heavy work beside another's requests (shared/executors.py,
    # shared/learn_process.py) ---
    gil_switch_ms: float = Field(
        0.5,
        gt=0,
        le=100,
        description="how long a pool thread (a learn batch, a build, a job) may keep the GIL "
        "while the event loop waits for it (sys.setswitchinterval), while such a task runs: "
        "short, so other tenants' requests are not each held up behind it",
    )
    learn_processes: int = Field(
        1,
        ge=0,
        le=64,
        description="worker processes that run learn batches of LEARN_PROCESS_MIN_SAMPLES or "
        "more on a copy of the model, off the serving process's GIL; 0: in the CPU threads",
    )
    learn_process_min_samples: int = Field(
        256,
        ge=1,
        le=1_000_000,
        description="a learn batch with at least this many samples is learned in a worker "
        "process (LEARN_PROCESSES); smaller ones cost less than the model's round trip",
    )
    job_processes: int = Field(
        2,
        ge=0,
        le=64,
        description="worker processes that fit in-process training jobs, off the serving "
        "process's GIL (a job's data read and its saved version stay in JOB_WORKERS); 0: the "
        "fit runs in the job's thread",
    )
    proof_processes: int = Field(
        2,
        ge=0,
        le=64,
        description="worker processes that prove a new spec (build it, learn and predict a "
        "sample) off the serving process's GIL; 0: in the CPU threads",
    )
    worker_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="how much lower the worker processes' CPU priority (os.nice) is than the "
        "serving process's (LEARN_PROCESSES, JOB_PROCESSES, PROOF_PROCESSES): where cores are short, a "
        "tenant's bulk work takes the CPU the serving process leaves, not the share every "
        "tenant's requests need",
    )
    max_heavy_learns_per_tenant: int = Field(
        2,
        ge=1,
        le=1000,
        description="one tenant's learn batches of LEARN_PROCESS_MIN_SAMPLES or more under way "
        "in this instance at once; one more answers 429 learn_quota_exceeded",
    )

    @field_validator("state_url")
    @classmethod
    def _known_state_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in STATE_SCHEMES:
            raise ValueError(
                f"must start with one of {', '.join(s + '://' for s in STATE_SCHEMES)}"
            )
        if is_cluster_url(value):
            cluster_seeds(value)  # ValueError names the bad seed or option
            cluster_tls(value)
        return value

    @field_validator("admin_api_key", "metrics_token", mode="before")
    @classmethod
    def _blank_key_is_unset(cls, value: object) -> object:
        # ADMIN_API_KEY="" must not become a key that an empty X-API-Key header matches.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("tenant_auth", mode="before")
    @classmethod
    def _tenant_auth_by_profile(cls, value: object, info: ValidationInfo) -> object:
        # Unset (or blank): authenticated tenants in prod, `make run` and the suite keyless.
        if value is None or (isinstance(value, str) and not value.strip()):
            return "keys" if info.data.get("env") == "prod" else "none"
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("ticker_allowed_hosts")
    @classmethod
    def _hosts_look_like_hosts(cls, value: str) -> str:
        parse_allowed(value)  # ValueError names the bad entry
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_look_like_origins(cls, value: str) -> str:
        for origin in (o.strip() for o in value.split(",")):
            if origin and origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: use scheme://host[:port] without a path "
                    "or trailing slash, comma-separated"
                )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def state_is_memory(self) -> bool:
        return self.state_url.startswith("memory://")

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        """The allowed origins, in order; ("*",) allows any (refused in prod)."""
        return tuple(o for o in (o.strip() for o in self.cors_origins.split(",")) if o)


class ConfigError(SystemExit):
    """A bad environment value: stops the process with a message naming the variable."""


def load_settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
    if settings.state_is_memory and settings.web_concurrency > 1:
        raise ConfigError(
            "invalid configuration: STATE_URL: memory:// holds state in one process; "
            f"WEB_CONCURRENCY={settings.web_concurrency} needs redis://"
        )
    if (
        settings.state_min_replicas
        and settings.state_replica_timeout_ms >= settings.state_timeout_seconds * 1000
    ):
        # WAIT blocks the append's connection that long: the socket would time out first
        raise ConfigError(
            "invalid configuration: STATE_REPLICA_TIMEOUT_MS: "
            f"{settings.state_replica_timeout_ms} must be below STATE_TIMEOUT_SECONDS "
            f"({settings.state_timeout_seconds} s)"
        )
    if settings.stream_max_clients >= settings.max_connections:
        # each stream holds a connection for good: at the cap no request could get in
        raise ConfigError(
            "invalid configuration: STREAM_MAX_CLIENTS: "
            f"{settings.stream_max_clients} must be below MAX_CONNECTIONS "
            f"({settings.max_connections}), or open streams would take every connection and "
            "leave none for requests"
        )
    _check_profile(settings)
    return settings


def _check_profile(settings: Settings) -> None:
    """ENV=prod refuses what is only acceptable on a developer's machine (README: profiles)."""
    if settings.env != "prod":
        return
    if "*" in settings.cors_origin_list:
        raise ConfigError(
            "invalid configuration: CORS_ORIGINS: '*' (any origin) is refused with ENV=prod; "
            "list the allowed origins, comma-separated"
        )
    key = settings.admin_api_key
    if key is not None and len(key.get_secret_value()) < MIN_PROD_ADMIN_KEY:
        raise ConfigError(
            f"invalid configuration: ADMIN_API_KEY: shorter than {MIN_PROD_ADMIN_KEY} characters "
            "is refused with ENV=prod; use a long random key (or unset it to refuse admin routes)"
        )
    if settings.tenant_auth == "keys" and key is None:
        raise ConfigError(
            "invalid configuration: TENANT_AUTH: keys (the default with ENV=prod) needs "
            "ADMIN_API_KEY, or no tenant key could ever be issued; set ADMIN_API_KEY, or "
            "TENANT_AUTH=none to trust X-Tenant-ID as sent"
        )


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated on first use."""
    return load_settings()


def reset_settings_cache() -> None:
    """Forget cached settings (tests change the environment between apps)."""
    get_settings.cache_clear()


__all__ = ["ConfigError", "Settings", "get_settings", "load_settings", "reset_settings_cache"]
