"""The model catalog: an allow-list of River estimators a spec may name (never an import path).

A spec is `{"task": ..., "steps": [{"kind": ..., "params": {...}}, ...]}`; every step but the
last is a transformer, the last is the estimator. `build(spec)` returns the River object.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

from shared import catalog_choices as choices
from shared import param_bounds
from shared.deferred import Deferred, river
from shared.errors import unprocessable
from shared.settings import get_settings

Role = Literal[
    "transformer",
    "regressor",
    "classifier",
    "forecaster",
    "optimizer",
    "policy",
    "anomaly_detector",
    "clusterer",
]
Task = Literal["regression", "classification", "forecasting", "anomaly", "clustering"]
TASK_OF_ROLE: dict[str, Task] = {
    "regressor": "regression",
    "classifier": "classification",
    "forecaster": "forecasting",
    "anomaly_detector": "anomaly",
    "clusterer": "clustering",
}
ParamType = Literal[
    "int",
    "float",
    "bool",
    "str",
    "int_list",
    "int_or_none",
    "float_or_none",
    "str_or_none",
    "number_or_str",
    "label_list",
    "spec",
    "spec_list",  # a list of nested specs (a selector's or an ensemble's models)
    "label_float_map",  # label -> number (a class distribution)
    "str_or_str_list",  # a feature name or a list of them (agg's `by`)
]


@dataclass(frozen=True)
class Kind:
    """One allow-listed estimator: how to build it and what it accepts.

    `factory` is usually a `Deferred`: the River module is imported, and the constructor's
    signature read into `params` / `required`, the first time the kind is used (a spec naming
    it, a build, GET /catalog), not when the catalog is imported."""

    name: str
    role: Role
    factory: Callable[..., Any]
    doc: str
    overrides: Mapping[str, ParamType] = field(default_factory=dict)  # over the signature's
    dropped: tuple[str, ...] = ()  # signature parameters that take Python objects
    given_required: tuple[str, ...] | None = None  # None: the signature's own
    introspected: Callable[..., Any] | None = None  # the signature read, if not the factory's
    defaults: Mapping[str, Any] = field(default_factory=dict)
    nested: Mapping[str, Role] = field(default_factory=dict)  # params that are specs themselves
    text_input: bool = False  # takes a raw string x (tokenisers)
    handles_strings: bool = False  # copes with string-valued features (encoders, trees, NB)
    binary_only: bool = False  # labels must be booleans / 0 / 1
    scores_target: bool = False  # a univariate anomaly detector: it scores y, not x

    @cached_property
    def params(self) -> Mapping[str, ParamType]:
        """Every parameter a spec may give, with its JSON type."""
        params, _ = _signature(self.introspected or self.factory)
        params.update(self.overrides)
        params.update({p: "spec" for p in self.nested if p not in self.overrides})
        return {p: t for p, t in params.items() if p not in self.dropped}

    @cached_property
    def required(self) -> tuple[str, ...]:
        if self.given_required is not None:
            return self.given_required
        return _signature(self.introspected or self.factory)[1]


# Parameters we never expose: they take Python objects or callables, not JSON.
_OBJECT_PARAMS = {
    "optimizer",
    "loss",
    "initializer",
    "engine",
    "metric",
    "drift_detector",
    "warning_detector",
    "splitter",
    "preprocessor",
    "tokenizer",
    "leaf_model",
    "categories",
    "stop_words",
    "intercept_lr",
    "on",
    "model",
    "regressor",
    "classes",
}


def _infer(signature_of: Callable[..., Any]) -> tuple[dict[str, ParamType], tuple[str, ...]]:
    """Parameter types from a constructor signature: JSON scalars only."""
    types: dict[str, ParamType] = {}
    required: list[str] = []
    for name, p in inspect.signature(signature_of).parameters.items():
        if name in _OBJECT_PARAMS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default, hint = p.default, str(p.annotation)
        if default is inspect.Parameter.empty:
            required.append(name)
            types[name] = "float"
        elif isinstance(default, bool):
            types[name] = "bool"
        elif isinstance(default, int):
            types[name] = "int"
        elif isinstance(default, float):
            types[name] = "float"
        elif isinstance(default, str):
            types[name] = "number_or_str" if "int" in hint or "float" in hint else "str"
        elif isinstance(default, tuple):
            types[name] = "int_list"
        elif default is None:
            types[name] = (
                "int_or_none"
                if "int" in hint
                else "float_or_none"
                if "float" in hint
                else "str_or_none"
                if "str" in hint
                else "int_or_none"
            )
    return types, tuple(required)


@functools.cache
def _inferred(signature_of: Callable[..., Any]) -> tuple[dict[str, ParamType], tuple[str, ...]]:
    target = signature_of.load() if isinstance(signature_of, Deferred) else signature_of
    return _infer(target)


def _signature(signature_of: Callable[..., Any]) -> tuple[dict[str, ParamType], tuple[str, ...]]:
    """`_infer` of a constructor, read once per constructor (a copy: the caller may change it)."""
    params, required = _inferred(signature_of)
    return dict(params), required


def _kind(
    name: str,
    role: Role,
    factory: Callable[..., Any],
    doc: str,
    *,
    overrides: Mapping[str, ParamType] | None = None,
    required: tuple[str, ...] | None = None,
    **extra: Any,
) -> Kind:
    """A kind whose parameters are read from `factory`'s signature when first asked for."""
    return Kind(
        name, role, factory, doc, overrides=overrides or {}, given_required=required, **extra
    )


