"""Factories of the catalog's model-selection, ensemble, multiclass, imbalance and
feature-extraction kinds (issue 17): what a JSON spec names becomes River's object.

River takes objects where a spec can only give JSON (a metric, a bandit policy, a running
statistic, a class distribution), so each is chosen by name from an allow-list (metrics and
statistics in shared/catalog_choices.py), never by import path. Where River would grow without limit with the data (groups of an aggregate,
classes of a one-vs-one, polynomial features), a subclass refuses the sample past the bound
it was built with (a learn that raises is never acknowledged: 422 learn_failed). The bound is
a constructor parameter so River's `clone()` keeps it, and a replay meets the same bound.

The catalog names these factories as `Deferred`s: this module (and the River modules it
subclasses) is imported when a spec first uses one of its kinds, or a pickled model holds one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from river import (
    bandit,
    base,
    ensemble,
    feature_extraction,
    imblearn,
    metrics,
    model_selection,
    multiclass,
    stats,
)

from shared.catalog_choices import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    SEED,
    STATISTICS,
    choose,
)
from shared.settings import get_settings


def regression_metric(name: str) -> metrics.base.RegressionMetric:
    return choose(REGRESSION_METRICS, name, "regression metric")


def classification_metric(name: str) -> metrics.base.ClassificationMetric:
    return choose(CLASSIFICATION_METRICS, name, "classification metric")


def statistic(name: str) -> stats.base.Univariate:
    return choose(STATISTICS, name, "statistic")


# ----- bandit policies (the `policy` of a bandit selector) ----------------------------------


def epsilon_greedy(
    epsilon: float = 0.1, decay: float = 0.0, burn_in: int = 0, seed: int = SEED
) -> bandit.EpsilonGreedy:
    return bandit.EpsilonGreedy(epsilon=epsilon, decay=decay, burn_in=burn_in, seed=seed)


def ucb(delta: float = 1.0, burn_in: int = 0, seed: int = SEED) -> bandit.UCB:
    return bandit.UCB(delta=delta, burn_in=burn_in, seed=seed)


def exp3(gamma: float = 0.1, burn_in: int = 0, seed: int = SEED) -> bandit.Exp3:
    return bandit.Exp3(gamma=gamma, burn_in=burn_in, seed=seed)


def bayes_ucb(burn_in: int = 0, seed: int = SEED) -> bandit.BayesUCB:
    return bandit.BayesUCB(burn_in=burn_in, seed=seed)


def random_policy(burn_in: int = 0, seed: int = SEED) -> bandit.RandomPolicy:
    return bandit.RandomPolicy(burn_in=burn_in, seed=seed)


# ----- model selection ----------------------------------------------------------------------


def _two_or_more(models: list[Any]) -> list[Any]:
    if len(models) < 2:
        raise ValueError("models must list at least two specs to select among")
    return list(models)


def _reward(table: dict[str, Callable[[], metrics.base.Metric]], name: str, what: str) -> Any:
    """A bandit's metric: River's policies maximise the metric they are given as reward, so
    one where smaller is better (an error, a loss) would make the bandit favour the worst
    candidate; only metrics where bigger is better are taken."""
    rewards = [n for n, factory in table.items() if factory().bigger_is_better]
    metric = choose(table, name, what)
    if not metric.bigger_is_better:
        raise ValueError(
            f"a bandit maximises its metric and '{name}' is better smaller; "
            f"one of: {', '.join(rewards)}"
        )
    return metric


def bandit_regressor(
    models: list[Any], policy: bandit.base.Policy | None = None, metric: str = "r2"
) -> model_selection.BanditRegressor:
    return model_selection.BanditRegressor(
        _two_or_more(models),
        _reward(REGRESSION_METRICS, metric, "regression metric"),
        policy or epsilon_greedy(),
    )


def bandit_classifier(
    models: list[Any], policy: bandit.base.Policy | None = None, metric: str = "accuracy"
) -> model_selection.BanditClassifier:
    return model_selection.BanditClassifier(
        _two_or_more(models),
        _reward(CLASSIFICATION_METRICS, metric, "classification metric"),
        policy or epsilon_greedy(),
    )


def successive_halving_regressor(
    models: list[Any], budget: int = 1000, eta: int = 2, metric: str = "mae"
) -> model_selection.SuccessiveHalvingRegressor:
    return model_selection.SuccessiveHalvingRegressor(
        _two_or_more(models), regression_metric(metric), budget=budget, eta=eta
    )


def successive_halving_classifier(
    models: list[Any], budget: int = 1000, eta: int = 2, metric: str = "accuracy"
) -> model_selection.SuccessiveHalvingClassifier:
    return model_selection.SuccessiveHalvingClassifier(
        _two_or_more(models), classification_metric(metric), budget=budget, eta=eta
    )


def greedy_regressor(models: list[Any], metric: str = "mae") -> model_selection.GreedyRegressor:
    return model_selection.GreedyRegressor(_two_or_more(models), regression_metric(metric))


# ----- ensembles ----------------------------------------------------------------------------


def stacking_classifier(
    models: list[Any], meta_classifier: base.Classifier, include_features: bool = True
) -> ensemble.StackingClassifier:
    return ensemble.StackingClassifier(
        _two_or_more(models), meta_classifier, include_features=include_features
    )


def voting_classifier(
    models: list[Any], use_probabilities: bool = True
) -> ensemble.VotingClassifier:
    return ensemble.VotingClassifier(_two_or_more(models), use_probabilities=use_probabilities)


def ewa_regressor(models: list[Any], learning_rate: float = 0.5) -> ensemble.EWARegressor:
    return ensemble.EWARegressor(_two_or_more(models), learning_rate=learning_rate)


# ----- multiclass: a bounded number of classes ---------------------------------------------


def _refuse_class(y: Any, known: int, max_labels: int) -> None:
    raise ValueError(
        f"label {y!r} would be class {known + 1}; MAX_MULTICLASS_LABELS is {max_labels}"
    )


class BoundedOneVsRest(multiclass.OneVsRestClassifier):
    """River's OneVsRestClassifier (one binary classifier per class), at most `max_labels`."""

    def __init__(self, classifier: base.Classifier, max_labels: int) -> None:
        super().__init__(classifier)
        self.max_labels = max_labels

    def learn_one(self, x: dict[str, Any], y: Any, **kwargs: Any) -> None:
        if y not in self.classifiers and len(self.classifiers) >= self.max_labels:
            _refuse_class(y, len(self.classifiers), self.max_labels)
        super().learn_one(x, y, **kwargs)


