"""Catalog parameter ranges: every parameter that scales work or memory is bounded.

Checked over the whole spec (nested specs included) before any estimator is built, so an
abusive spec (`n_models: 1e9`, `ngram_range: [1, 2000]`) is a 422 at once, naming the
parameter and its range. Ranges that are operator settings name their variable.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import unprocessable
from shared.numbers import is_number, within
from shared.pattern_bounds import PatternTooCostly, check_pattern
from shared.settings import Settings, get_settings

MAX_SPEC_NESTING = 3  # a spec inside a spec inside a spec (bagging of a pipeline, say)
MAX_WINDOW = 10_000  # scalers' window_size: values kept per feature
MAX_LAYERS = 8  # hidden layers of an MLP...
MAX_LAYER_SIZE = 1024  # ...and neurons in each
MAX_CLASSES = 1000  # labels listed in an MLP classifier's classes
MAX_PATTERN_CHARS = 256  # a tokenizer_pattern
MAX_STRING_CHARS = 256  # any other string parameter
MAX_INT = 2**31 - 1  # an integer parameter without a range of its own
# River's defaults; an output code classifier holds `code_size` binary classifiers
ENSEMBLE_SIZE = {"n_models": 10, "n_estimators": 10, "code_size": 10}


@dataclass(frozen=True)
class Range:
    """`low..high` (inclusive); `high` may be the Settings field that holds it."""

    low: float
    high: float | str
    integer: bool = True

    def upper(self, settings: Settings) -> float:
        return getattr(settings, self.high) if isinstance(self.high, str) else self.high

    def describe(self, settings: Settings) -> str:
        text = f"{_number(self.low)}..{_number(self.upper(settings))}"
        return f"{text} ({self.high.upper()})" if isinstance(self.high, str) else text


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# By parameter name, for every kind that has it (GET /api/v1/catalog lists them per kind).
RANGES: dict[str, Range] = {
    # ensembles: estimators kept and learned per sample
    "n_models": Range(1, "max_ensemble_models"),
    "n_estimators": Range(1, "max_ensemble_models"),
    "lambda_value": Range(1, 100),  # Poisson rate: times ARF learns each sample per tree
    # trees: size and how often they work
    "max_depth": Range(1, "max_tree_depth"),
    "max_nodes": Range(1, 1_000_000),
    "max_size": Range(0.001, 1024, integer=False),  # MiB
    "grace_period": Range(1, 100_000),
    "min_samples_split": Range(1, 100_000),
    "memory_estimate_period": Range(1_000, 1_000_000_000),
    "drift_window_threshold": Range(1, 100_000),
    "nb_threshold": Range(0, 100_000),
    # windows and neighbours
    "window_size": Range(1, MAX_WINDOW),
    "n_neighbors": Range(1, 1_000),
    "cleanup_every": Range(0, 1_000_000),
    # time series: lags and seasons kept
    "p": Range(0, 100),
    "q": Range(0, 100),
    "d": Range(0, 3),
    "m": Range(1, 1_000),
    "sp": Range(0, 10),
    "sd": Range(0, 3),
    "sq": Range(0, 10),
    "seasonality": Range(0, 1_000),
    # MLP
    "max_iter": Range(1, 10_000),
    "n_iter_no_change": Range(1, 10_000),
    "max_fun": Range(1, 100_000),
    "batch_size": Range(1, 10_000),
    # seeds
    "seed": Range(0, 2**32 - 1),
    "random_state": Range(0, 2**32 - 1),
    "mode": Range(0, 2),
    # model selection, ensembles, wrappers, feature extraction (issue 17)
    "code_size": Range(1, "max_ensemble_models"),
    "lam": Range(1, 100),  # Poisson rate of SRP, as lambda_value
    "w": Range(1, 100, integer=False),  # Poisson rate of leveraging bagging
    "budget": Range(1, 1_000_000_000),
    "eta": Range(2, 100),
    "burn_in": Range(0, 100_000),
    "sampling_rate": Range(0.0001, 10, integer=False),  # Poisson rate of over-sampling
    "degree": Range(1, 5),
    "n_components": Range(1, "max_rbf_components"),
    # --- anomaly & clustering (issue 17): trees, projections, clusters, chunks ---
    "n_trees": Range(1, "max_ensemble_models"),  # half_space_trees: trees scored per sample
    "height": Range(1, 16),  # half_space_trees: 2**height leaves per tree
    "n_bins": Range(1, 1_000),  # loda: histogram bins per projection
    "n_random_cuts": Range(1, 1_000),  # loda: projections
    "n_clusters": Range(1, 1_000),
    "n_macro_clusters": Range(1, 1_000),
    "max_micro_clusters": Range(1, "max_micro_clusters"),  # clustream keeps this many
    "micro_cluster_r_factor": Range(1, 1_000),
    "time_window": Range(1, 1_000_000),
    "time_gap": Range(1, 1_000_000),
    "chunk_size": Range(1, 10_000),
    # denstream: its initial DBSCAN over the buffer is quadratic in n_samples_init
    "n_samples_init": Range(1, 2_000),
    "stream_speed": Range(1, 100_000),
    # dbstream / denstream: micro-cluster radius and fading; their count is bounded apart
    # (MAX_MICRO_CLUSTERS, shared/bounded_clusterers.py)
    "clustering_threshold": Range(1e-6, 1e6, integer=False),
    "fading_factor": Range(1e-6, 1, integer=False),
    "cleanup_interval": Range(1, 1_000_000, integer=False),
    "minimum_weight": Range(0, 1e6, integer=False),
    "intersection_factor": Range(1e-6, 1, integer=False),
    "decaying_factor": Range(1e-6, 1, integer=False),
    "beta": Range(0, 1, integer=False),  # denstream (River: (0, 1]), holt_winters
}
# `null` (River: no limit) is replaced by the bound.
BOUND_WHEN_NULL = frozenset({"max_depth"})


def _refuse(where: str, what: str) -> Exception:
    return unprocessable(f"{where} {what}", "parameter_out_of_range")


def _check_param(where: str, param: str, value: Any, settings: Settings) -> None:
    if value is None or isinstance(value, bool):
        return
    if is_number(value):
        rule = RANGES.get(param)
        if rule is None:
            limit = MAX_INT if isinstance(value, int) else settings.max_abs_value
            if not within(value, limit):
                raise _refuse(where, f"must be a finite number with |value| <= {limit:g}")
            return
        high = rule.upper(settings)
        if not rule.low <= value <= high:  # exact for ints of any size; NaN and inf fail too
            raise _refuse(where, f"is out of range: allowed {rule.describe(settings)}")
        return
    if isinstance(value, str):
        if param == "tokenizer_pattern":
            _check_pattern(where, value, settings)
        elif len(value) > MAX_STRING_CHARS:
            raise _refuse(where, f"is longer than {MAX_STRING_CHARS} characters")
        return
    if isinstance(value, list):
        _check_list(where, param, value, settings)
    elif isinstance(value, Mapping) and param == "desired_dist":
        _check_distribution(where, value, settings)


def _check_pattern(where: str, pattern: str, settings: Settings) -> None:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise _refuse(where, f"is longer than {MAX_PATTERN_CHARS} characters")
    try:
        re.compile(pattern)
    except (re.error, OverflowError) as exc:  # a{99999999999}: a count past C's int
        raise unprocessable(
            f"{where} is not a valid regular expression: {exc}", "invalid_parameter"
        ) from None
    try:  # River matches it with `re`, under the GIL, on every text the model learns
        check_pattern(pattern, settings.max_text_chars)
    except PatternTooCostly as exc:
        raise _refuse(where, str(exc)) from None


def _check_list(where: str, param: str, value: list[Any], settings: Settings) -> None:
    if param == "ngram_range":
        top = settings.max_ngram
        if (
            len(value) != 2
            or not all(is_number(v) and within(v, top) for v in value)
            or not 1 <= value[0] <= value[1] <= top
        ):
            raise _refuse(where, f"must be [low, high] with 1 <= low <= high <= {top} (MAX_NGRAM)")
    elif param == "hidden_layer_sizes":
        if len(value) > MAX_LAYERS or not all(
            is_number(v) and within(v, MAX_LAYER_SIZE) and v >= 1 for v in value
        ):
            raise _refuse(
                where, f"must list at most {MAX_LAYERS} layers of 1..{MAX_LAYER_SIZE} neurons"
            )
    elif param == "classes":
        if len(value) > MAX_CLASSES:
            raise _refuse(where, f"lists more than {MAX_CLASSES} labels")
        for label in value:
            if isinstance(label, str) and len(label) > settings.max_feature_name_chars:
                raise _refuse(
                    where,
                    f"holds a label longer than {settings.max_feature_name_chars} characters "
                    "(MAX_FEATURE_NAME_CHARS)",
                )
            if is_number(label) and not within(label, settings.max_abs_value):
                raise _refuse(where, "holds a label out of range (MAX_ABS_VALUE)")
    elif param == "by":
        if len(value) > settings.max_agg_by:
            raise _refuse(where, f"lists more than {settings.max_agg_by} features (MAX_AGG_BY)")
        for name in value:
            if isinstance(name, str) and len(name) > settings.max_feature_name_chars:
                raise _refuse(where, "names a feature longer than MAX_FEATURE_NAME_CHARS")
    elif len(value) > MAX_CLASSES:
        raise _refuse(where, f"lists more than {MAX_CLASSES} items")


def _check_distribution(where: str, value: Mapping[str, Any], settings: Settings) -> None:
    """A class distribution (label -> share): at most MAX_CLASSES labels, shares in (0, 1]."""
    if len(value) > MAX_CLASSES:
        raise _refuse(where, f"lists more than {MAX_CLASSES} labels")
    for label, share in value.items():
        if len(str(label)) > settings.max_feature_name_chars:
            raise _refuse(where, "holds a label longer than MAX_FEATURE_NAME_CHARS")
        if not is_number(share) or not 0 < share <= 1:
            raise _refuse(where, f"gives {str(label)[:32]!r} a share out of range: allowed (0, 1]")


def _nested(value: Any) -> list[Mapping[str, Any]] | None:
    """The steps of a nested spec (`{"kind", ...}` or `{"steps": [...]}`), else None."""
    if isinstance(value, Mapping):
        if "steps" in value and isinstance(value["steps"], list):
            return [s for s in value["steps"] if isinstance(s, Mapping)]
        if "kind" in value:
            return [value]
    return None


def _walk(
    steps: list[Mapping[str, Any]], depth: int, settings: Settings, ensembles: Container[str]
) -> int:
    """Check every parameter; return the estimators one sample reaches (ensembles multiply)."""
    if depth > MAX_SPEC_NESTING:
        raise unprocessable(f"specs nest at most {MAX_SPEC_NESTING} deep", "parameter_out_of_range")
    widest = 1
    for step in steps:
        kind = step.get("kind")
        params = step.get("params") or {}
        if not isinstance(params, Mapping):
            continue  # the catalog says what is wrong with it
        size = ENSEMBLE_SIZE["n_models"] if kind in ensembles else 1
        inner = 0  # the estimators one sample reaches below this step, nested specs summed
        for param, value in params.items():
            where = f"{kind}.params.{param}"
            nested = _nested(value)
            if nested is not None and param != "desired_dist":
                inner += _walk(nested, depth + 1, settings, ensembles)
                continue
            specs = _spec_list(where, value, settings)
            if specs is not None:  # a list of models: each is reached
                inner += sum(_walk(s, depth + 1, settings, ensembles) for s in specs)
                continue
            _check_param(where, str(param), value, settings)
            if param in ENSEMBLE_SIZE and is_number(value):
                size = int(value)
        widest = max(widest, size * max(inner, 1))
    return widest


def _spec_list(where: str, value: Any, settings: Settings) -> list[list[Mapping[str, Any]]] | None:
    """The specs of a list of models (MAX_NESTED_MODELS at most), else None."""
    if not isinstance(value, list) or not value:
        return None
    specs = [_nested(item) for item in value]
    if all(s is None for s in specs):
        return None
    if len(value) > settings.max_nested_models:
        raise _refuse(
            where, f"lists {len(value)} models; MAX_NESTED_MODELS is {settings.max_nested_models}"
        )
    return [s for s in specs if s is not None]  # a non-spec item: the catalog says what


def check_spec(
    steps: list[Mapping[str, Any]], ensembles: Container[str], settings: Settings | None = None
) -> None:
    """422 `parameter_out_of_range` for the first parameter out of its range, or when nested
    ensembles would hold more than MAX_ENSEMBLE_MODELS estimators in all. `ensembles`: the
    kinds that hold `n_models` estimators, given by the catalog (which imports this module,
    so it cannot be imported here)."""
    settings = settings or get_settings()
    total = _walk(steps, 1, settings, ensembles)
    if total > settings.max_ensemble_models:
        raise unprocessable(
            f"nested ensembles would hold {total} estimators; MAX_ENSEMBLE_MODELS is "
            f"{settings.max_ensemble_models}",
            "parameter_out_of_range",
        )


def bound_defaults(params: dict[str, Any], known: Mapping[str, Any], settings: Settings) -> None:
    """Fill a parameter whose River default is "no limit" with its bound (max_depth)."""
    for param in BOUND_WHEN_NULL:
        if param in known and params.get(param) is None:
            params[param] = int(RANGES[param].upper(settings))


def describe(params: Mapping[str, Any], settings: Settings | None = None) -> dict[str, str]:
    """The ranges of a kind's parameters, for GET /api/v1/catalog."""
    settings = settings or get_settings()
    shown = {p: RANGES[p].describe(settings) for p in params if p in RANGES}
    if "ngram_range" in params:
        shown["ngram_range"] = f"[low, high], 1 <= low <= high <= {settings.max_ngram} (MAX_NGRAM)"
    if "hidden_layer_sizes" in params:
        shown["hidden_layer_sizes"] = f"<= {MAX_LAYERS} layers of 1..{MAX_LAYER_SIZE}"
    for param, kind in params.items():
        if kind == "spec_list":
            shown[param] = f"2..{settings.max_nested_models} specs (MAX_NESTED_MODELS)"
    if "by" in params:
        shown["by"] = f"a feature or <= {settings.max_agg_by} features (MAX_AGG_BY)"
    if "desired_dist" in params:
        shown["desired_dist"] = f"label -> share in (0, 1], summing to 1, <= {MAX_CLASSES} labels"
    return shown