def _mlp_regressor(**params: Any) -> Any:
    from river.compat import convert_sklearn_to_river
    from sklearn.neural_network import MLPRegressor

    return convert_sklearn_to_river(MLPRegressor(**params))


def _mlp_classifier(classes: list[Any], **params: Any) -> Any:
    from river.compat import convert_sklearn_to_river
    from sklearn.neural_network import MLPClassifier

    return convert_sklearn_to_river(MLPClassifier(**params), classes=list(classes))


# scikit-learn's constructor parameters, but: `random_state` seeded by default (replays agree);
# no verbose, no warm_start; no early_stopping (it needs a validation split, meaningless per
# sample)
_MLP_OVERRIDES: dict[str, ParamType] = {"random_state": "int"}
_MLP_DROPPED = ("verbose", "warm_start", "early_stopping")
_MLP_DEFAULTS = {"hidden_layer_sizes": (32,), "random_state": 0}  # seeded: replays agree


# --- anomaly & clustering (issue 17) ---
# Detectors answer River's score_one; a filter (quantile_filter, threshold_filter) wraps one
# and adds classify (is_anomaly). Clusterers answer predict_one, a cluster id. Both learn x
# alone; gaussian_scorer and standard_absolute_deviation score a univariate y instead.


def _filter(make: Callable[..., Any], cut: str) -> Callable[..., Any]:
    def build(anomaly_detector: Any, protect_anomaly_detector: bool = True, **bound: Any) -> Any:
        value = bound[cut]
        if cut == "q" and not 0 < value < 1:
            raise ValueError("q must be within (0, 1)")
        return make(anomaly_detector, value, protect_anomaly_detector=protect_anomaly_detector)

    return build


_FILTER_PARAMS: dict[str, ParamType] = {"protect_anomaly_detector": "bool"}


def _streamkmeans(
    chunk_size: int = 10,
    n_clusters: int = 2,
    halflife: float = 0.5,
    mu: float = 0.0,
    sigma: float = 1.0,
    p: float = 2.0,
    seed: int = 42,
) -> Any:
    from river import cluster

    # River builds a KMeans per chunk from these kwargs: unseeded, each would draw from the
    # OS and no replay (nor a second instance) would agree
    return cluster.STREAMKMeans(
        chunk_size, n_clusters, halflife=halflife, mu=mu, sigma=sigma, p=p, seed=seed
    )