class BoundedOneVsOne(multiclass.OneVsOneClassifier):
    """River's OneVsOneClassifier (a binary classifier per pair of classes), at most
    `max_labels` classes."""

    def __init__(self, classifier: base.Classifier, max_labels: int) -> None:
        super().__init__(classifier)
        self.max_labels = max_labels

    def learn_one(self, x: dict[str, Any], y: Any, **kwargs: Any) -> None:
        if y not in self.classes and len(self.classes) >= self.max_labels:
            _refuse_class(y, len(self.classes), self.max_labels)
        super().learn_one(x, y, **kwargs)


def one_vs_rest_classifier(classifier: base.Classifier) -> BoundedOneVsRest:
    return BoundedOneVsRest(classifier, get_settings().max_multiclass_labels)


def one_vs_one_classifier(classifier: base.Classifier) -> BoundedOneVsOne:
    return BoundedOneVsOne(classifier, get_settings().max_multiclass_labels)


def output_code_classifier(
    classifier: base.Classifier, code_size: int, coding_method: str = "random", seed: int = SEED
) -> multiclass.OutputCodeClassifier:
    return multiclass.OutputCodeClassifier(
        classifier, code_size=code_size, coding_method=coding_method, seed=seed
    )


# ----- imbalance ----------------------------------------------------------------------------


class LabelMap(dict[str, float]):
    """A class distribution keyed as JSON keys it (strings): River looks a label up as it
    arrives (True, 3, "spam") and finds it under its JSON key ("true", "3", "spam")."""

    def __missing__(self, label: Any) -> float:
        key = label if isinstance(label, str) else json.dumps(label)  # learning.label_key
        if key == label or key not in self:
            raise KeyError(label)
        return self[key]


def label_map(desired_dist: Mapping[str, float]) -> LabelMap:
    total = sum(desired_dist.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"desired_dist must sum to 1 (it sums to {total:g})")
    return LabelMap(desired_dist)


def random_under_sampler(
    classifier: base.Classifier, desired_dist: Mapping[str, float], seed: int = SEED
) -> imblearn.RandomUnderSampler:
    return imblearn.RandomUnderSampler(classifier, label_map(desired_dist), seed=seed)


