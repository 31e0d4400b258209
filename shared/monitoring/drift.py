"""Drift: ADWIN on the error stream, and PSI / KS between a reference and a recent window.

Both are updated in seq order with the prequential stream, so every instance that folds
the same outcomes reaches the same detections.
"""

from __future__ import annotations

import math
import sys
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.numbers import is_finite

MAX_FEATURES = 20  # numeric features watched per version (the first ones seen)
REFERENCE = 200  # the version's first samples
RECENT = 200  # the latest samples, compared with the reference
CHECK_EVERY = 50  # samples between two feature comparisons
PSI_BINS = 10
PSI_DRIFT = 0.25  # the usual "significant shift" threshold
KS_ALPHA = 0.001
_FLOAT_MAX = sys.float_info.max
_HUGE = np.empty(0)  # the column could not be converted as a whole
_EPS = 1e-4  # an empty bin counts as this share (PSI's log needs both sides > 0)


def psi(reference: np.ndarray, recent: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index over the reference's quantile bins."""
    return Baseline(reference, bins).psi(recent)


def ks(reference: np.ndarray, recent: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and its asymptotic p-value (Stephens)."""
    return Baseline(reference).ks(recent)


class Baseline:
    """One feature's reference column with what PSI and KS need of it (its quantile bins
    and their shares, its sorted values), computed once: a version's reference is fixed once
    full, so a comparison every CHECK_EVERY samples only pays for the recent side."""

    def __init__(self, reference: np.ndarray, bins: int = PSI_BINS) -> None:
        self.edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
        expected = np.bincount(
            np.searchsorted(self.edges, reference, side="right"), minlength=len(self.edges) + 1
        )
        self.shares = np.maximum(expected / len(reference), _EPS)
        self.ordered = np.sort(reference)

    def psi(self, recent: np.ndarray) -> float:
        actual = np.bincount(
            np.searchsorted(self.edges, recent, side="right"), minlength=len(self.edges) + 1
        )
        p, q = self.shares, np.maximum(actual / len(recent), _EPS)
        return float(np.sum((q - p) * np.log(q / p)))

    def ks(self, recent: np.ndarray) -> tuple[float, float]:
        from scipy import special  # here: the KS test is a report; serving never loads scipy

        a, b = self.ordered, np.sort(recent)
        both = np.concatenate([a, b])
        gap = np.searchsorted(a, both, side="right") / len(a)
        gap -= np.searchsorted(b, both, side="right") / len(b)
        d = float(np.max(np.abs(gap)))
        en = math.sqrt(len(a) * len(b) / (len(a) + len(b)))
        return d, min(1.0, float(special.kolmogorov((en + 0.12 + 0.11 / en) * d)))


class ErrorDrift:
    """ADWIN over the prediction error. Only a rise counts as drift: a fall is the model
    learning (every fresh model's error falls while it warms up)."""

    def __init__(self) -> None:
        # here: river.drift loads River's data sets, scikit-learn and scipy.stats, which a
        # process that folds no outcome (a cold predict) has no need of
        from river import drift

        self.adwin = drift.ADWIN()
        self.changes = 0  # every change ADWIN cut its window at, either way
        self.rises = 0

    def update(self, error: float) -> bool:
        before = self.adwin.estimation
        self.adwin.update(error)
        if not self.adwin.drift_detected:
            return False
        self.changes += 1
        if self.adwin.estimation > before:
            self.rises += 1
            return True
        return False

    def report(self) -> dict[str, Any]:
        return {
            "detector": "ADWIN",
            "delta": self.adwin.delta,
            "width": int(self.adwin.width),
            "mean_error": float(self.adwin.estimation),
            "changes": self.changes,
            "rises": self.rises,
        }


@dataclass
class FeatureScore:
    psi: float
    ks: float
    ks_pvalue: float

    @property
    def drifted(self) -> bool:
        return self.psi >= PSI_DRIFT and self.ks_pvalue < KS_ALPHA


class FeatureDrift:
    """Per numeric feature: the version's first REFERENCE values against the last RECENT.

    Samples are kept whole (one append each) and split into features only when compared,
    every CHECK_EVERY samples: the per-sample cost stays one deque append."""

    def __init__(self) -> None:
        self.samples = 0
        self.reference: list[dict[str, Any]] = []
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.scores: dict[str, FeatureScore] = {}
        self.checked_at = 0  # samples seen at the last comparison
        self._kept: dict[str, Baseline] | None = None

    def update(self, x: Any) -> bool:
        """Add one sample; every CHECK_EVERY samples compare the windows. True if drifted."""
        self.samples += 1
        if not isinstance(x, dict):
            return False  # text or no features: nothing to compare
        if len(self.reference) < REFERENCE:
            self.reference.append(x)
        self.recent.append(x)
        # windows are disjoint from REFERENCE + RECENT samples on
        if self.samples < REFERENCE + RECENT or self.samples % CHECK_EVERY:
            return False
        self.checked_at = self.samples
        self.scores = {
            name: FeatureScore(baseline.psi(recent), *baseline.ks(recent))
            for name, baseline in self._baselines().items()
            if len(recent := _column(self.recent, name)) >= RECENT // 2
        }
        return any(score.drifted for score in self.scores.values())

    def _baselines(self) -> dict[str, Baseline]:
        """Per compared feature its Baseline, kept once the reference is full (fixed)."""
        kept: dict[str, Baseline] | None = getattr(self, "_kept", None)  # older pickles
        if kept is not None:
            return kept
        baselines = {}
        for name in _numeric_features(self.reference):
            reference = _column(self.reference, name)
            if len(reference) >= REFERENCE // 2:
                baselines[name] = Baseline(reference)
        if len(self.reference) == REFERENCE:
            self._kept = baselines
        return baselines

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the kept baselines: they are rebuilt from the reference."""
        return {k: v for k, v in self.__dict__.items() if k != "_kept"}

    def retire(self) -> None:
        """Drop the windows (the scores stay): the version is no longer the one serving."""
        self.reference = []
        self.recent.clear()
        self._kept = None

    def drifted(self) -> list[str]:
        return sorted(name for name, score in self.scores.items() if score.drifted)

    def report(self) -> dict[str, Any]:
        return {
            "reference_size": REFERENCE,
            "recent_size": RECENT,
            "checked_at_sample": self.checked_at,
            "thresholds": {"psi": PSI_DRIFT, "ks_pvalue": KS_ALPHA},
            "features": {
                name: {
                    "psi": score.psi,
                    "ks": score.ks,
                    "ks_pvalue": score.ks_pvalue,
                    "drift": score.drifted,
                }
                for name, score in sorted(self.scores.items())
            },
        }


def _numeric(value: Any) -> bool:
    # never math.isfinite on an int: a 400-digit one (in an old log) raises OverflowError
    return type(value) in (int, float) and is_finite(value)


def _numeric_features(samples: list[dict[str, Any]]) -> list[str]:
    """The first MAX_FEATURES numeric features, in the order they were first seen."""
    names: dict[str, None] = {}
    for x in samples:
        for name, value in x.items():
            if name not in names and _numeric(value):
                names[name] = None
                if len(names) == MAX_FEATURES:
                    return list(names)
    return list(names)


def _column(samples: Any, name: str) -> np.ndarray:
    """The feature's finite numeric values across the samples, in order."""
    values = [v for x in samples if type(v := x.get(name)) is float or type(v) is int]
    try:
        column = np.array(values, dtype=float)
    except OverflowError:
        column = _HUGE
    # float's largest value may be an int just past it, rounded down: those are checked one
    # by one (as ints, never converted), like any int beyond float's range; `any`, not `max`:
    # an infinity beside such a value would hide it
    if column is _HUGE or bool((np.abs(column) == _FLOAT_MAX).any()):
        return np.array([v for v in values if _numeric(v)], dtype=float)
    return column[np.isfinite(column)]