UNSUPERVISED_KINDS = [
    _kind(
        "half_space_trees",
        "anomaly_detector",
        river("anomaly.HalfSpaceTrees"),
        "Half-space trees: scores in [0, 1], features expected in [0, 1] (min_max_scaler)",
        defaults={"seed": 42},
        dropped=("limits",),  # takes Python objects
    ),
    _kind(
        "one_class_svm",
        "anomaly_detector",
        river("anomaly.OneClassSVM"),
        "Online one-class SVM (a scaler before it helps)",
        overrides={"intercept_lr": "float"},
        nested={"optimizer": "optimizer"},
    ),
    _kind(
        "loda",
        "anomaly_detector",
        river("anomaly.LODA"),
        "Lightweight on-line detector of anomalies (random projections)",
        defaults={"seed": 42},
    ),
    _kind(
        "local_outlier_factor",
        "anomaly_detector",
        river("anomaly.LocalOutlierFactor"),
        "Incremental local outlier factor over River's default neighbour search: a sliding "
        "window of the last 1,000 samples (bounded memory)",
    ),
    _kind(
        "gaussian_scorer",
        "anomaly_detector",
        river("anomaly.GaussianScorer"),
        "Univariate: scores y by a running Gaussian (CDF); send y, x may be omitted",
        scores_target=True,
    ),
    _kind(
        "standard_absolute_deviation",
        "anomaly_detector",
        river("anomaly.StandardAbsoluteDeviation"),
        "Univariate: scores y by its standardised distance to the mean; send y",
        scores_target=True,
        dropped=("sub_stat",),  # takes a Python object
    ),
    _kind(
        "quantile_filter",
        "anomaly_detector",
        _filter(river("anomaly.QuantileFilter"), "q"),
        "Flags a score above the running q-quantile of the scores (is_anomaly); "
        "params.anomaly_detector is a nested detector spec",
        overrides={**_FILTER_PARAMS, "q": "float"},
        nested={"anomaly_detector": "anomaly_detector"},
        required=("anomaly_detector", "q"),
    ),
    _kind(
        "threshold_filter",
        "anomaly_detector",
        _filter(river("anomaly.ThresholdFilter"), "threshold"),
        "Flags a score at or above a fixed threshold (is_anomaly); "
        "params.anomaly_detector is a nested detector spec",
        overrides={**_FILTER_PARAMS, "threshold": "float"},
        nested={"anomaly_detector": "anomaly_detector"},
        required=("anomaly_detector", "threshold"),
    ),
    _kind(
        "kmeans",
        "clusterer",
        river("cluster.KMeans"),
        "Incremental k-means; predict answers the nearest centre's id",
        overrides={"halflife": "float", "mu": "float", "sigma": "float", "p": "float"},
        defaults={"seed": 42},
    ),
    _kind(
        "dbstream",
        "clusterer",
        Deferred("shared.bounded_clusterers", "dbstream"),
        "Density-based micro-clusters (DBSTREAM), at most MAX_MICRO_CLUSTERS of them",
        overrides={"cleanup_interval": "float", "minimum_weight": "float"},
    ),
    _kind(
        "denstream",
        "clusterer",
        Deferred("shared.bounded_clusterers", "denstream"),
        "Density-based clustering with decay (DenStream); ids once n_samples_init are seen; "
        "at most MAX_MICRO_CLUSTERS micro-clusters",
        overrides={"mu": "float"},
    ),
    _kind(
        "clustream",
        "clusterer",
        river("cluster.CluStream"),
        "Micro-clusters summarised by k-means macro-clusters (CluStream)",
        defaults={"seed": 42},
    ),
    _kind(
        "streamkmeans",
        "clusterer",
        _streamkmeans,
        "k-means over chunks of the stream (STREAMKMeans); cluster null before the first "
        "chunk_size samples are learned",
    ),
]


