"""Request-shape bounds: how much one request may ask of the service (README: Input bounds).

Every bound is a setting; going over one is a 422 naming the setting and its value, answered
before anything is built, learned or stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import ApiError, unprocessable
from shared.settings import Settings, get_settings


@dataclass(frozen=True)
class Limits:
    max_abs_value: float
    max_features_per_sample: int
    max_feature_name_chars: int
    max_text_chars: int
    max_samples_per_request: int
    max_fanout: int
    max_models_per_tenant: int
    max_model_features: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            max_abs_value=settings.max_abs_value,
            max_features_per_sample=settings.max_features_per_sample,
            max_feature_name_chars=settings.max_feature_name_chars,
            max_text_chars=settings.max_text_chars,
            max_samples_per_request=settings.max_samples_per_request,
            max_fanout=settings.max_fanout,
            max_models_per_tenant=settings.max_models_per_tenant,
            max_model_features=settings.max_model_features,
        )


_cached: tuple[Settings, Limits] | None = None


def current() -> Limits:
    """The limits of the process's settings, cached per Settings object by identity (an
    lru_cache keyed by the settings hashed every field of them, three times a predict)."""
    global _cached
    settings, cached = get_settings(), _cached
    if cached is None or cached[0] is not settings:
        cached = _cached = (settings, Limits.of(settings))
    return cached[1]


def over(what: str, count: int, setting: str, bound: int | float, code: str) -> ApiError:
    """The one shape of every bound error: what, how much, which setting, its value."""
    return unprocessable(f"{what} is {count}; {setting} is {bound:g}", code)


def check_samples(count: int, limits: Limits | None = None) -> None:
    limits = limits or current()
    if count > limits.max_samples_per_request:
        raise over(
            "the number of samples",
            count,
            "MAX_SAMPLES_PER_REQUEST",
            limits.max_samples_per_request,
            "too_many_samples",
        )


def check_fanout(observations: int, models: int, limits: Limits | None = None) -> None:
    """Each observation is learned by every subscribed model: bound the product."""
    limits = limits or current()
    if observations * models > limits.max_fanout:
        raise over(
            f"observations x subscribed models ({observations} x {models})",
            observations * models,
            "MAX_FANOUT",
            limits.max_fanout,
            "fanout_too_large",
        )


def check_model_count(existing: int, limits: Limits | None = None) -> None:
    limits = limits or current()
    if existing >= limits.max_models_per_tenant:
        raise unprocessable(
            f"this tenant already holds {existing} models; MAX_MODELS_PER_TENANT is "
            f"{limits.max_models_per_tenant}: delete one first",
            "too_many_models",
        )


def query_int(raw: str, name: str, low: int, high: int) -> int:
    """A bounded integer query parameter: ASCII digits only, checked by length before it is
    converted (a 5,000-digit value is refused as out of range, never parsed)."""
    if (
        not raw.isascii()
        or not raw.isdigit()
        or len(raw) > len(str(high))
        or not (low <= int(raw) <= high)
    ):
        raise ApiError(400, f"invalid_{name}", f"{name} must be an integer from {low} to {high}")
    return int(raw)
