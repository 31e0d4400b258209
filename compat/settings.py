"""The compat surfaces' own knobs (ML engine retraining defaults and drift threshold), read
from the same environment variables as before they left the core settings (TRAIN_SYMBOLS,
TRAIN_LOOKBACK, TRAIN_TEST_SIZE, TRAIN_RANDOM_STATE, TRAIN_CV_FOLDS, DRIFT_THRESHOLD).

Read fresh on each call (a handful of variables, on admin and monitoring calls only), so a
test that changes the environment sees it without a cache to reset; compat/engine/routes.py
loads them once at import so a bad value still stops the start-up."""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import ConfigError


class CompatSettings(BaseSettings):
    """One environment variable per field (upper-case name), as in shared/settings.py."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

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
        return CompatSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