KINDS: dict[str, Kind] = {
    k.name: k
    for k in [
        # transformers
        _kind(
            "standard_scaler",
            "transformer",
            river("preprocessing.StandardScaler"),
            "Standardise each numeric feature online",
        ),
        _kind(
            "min_max_scaler",
            "transformer",
            river("preprocessing.MinMaxScaler"),
            "Scale each numeric feature into [0, 1] online",
        ),
        _kind(
            "max_abs_scaler",
            "transformer",
            river("preprocessing.MaxAbsScaler"),
            "Scale each numeric feature by its maximum absolute value",
        ),
        _kind(
            "one_hot_encoder",
            "transformer",
            river("preprocessing.OneHotEncoder"),
            "One-hot encode string features",
            handles_strings=True,
        ),
        _kind(
            "tfidf",
            "transformer",
            river("feature_extraction.TFIDF"),
            "TF-IDF of a text x",
            overrides={"ngram_range": "int_list"},
            text_input=True,
        ),
        _kind(
            "bag_of_words",
            "transformer",
            river("feature_extraction.BagOfWords"),
            "Token counts of a text x",
            overrides={"ngram_range": "int_list"},
            text_input=True,
        ),
        # regressors
        _kind(
            "linear_regression",
            "regressor",
            river("linear_model.LinearRegression"),
            "Linear regression by SGD; l1 → lasso, l2 → ridge",
            overrides={"intercept_lr": "float"},
            nested={"optimizer": "optimizer"},
        ),
        _kind(
            "pa_regressor",
            "regressor",
            river("linear_model.PARegressor"),
            "Passive-aggressive regressor",
        ),
        _kind(
            "knn_regressor",
            "regressor",
            river("neighbors.KNNRegressor"),
            "k-nearest neighbours over a sliding window",
        ),
        _kind(
            "hoeffding_tree_regressor",
            "regressor",
            river("tree.HoeffdingTreeRegressor"),
            "Hoeffding tree regressor",
            handles_strings=True,
        ),
        _kind(
            "hoeffding_adaptive_tree_regressor",
            "regressor",
            river("tree.HoeffdingAdaptiveTreeRegressor"),
            "Hoeffding adaptive tree regressor",
            handles_strings=True,
        ),
        _kind(
            "bagging_regressor",
            "regressor",
            river("ensemble.BaggingRegressor"),
            "Online bagging of a base regressor",
            nested={"model": "regressor"},
            defaults={"seed": 42},
        ),
        _kind(
            "amf_regressor",
            "regressor",
            river("forest.AMFRegressor"),
            "Aggregated Mondrian forest",
            defaults={"seed": 42},
        ),
        _kind(
            "adaptive_random_forest_regressor",
            "regressor",
            river("forest.ARFRegressor"),
            "Adaptive random forest regressor",
            defaults={"seed": 42},
        ),
        _kind(
            "mlp_regressor",
            "regressor",
            _mlp_regressor,
            "scikit-learn MLPRegressor learning by partial_fit (river.compat)",
            overrides=_MLP_OVERRIDES,
            dropped=_MLP_DROPPED,
            introspected=Deferred("sklearn.neural_network", "MLPRegressor"),
            defaults=_MLP_DEFAULTS,
            required=(),
        ),
        # classifiers
        _kind(
            "logistic_regression",
            "classifier",
            river("linear_model.LogisticRegression"),
            "Binary logistic regression by SGD",
            overrides={"intercept_lr": "float"},
            nested={"optimizer": "optimizer"},
            binary_only=True,
        ),
        _kind(
            "perceptron",
            "classifier",
            river("linear_model.Perceptron"),
            "Binary perceptron",
            binary_only=True,
        ),
        _kind("gaussian_nb", "classifier", river("naive_bayes.GaussianNB"), "Gaussian naive Bayes"),
        _kind(
            "multinomial_nb",
            "classifier",
            river("naive_bayes.MultinomialNB"),
            "Multinomial naive Bayes (counts, e.g. after tfidf / bag_of_words)",
        ),
        _kind(
            "hoeffding_tree_classifier",
            "classifier",
            river("tree.HoeffdingTreeClassifier"),
            "Hoeffding tree classifier",
            handles_strings=True,
        ),
        _kind(
            "hoeffding_adaptive_tree_classifier",
            "classifier",
            river("tree.HoeffdingAdaptiveTreeClassifier"),
            "Hoeffding adaptive tree classifier",
            handles_strings=True,
            defaults={"seed": 42},
        ),
        _kind(
            "amf_classifier",
            "classifier",
            river("forest.AMFClassifier"),
            "Aggregated Mondrian forest classifier",
            defaults={"seed": 42},
        ),
        _kind(
            "knn_classifier",
            "classifier",
            river("neighbors.KNNClassifier"),
            "k-nearest neighbours classifier",
        ),
        _kind(
            "adaptive_random_forest_classifier",
            "classifier",
            river("forest.ARFClassifier"),
            "Adaptive random forest classifier",
            handles_strings=True,
            defaults={"seed": 42},
        ),
        _kind(
            "mlp_classifier",
            "classifier",
            _mlp_classifier,
            "scikit-learn MLPClassifier learning by partial_fit (river.compat); "
            "params.classes lists every label",
            overrides={**_MLP_OVERRIDES, "classes": "label_list"},
            dropped=_MLP_DROPPED,
            introspected=Deferred("sklearn.neural_network", "MLPClassifier"),
            defaults=_MLP_DEFAULTS,
            required=("classes",),
        ),
        # forecasters (time series: learn y, forecast a horizon)
        _kind(
            "holt_winters",
            "forecaster",
            river("time_series.HoltWinters"),
            "Holt-Winters exponential smoothing",
            overrides={
                "alpha": "float",
                "beta": "float_or_none",
                "gamma": "float_or_none",
                "seasonality": "int",
                "multiplicative": "bool",
            },
        ),
        _kind(
            "snarimax",
            "forecaster",
            river("time_series.SNARIMAX"),
            "(S)(N)ARIMA(X) with an online regressor",
            overrides={p: "int" for p in ("p", "d", "q", "m", "sp", "sd", "sq")},
            nested={"regressor": "regressor"},
        ),
        # optimizers (only as the `optimizer` parameter of a linear model)
        _kind(
            "sgd",
            "optimizer",
            river("optim.SGD"),
            "Plain stochastic gradient descent",
            overrides={"lr": "float"},
        ),
        _kind("adam", "optimizer", river("optim.Adam"), "Adam", overrides={"lr": "float"}),
        _kind("rmsprop", "optimizer", river("optim.RMSProp"), "RMSProp", overrides={"lr": "float"}),
        *UNSUPERVISED_KINDS,
    ]
}
# --- model selection, ensembles, wrappers, features (issue 17) ---


