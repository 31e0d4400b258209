"""Champion vs challenger for detectors and clusterers (README: champion/challenger), folded
from the shadow's outcomes as the monitoring folds a model's own.

A challenger's shadow logs, beside each of its predict_learn outcomes, the champion's answer
to the same sample and the shadow's uid (`paired`, shared/monitoring/outcomes.py). So one
list in one order (the shadow's learn log) holds both sides, and the comparison is River's
statistics advanced over it exactly once (the fold's compare-and-set), equal to River's on
the same ordered samples whichever instances served them. A new uid (the challenger
restarted) starts a new comparison.

- anomaly: per side what the monitoring reports of a detector (shared/monitoring/
  unsupervised.py): score quantiles and mean, flagged rate, and where ground-truth flags
  arrive RollingROCAUC of the score (rank-based: any score range compares).
- clustering: per side the cluster sizes, and how much the two partitions agree: River's
  AdjustedRand with the champion's clusters as the reference (1.0: the same partition up to
  the ids, ~0.0: no more agreement than chance). Cluster ids of two models are arbitrary
  labels, so a share of equal ids would mean nothing.

Supervised models are compared on their errors by counters (shared/challenger.py).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from shared.monitoring.outcomes import Outcome
from shared.monitoring.unsupervised import AnomalyStats
from shared.numbers import as_finite

SIDES = ("champion", "challenger")


class Comparison:
    """Both sides of one challenger run (one shadow lineage) over the samples both answered."""

    def __init__(self, lineage: str, task: str) -> None:
        self.lineage, self.task = lineage, task
        self.n = 0
        self.scores = {side: AnomalyStats(None) for side in SIDES}
        self.clusters: dict[str, Counter[str]] = {side: Counter() for side in SIDES}
        from river import metrics  # here: river.metrics loads scipy.stats

        self.agreement: Any = metrics.AdjustedRand()
        self.agreed = 0

    def observe(self, outcome: Outcome) -> None:
        paired = outcome.paired or {}
        answers = {
            "champion": (paired.get("p"), paired.get("a")),
            "challenger": (outcome.prediction, outcome.is_anomaly),
        }
        self.n += 1
        if self.task == "anomaly":
            for side, (score, flag) in answers.items():
                finite = as_finite(score)
                if finite is not None:  # a degraded (null) score says nothing
                    self.scores[side].update(finite, flag, outcome.y)
            return
        for side, (cluster, _) in answers.items():
            if cluster is not None:  # no cluster yet (STREAMKMeans before its first chunk)
                self.clusters[side][str(cluster)] += 1
        champion, challenger = answers["champion"][0], answers["challenger"][0]
        if champion is not None and challenger is not None:
            self.agreement.update(champion, challenger)
            self.agreed += 1

    def side(self, side: str) -> dict[str, Any]:
        if self.task == "anomaly":
            return {"n": self.n, **self.scores[side].report()}
        sizes = self.clusters[side]
        total = sum(sizes.values())
        return {
            "n": self.n,
            "clusters": len(sizes),
            "largest_share": max(sizes.values()) / total if total else None,
            "cluster_sizes": dict(sorted(sizes.items())),
        }

    def between(self) -> dict[str, Any]:
        """What compares the two sides directly (clustering: their agreement)."""
        if self.task != "clustering":
            return {}
        return {"adjusted_rand": self.agreement.get() if self.agreed else None}