def random_over_sampler(
    classifier: base.Classifier, desired_dist: Mapping[str, float], seed: int = SEED
) -> imblearn.RandomOverSampler:
    return imblearn.RandomOverSampler(classifier, label_map(desired_dist), seed=seed)


def random_sampler(
    classifier: base.Classifier,
    desired_dist: Mapping[str, float],
    sampling_rate: float = 1.0,
    seed: int = SEED,
) -> imblearn.RandomSampler:
    return imblearn.RandomSampler(
        classifier, label_map(desired_dist), sampling_rate=sampling_rate, seed=seed
    )


# ----- feature extraction -------------------------------------------------------------------


class BoundedPolynomialExtender(feature_extraction.PolynomialExtender):
    """River's PolynomialExtender, refusing an x that would expand past `max_features`."""

    def __init__(
        self,
        degree: int = 2,
        interaction_only: bool = False,
        include_bias: bool = False,
        bias_name: str = "bias",
        max_features: int = 10_000,
    ) -> None:
        super().__init__(degree, interaction_only, include_bias, bias_name)
        self.max_features = max_features

    def transform_one(self, x: dict[str, Any]) -> dict[str, Any]:
        n = len(x)
        expanded = (
            sum(math.comb(n, d) for d in range(1, self.degree + 1))
            if self.interaction_only
            else math.comb(n + self.degree, self.degree) - 1
        )
        if expanded > self.max_features:
            raise ValueError(
                f"{n} features of degree {self.degree} expand to {expanded}; "
                f"MAX_POLYNOMIAL_FEATURES is {self.max_features}"
            )
        return super().transform_one(x)


def polynomial_extender(
    degree: int = 2, interaction_only: bool = False, include_bias: bool = False
) -> BoundedPolynomialExtender:
    return BoundedPolynomialExtender(
        degree,
        interaction_only,
        include_bias,
        max_features=get_settings().max_polynomial_features,
    )


def rbf_sampler(
    gamma: float = 1.0, n_components: int = 100, seed: int = SEED
) -> feature_extraction.RBFSampler:
    return feature_extraction.RBFSampler(gamma=gamma, n_components=n_components, seed=seed)


def _by(by: str | list[str] | None) -> str | list[str] | None:
    return list(by) if isinstance(by, list | tuple) else by


class BoundedAgg(feature_extraction.Agg):
    """River's Agg, keeping at most `max_groups` groups (a new group past it is refused)."""

    def __init__(self, on: str, by: Any, how: stats.base.Univariate, max_groups: int) -> None:
        super().__init__(on, by, how)
        self.max_groups = max_groups

    def learn_one(self, x: dict[str, Any], t: Any = None) -> None:
        _check_group(self, x)
        super().learn_one(x, t)

    def transform_one(self, x: dict[str, Any]) -> dict[str, Any]:
        # River's defaultdict would keep an empty group for each unseen key predicted
        key = self._make_key(x)
        group = self._groups.get(key)
        return {self._feature_name: (group if group is not None else self.how).get()}


class BoundedTargetAgg(feature_extraction.TargetAgg):
    """River's TargetAgg, keeping at most `max_groups` groups (a new group past it is
    refused)."""

    def __init__(
        self, by: Any, how: stats.base.Univariate, target_name: str, max_groups: int
    ) -> None:
        super().__init__(by, how, target_name)
        self.max_groups = max_groups

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        _check_group(self, x)
        super().learn_one(x, y)

    def transform_one(self, x: dict[str, Any]) -> dict[str, Any]:
        key = self._make_key(x)
        group = self._groups.get(key)
        return {self._feature_name: (group if group is not None else self.how).get()}


def _check_group(agg: BoundedAgg | BoundedTargetAgg, x: dict[str, Any]) -> None:
    key = agg._make_key(x)
    if key not in agg._groups and len(agg._groups) >= agg.max_groups:
        raise ValueError(
            f"group {key!r} would be group {len(agg._groups) + 1}; MAX_AGG_GROUPS is "
            f"{agg.max_groups}"
        )


def agg(on: str, by: str | list[str] | None = None, how: str = "mean") -> BoundedAgg:
    return BoundedAgg(on, _by(by), statistic(how), get_settings().max_agg_groups)


def target_agg(
    by: str | list[str] | None = None, how: str = "mean", target_name: str = "y"
) -> BoundedTargetAgg:
    return BoundedTargetAgg(_by(by), statistic(how), target_name, get_settings().max_agg_groups)