def _family(name: str) -> Deferred:
    """A factory of shared/catalog_families.py (imported, with its River modules, on first use)."""
    return Deferred("shared.catalog_families", name)


_SEEDED = {"seed": choices.SEED}  # River draws at random: seeded, two builds agree
_MODELS = {"models": "spec_list"}
_POLICY_DOC = " (a bandit policy, the `policy` of a bandit selector)"
_REGRESSION_METRICS = ", ".join(choices.REGRESSION_METRICS)
_CLASSIFICATION_METRICS = ", ".join(choices.CLASSIFICATION_METRICS)
KINDS.update(
    (k.name, k)
    for k in [
        # bandit policies (only as the `policy` parameter of bandit_regressor / _classifier);
        # not thompson_sampling: River's selectors give it their metric as its reward, and it
        # samples from a distribution (it fails at the first learn)
        _kind("epsilon_greedy", "policy", _family("epsilon_greedy"), "ε-greedy" + _POLICY_DOC),
        _kind("ucb", "policy", _family("ucb"), "Upper confidence bound" + _POLICY_DOC),
        _kind("exp3", "policy", _family("exp3"), "Exp3" + _POLICY_DOC),
        _kind("bayes_ucb", "policy", _family("bayes_ucb"), "Bayes-UCB" + _POLICY_DOC),
        _kind("random_policy", "policy", _family("random_policy"), "Uniform random" + _POLICY_DOC),
        # model selection: `models` is a list of specs of the selector's own task
        _kind(
            "bandit_regressor",
            "regressor",
            _family("bandit_regressor"),
            "Bandit model selection among regressors (River model_selection.BanditRegressor); "
            f"metric one of {_REGRESSION_METRICS} (default r2: the policy maximises it); "
            "policy a bandit policy spec (default epsilon_greedy)",
            overrides={**_MODELS, "metric": "str"},
            nested={"models": "regressor", "policy": "policy"},
        ),
        _kind(
            "bandit_classifier",
            "classifier",
            _family("bandit_classifier"),
            "Bandit model selection among classifiers (model_selection.BanditClassifier); "
            f"metric one of {_CLASSIFICATION_METRICS}",
            overrides={**_MODELS, "metric": "str"},
            nested={"models": "classifier", "policy": "policy"},
        ),
        _kind(
            "successive_halving_regressor",
            "regressor",
            _family("successive_halving_regressor"),
            "Successive halving among regressors within a budget of learns; "
            f"metric one of {_REGRESSION_METRICS}",
            overrides={**_MODELS, "metric": "str"},
            nested={"models": "regressor"},
        ),
        _kind(
            "successive_halving_classifier",
            "classifier",
            _family("successive_halving_classifier"),
            "Successive halving among classifiers within a budget of learns; "
            f"metric one of {_CLASSIFICATION_METRICS}",
            overrides={**_MODELS, "metric": "str"},
            nested={"models": "classifier"},
        ),
        _kind(
            "greedy_regressor",
            "regressor",
            _family("greedy_regressor"),
            "Greedy selection: every regressor learns, the best so far predicts; "
            f"metric one of {_REGRESSION_METRICS}",
            overrides={**_MODELS, "metric": "str"},
            nested={"models": "regressor"},
        ),
        # ensembles
        _kind(
            "adwin_bagging_classifier",
            "classifier",
            river("ensemble.ADWINBaggingClassifier"),
            "Online bagging with ADWIN change detection",
            nested={"model": "classifier"},
            defaults=_SEEDED,
            required=("model",),
        ),
        _kind(
            "leveraging_bagging_classifier",
            "classifier",
            river("ensemble.LeveragingBaggingClassifier"),
            "Leveraging bagging",
            overrides={"w": "float"},
            nested={"model": "classifier"},
            defaults=_SEEDED,
            required=("model",),
        ),
        _kind(
            "srp_classifier",
            "classifier",
            river("ensemble.SRPClassifier"),
            "Streaming random patches (default model: a Hoeffding tree)",
            overrides={"subspace_size": "number_or_str"},
            nested={"model": "classifier"},
            defaults=_SEEDED,
            required=(),
        ),
        _kind(
            "srp_regressor",
            "regressor",
            river("ensemble.SRPRegressor"),
            "Streaming random patches regressor (default model: a Hoeffding tree)",
            overrides={"subspace_size": "number_or_str", "seed": "int_or_none"},
            nested={"model": "regressor"},
            defaults=_SEEDED,
            required=(),
        ),
        _kind(
            "stacking_classifier",
            "classifier",
            _family("stacking_classifier"),
            "Stacking: meta_classifier learns from the models' predictions",
            overrides=_MODELS,
            nested={"models": "classifier", "meta_classifier": "classifier"},
        ),
        _kind(
            "voting_classifier",
            "classifier",
            _family("voting_classifier"),
            "Voting among classifiers",
            overrides=_MODELS,
            nested={"models": "classifier"},
        ),
        _kind(
            "ewa_regressor",
            "regressor",
            _family("ewa_regressor"),
            "Exponentially weighted average of regressors",
            overrides=_MODELS,
            nested={"models": "regressor"},
        ),
        # multiclass (a binary classifier per class, per pair, per code bit) and imbalance
        _kind(
            "one_vs_rest_classifier",
            "classifier",
            _family("one_vs_rest_classifier"),
            "One-vs-rest: a multiclass classifier from a binary one (MAX_MULTICLASS_LABELS)",
            nested={"classifier": "classifier"},
        ),
        _kind(
            "one_vs_one_classifier",
            "classifier",
            _family("one_vs_one_classifier"),
            "One-vs-one: a binary classifier per pair of classes (MAX_MULTICLASS_LABELS)",
            nested={"classifier": "classifier"},
        ),
        _kind(
            "output_code_classifier",
            "classifier",
            _family("output_code_classifier"),
            "Output codes: code_size binary classifiers",
            overrides={"code_size": "int"},
            nested={"classifier": "classifier"},
        ),
        _kind(
            "random_under_sampler",
            "classifier",
            _family("random_under_sampler"),
            "Under-sample the stream to desired_dist (label -> share, summing to 1)",
            overrides={"desired_dist": "label_float_map"},
            nested={"classifier": "classifier"},
        ),
        _kind(
            "random_over_sampler",
            "classifier",
            _family("random_over_sampler"),
            "Over-sample the stream to desired_dist (label -> share, summing to 1)",
            overrides={"desired_dist": "label_float_map"},
            nested={"classifier": "classifier"},
        ),
        _kind(
            "random_sampler",
            "classifier",
            _family("random_sampler"),
            "Under- and over-sample the stream to desired_dist at sampling_rate",
            overrides={"desired_dist": "label_float_map"},
            nested={"classifier": "classifier"},
        ),
        # feature extraction
        _kind(
            "polynomial_extender",
            "transformer",
            _family("polynomial_extender"),
            "Polynomial and interaction features (MAX_POLYNOMIAL_FEATURES per x)",
        ),
        _kind(
            "rbf_sampler",
            "transformer",
            _family("rbf_sampler"),
            "Random Fourier features approximating an RBF kernel",
        ),
        _kind(
            "target_agg",
            "transformer",
            _family("target_agg"),
            "Running statistic of the target per group of `by` (e.g. mean y per user); how one "
            f"of {', '.join(choices.STATISTICS)}",
            overrides={"by": "str_or_str_list", "how": "str", "target_name": "str"},
            handles_strings=True,  # groups by string features; outputs numbers
        ),
        _kind(
            "agg",
            "transformer",
            _family("agg"),
            "Running statistic of feature `on` per group of `by`; how one of "
            f"{', '.join(choices.STATISTICS)}",
            overrides={"on": "str", "by": "str_or_str_list", "how": "str"},
            required=("on",),
            handles_strings=True,
        ),
    ]
)
# the wrappers that turn a multiclass problem into binary ones: their labels may be anything
BINARY_REDUCTIONS = frozenset(
    {"one_vs_rest_classifier", "one_vs_one_classifier", "output_code_classifier"}
)


