"""The compat surfaces' own knobs (the ML engine's market data, retraining defaults and
drift threshold), read from the same environment variables as before they left the core
settings (MARKET_DATA_*, TRAIN_SYMBOLS, TRAIN_LOOKBACK, TRAIN_TEST_SIZE, TRAIN_RANDOM_STATE,
TRAIN_CV_FOLDS, DRIFT_THRESHOLD).

Read fresh on each call (a handful of variables, on admin and monitoring calls only), so a
test that changes the environment sees it without a cache to reset; compat/engine/routes.py
loads them once at import so a bad value still stops the start-up."""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.outbound import parse_allowed, parse_base_url
from shared.settings import ConfigError, load_settings


class CompatSettings(BaseSettings):
    """One environment variable per field (upper-case name), as in shared/settings.py."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # The ML engine's market data (compat/engine/market_data.py); its host must be allowed
    # like every outbound call (TICKER_ALLOWED_HOSTS, a core setting: one outbound policy)
    market_data_base_url: str | None = Field(None, description="unset: River's SP500Stocks")
    market_data_timeout_seconds: float = Field(5.0, gt=0, le=60)
    market_data_retries: int = Field(3, ge=0, le=10)
    market_data_backoff_seconds: float = Field(0.2, ge=0, le=5)
    # ML engine `POST /admin/train`: defaults of a retraining run
    train_symbols: str = Field("AAPL,AMZN,IBM,INTC,JNJ,JPM,KO,MSFT,WMT,XOM", min_length=1)
    train_lookback: int = Field(750, ge=30, description="most recent observations trained on")
    train_test_size: float = Field(0.2, ge=0, lt=1)
    train_random_state: int = 42
    train_cv_folds: int = Field(5, ge=1, le=20)
    # ML engine `GET /monitoring/drift`
    drift_threshold: float = Field(0.05, gt=0, lt=1, description="KS p-value below: drift")


def compat_settings() -> CompatSettings:
    try:
        settings = CompatSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
    _check_market_data(settings.market_data_base_url, load_settings().ticker_allowed_hosts)
    return settings


def _check_market_data(base_url: str | None, allowed_hosts: str) -> None:
    """The market-data service is an outbound call like a ticker: its host must be allowed."""
    if base_url is None:
        return
    try:
        origin, _ = parse_base_url(base_url)
    except ValueError:
        raise ConfigError(
            "invalid configuration: MARKET_DATA_BASE_URL: use http(s)://host[:port][/path], "
            "without userinfo, query or fragment"
        ) from None
    if origin not in parse_allowed(allowed_hosts):
        raise ConfigError(
            "invalid configuration: MARKET_DATA_BASE_URL: its host is not in "
            "TICKER_ALLOWED_HOSTS; add it there (host for https, http://host:port for http)"
        )
