"""Configuration: read once from the environment, validated at start-up (DESIGN §7)."""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

STATE_SCHEMES = ("memory", "redis", "rediss", "unix")


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
    cors_origins: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    google_cloud_project: str | None = None
    train_job_name: str | None = None
    train_job_region: str = "europe-west1"
    run_api_endpoint: str | None = Field(None, description="Run Admin API override (tests)")
    model_cache_size: int = Field(256, ge=1)
    web_concurrency: int = Field(1, ge=1, description="worker processes serving this app")
    state_timeout_seconds: float = Field(2.0, gt=0)
    idempotency_ttl_seconds: int = Field(24 * 3600, ge=60)
    events_dir: str = ".data/events"
    batch_max_items: int = Field(10_000, ge=1)
    job_ttl_seconds: int = Field(7 * 24 * 3600, ge=60)

    @field_validator("state_url")
    @classmethod
    def _known_state_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in STATE_SCHEMES:
            raise ValueError(
                f"must start with one of {', '.join(s + '://' for s in STATE_SCHEMES)}"
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def state_is_memory(self) -> bool:
        return self.state_url.startswith("memory://")


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
    return settings


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated on first use."""
    return load_settings()


def reset_settings_cache() -> None:
    """Forget cached settings (tests change the environment between apps)."""
    get_settings.cache_clear()


__all__ = ["ConfigError", "Settings", "get_settings", "load_settings", "reset_settings_cache"]