class _Ensembles:
    """The kinds that hold `n_models` estimators: nested ensembles multiply
    (MAX_ENSEMBLE_MODELS). Asked kind by kind, so only the kinds a spec names are read."""

    def __contains__(self, name: object) -> bool:
        kind = KINDS.get(name) if isinstance(name, str) else None
        return kind is not None and any(p in kind.params for p in param_bounds.ENSEMBLE_SIZE)


ENSEMBLES = _Ensembles()


def import_all() -> None:
    """Import every kind's module and read its signature now, not on first use: for a process
    that builds any spec (the train function, the worker processes' fork server: see
    shared/catalog_loaded.py), so a request naming a kind for the first time does not pay
    River's imports (seconds on a busy machine; ~1.2 s of a fresh worker's first proof)."""
    for kind in KINDS.values():
        _ = kind.params, kind.required


def check_bounds(steps: list[Mapping[str, Any]]) -> None:
    """Every parameter of a spec, nested ones included, within its bound (422 if not)."""
    param_bounds.check_spec(steps, ENSEMBLES)


def describe() -> list[dict[str, Any]]:
    """`GET /catalog`: every kind with its role, task and parameters."""
    return [
        {
            "kind": k.name,
            "role": k.role,
            "task": TASK_OF_ROLE.get(k.role),
            "doc": k.doc,
            "params": dict(k.params),
            "required": list(k.required),
            "text_input": k.text_input,
            "nested": dict(k.nested),
            "bounds": param_bounds.describe(k.params),
        }
        for k in KINDS.values()
    ]


