"""What the monitoring folds for detectors and clusterers (issue 17 §6), as a Scoreboard
does for supervised models: River's own statistics over the outcomes in seq order.

- anomaly: score quantiles (p50, p90, p99) and mean, the flagged rate (a filter's
  is_anomaly), and, where a ground-truth flag arrives (y true/false on predict_learn or a
  delayed label), ROC AUC of the score: River's RollingROCAUC, exact and rank-based so any
  score range works (HST's [0, 1], LODA's or an SVM's unbounded ones), over the last
  ROC_WINDOW labelled scores (cumulative) or each window.
- clustering: how many samples each cluster took, in all and over each window (the
  REPORTED_CLUSTERS largest listed, the rest summed under "other").
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

from shared.monitoring.outcomes import Outcome
from shared.numbers import as_finite

WINDOWS = (5, 10, 20)  # as shared/monitoring/scoring.py
QUANTILES = {"score_p50": 0.5, "score_p90": 0.9, "score_p99": 0.99}
ROC_WINDOW = 1000
# cluster_sizes lists this many of the largest clusters and sums the rest under "other": a
# clusterer may answer up to MAX_MICRO_CLUSTERS ids, and every metrics read carries the map
REPORTED_CLUSTERS = 50
OTHER_CLUSTERS = "other"


def _value(metric: Any) -> float | None:
    try:
        return as_finite(metric.get())
    except (ArithmeticError, ValueError):
        return None


class _AnomalyStats:
    """The statistics of one horizon (the whole version, or one rolling window)."""

    def __init__(self, window: int | None) -> None:
        from river import metrics, stats, utils  # here: river.metrics loads scipy.stats

        if window is None:
            self.quantiles: dict[str, Any] = {n: stats.Quantile(q) for n, q in QUANTILES.items()}
            self.mean: Any = stats.Mean()
            self.flagged: Any = stats.Mean()
        else:
            self.quantiles = {n: stats.RollingQuantile(q, window) for n, q in QUANTILES.items()}
            self.mean = utils.Rolling(stats.Mean, window_size=window)
            self.flagged = utils.Rolling(stats.Mean, window_size=window)
        self.roc = metrics.RollingROCAUC(window_size=window or ROC_WINDOW)
        self.labelled = 0

    def update(self, score: float, flag: bool | None, y: Any) -> None:
        for quantile in self.quantiles.values():
            quantile.update(score)
        self.mean.update(score)
        if flag is not None:
            self.flagged.update(1.0 if flag else 0.0)
        if isinstance(y, bool):
            self.roc.update(y, score)
            self.labelled += 1

    def report(self) -> dict[str, float | None]:
        shown = {name: _value(q) for name, q in self.quantiles.items()}
        shown["score_mean"] = _value(self.mean)
        shown["flagged_rate"] = _value(self.flagged) if self.flagged.n else None
        shown["roc_auc"] = _value(self.roc) if self.labelled else None
        return shown


# the statistics a detector is monitored by, public for the champion/challenger comparison
# (the class keeps its name: folded ledgers are stored pickled)
AnomalyStats = _AnomalyStats


class AnomalyBoard:
    """Score quantiles, flagged rate and ROC AUC of one detector version."""

    kind = "anomaly"

    def __init__(self) -> None:
        self.cumulative = _AnomalyStats(None)
        self.rolling = {window: _AnomalyStats(window) for window in WINDOWS}
        self.scored = 0

    def observe(self, outcome: Outcome) -> bool:
        score = as_finite(outcome.prediction)
        if score is None:
            return False  # a degraded (null) score says nothing
        for horizon in (self.cumulative, *self.rolling.values()):
            horizon.update(score, outcome.is_anomaly, outcome.y)
        self.scored += 1
        return True

    def report(self) -> dict[str, Any]:
        return {
            "cumulative": self.cumulative.report(),
            "rolling": {str(w): h.report() for w, h in self.rolling.items()},
        }

    def headline(self) -> dict[str, float | None]:
        point = self.cumulative.report()
        widest = self.rolling[WINDOWS[-1]].report()
        point.update({f"{name}_{WINDOWS[-1]}": value for name, value in widest.items()})
        return point


def reported_sizes(sizes: Counter[str]) -> dict[str, int]:
    """The REPORTED_CLUSTERS largest clusters by id (ties: the smaller id), the rest summed
    under "other" (a cluster id is a number: no id is "other")."""
    if len(sizes) <= REPORTED_CLUSTERS:
        return dict(sorted(sizes.items()))
    largest = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))[:REPORTED_CLUSTERS]
    shown = dict(sorted(largest))
    shown[OTHER_CLUSTERS] = sum(sizes.values()) - sum(shown.values())
    return shown


class ClusterBoard:
    """The sizes of the clusters one clusterer version assigned, in all and per window."""

    kind = "clustering"

    def __init__(self) -> None:
        self.sizes: Counter[str] = Counter()
        self.recent: deque[str] = deque(maxlen=WINDOWS[-1])
        self.scored = 0

    def observe(self, outcome: Outcome) -> bool:
        if outcome.prediction is None:
            return False  # DenStream before n_samples_init, for one
        cluster = str(outcome.prediction)
        self.sizes[cluster] += 1
        self.recent.append(cluster)
        self.scored += 1
        return True

    def _window(self, window: int) -> Counter[str]:
        return Counter(list(self.recent)[-window:])

    def report(self) -> dict[str, Any]:
        return {
            "cumulative": self._summary(self.sizes),
            "rolling": {str(w): self._summary(self._window(w)) for w in WINDOWS},
            "cluster_sizes": reported_sizes(self.sizes),
        }

    @staticmethod
    def _summary(sizes: Counter[str]) -> dict[str, float | None]:
        total = sum(sizes.values())
        return {
            "clusters": float(len(sizes)),
            "largest_share": max(sizes.values()) / total if total else None,
        }

    def headline(self) -> dict[str, float | None]:
        point = self._summary(self.sizes)
        widest = self._summary(Counter(self.recent))
        point.update({f"{name}_{WINDOWS[-1]}": value for name, value in widest.items()})
        return point