def _check_value(kind: str, param: str, expected: ParamType, value: Any) -> Any:
    def wrong(what: str) -> Exception:
        return unprocessable(f"{kind}.params.{param} must be {what}", "invalid_parameter")

    is_num = isinstance(value, int | float) and not isinstance(value, bool)
    match expected:
        case "bool":
            if not isinstance(value, bool):
                raise wrong("a boolean")
        case "int":
            if not isinstance(value, int) or isinstance(value, bool):
                raise wrong("an integer")
        case "float":
            if not is_num:
                raise wrong("a number")
        case "str":
            if not isinstance(value, str):
                raise wrong("a string")
        case "int_or_none":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise wrong("an integer or null")
        case "float_or_none":
            if value is not None and not is_num:
                raise wrong("a number or null")
        case "str_or_none":
            if value is not None and not isinstance(value, str):
                raise wrong("a string or null")
        case "number_or_str":
            if not (is_num or isinstance(value, str)):
                raise wrong("a number or a string")
        case "int_list":
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
            ):
                raise wrong("a non-empty list of positive integers")
            return tuple(value)
        case "label_list":
            if (
                not isinstance(value, list)
                or len(value) < 2
                or not all(isinstance(v, str | int | bool) for v in value)
            ):
                raise wrong("a list of at least two labels")
        case "label_float_map":
            if (
                not isinstance(value, dict)
                or len(value) < 2
                or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
                )
            ):
                raise wrong("an object of at least two labels -> share")
        case "str_or_str_list":
            if not (
                value is None
                or isinstance(value, str)
                or (isinstance(value, list) and value and all(isinstance(v, str) for v in value))
            ):
                raise wrong("a feature name, a non-empty list of feature names, or null")
    return value


def build_step(step: Mapping[str, Any], role: Role | None = None) -> tuple[Kind, Any]:
    """Build one `{"kind", "params"}` step; nested specs (bagging's model) recurse."""
    name = step.get("kind")
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise unprocessable(
            f"unknown kind '{name}'; GET /api/v1/catalog lists them", "unknown_kind"
        )
    if role is not None and kind.role != role:
        raise unprocessable(f"'{kind.name}' is a {kind.role}, expected a {role}", "invalid_spec")
    given = step.get("params") or {}
    if not isinstance(given, dict):
        raise unprocessable(f"{kind.name}.params must be an object", "invalid_parameter")
    params: dict[str, Any] = {}
    binary_inside = False  # a nested classifier takes only booleans
    for param, value in given.items():
        expected = kind.params.get(param)
        if expected is None:
            raise unprocessable(
                f"unknown parameter '{param}' for kind '{kind.name}'; "
                f"known: {', '.join(sorted(kind.params)) or 'none'}",
                "unknown_parameter",
            )
        if expected in ("spec", "spec_list"):
            params[param], binary = _build_nested(kind, param, value)
            binary_inside = binary_inside or binary
        else:
            params[param] = _check_value(kind.name, param, expected, value)
    missing = [p for p in kind.required if p not in params]
    if missing:
        raise unprocessable(
            f"kind '{kind.name}' needs params: {', '.join(missing)}", "missing_parameter"
        )
    for param, value in kind.defaults.items():
        params.setdefault(param, value)
    param_bounds.bound_defaults(params, kind.params, get_settings())
    if binary_inside and kind.role == "classifier" and kind.name not in BINARY_REDUCTIONS:
        kind = replace(kind, binary_only=True)  # it hands its labels to the binary one as they are
    try:
        return kind, kind.factory(**params)
    except (TypeError, ValueError, AssertionError) as exc:
        raise unprocessable(f"cannot build '{kind.name}': {exc}", "invalid_parameter") from None


def _build_nested(kind: Kind, param: str, value: Any) -> tuple[Any, bool]:
    """A nested spec (or, for a `spec_list`, each of a list of them) built for the role the
    parameter takes; and whether any of them is a binary-only classifier."""
    role = kind.nested[param]
    if kind.params[param] == "spec":
        blueprint, model = build_model(_as_spec(value, kind.name, param), role)
        return model, blueprint is not None and blueprint.binary_only
    if not isinstance(value, list) or not value:
        raise unprocessable(
            f"{kind.name}.params.{param} must be a non-empty list of specs", "invalid_parameter"
        )
    built = [build_model(_as_spec(item, kind.name, param), role) for item in value]
    return [model for _, model in built], any(bp is not None and bp.binary_only for bp, _ in built)


def _as_spec(value: Any, kind: str, param: str) -> dict[str, Any]:
    if isinstance(value, dict) and "kind" in value and "steps" not in value:
        return {"steps": [value]}
    if isinstance(value, dict) and "steps" in value:
        return value
    raise unprocessable(
        f'{kind}.params.{param} must be a spec like {{"kind": ...}}', "invalid_parameter"
    )


@dataclass(frozen=True)
class Blueprint:
    """What a built spec is: its task and what its inputs must look like."""

    task: Task
    text_input: bool
    handles_strings: bool
    binary_only: bool
    scores_target: bool = False  # a univariate detector: learns and scores y (issue 17)


def _scores_target(kind: Kind, step: Mapping[str, Any]) -> bool:
    """Whether a detector step scores y: itself, or the detector a filter wraps."""
    if kind.scores_target:
        return True
    inner = (step.get("params") or {}).get("anomaly_detector")
    if not isinstance(inner, Mapping):
        return False
    steps = inner.get("steps") if "steps" in inner else [inner]
    last = steps[-1] if isinstance(steps, list) and steps else None
    nested = KINDS.get(last.get("kind")) if isinstance(last, Mapping) else None
    return nested is not None and _scores_target(nested, last)


def build_model(spec: Mapping[str, Any], role: Role | None = None) -> tuple[Blueprint | None, Any]:
    """Build a spec into a River estimator (a Pipeline when there are several steps)."""
    steps = spec.get("steps")
    if not isinstance(steps, list) or not steps:
        raise unprocessable("spec.steps must be a non-empty list", "invalid_spec")
    if role is None:  # the whole spec, nested ones included, before anything is built
        check_bounds([s for s in steps if isinstance(s, Mapping)])
    if role in ("optimizer", "policy"):
        if len(steps) != 1:
            article = "an" if role == "optimizer" else "a"
            raise unprocessable(f"{article} {role} is a single step", "invalid_spec")
        return None, build_step(steps[0], role)[1]
    built = [build_step(step) for step in steps]
    *transformers, (last, estimator) = built
    for position, (kind, _) in enumerate(transformers):
        if kind.role != "transformer":
            raise unprocessable(
                f"step {position} '{kind.name}' must be a transformer", "invalid_spec"
            )
        if kind.text_input and position != 0:
            raise unprocessable(
                f"'{kind.name}' reads raw text: it must be the first step", "invalid_spec"
            )
    if last.role not in TASK_OF_ROLE:
        raise unprocessable(f"the last step '{last.name}' must be an estimator", "invalid_spec")
    if role is not None and last.role != role:
        raise unprocessable(f"expected a {role}, '{last.name}' is a {last.role}", "invalid_spec")
    if last.role == "forecaster" and transformers:
        raise unprocessable("a forecaster is a single step", "invalid_spec")
    scores_target = last.role == "anomaly_detector" and _scores_target(last, steps[-1])
    if scores_target and transformers:  # River's Pipeline.score_one hands the last step no y
        raise unprocessable(
            f"'{last.name}' scores y, not x: it takes no transformer steps", "invalid_spec"
        )
    if transformers:
        from river import compose  # here: the catalog's import loads no River module

        model = compose.Pipeline(*(m for _, m in built))
    else:
        model = estimator
    blueprint = Blueprint(
        task=TASK_OF_ROLE[last.role],
        text_input=bool(transformers) and transformers[0][0].text_input,
        handles_strings=any(k.handles_strings for k, _ in built),
        binary_only=last.binary_only,
        scores_target=scores_target,
    )
    return blueprint, model
