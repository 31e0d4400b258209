"""The folded monitoring state of one model: per version, River metrics and drift detectors
advanced over the outcomes in seq order.

A Ledger is to the outcome list what a model snapshot is to the learn log: any instance can
load it, apply the outcomes after it in order and store the result (compare-and-set), and
every instance reaches the same values River computes in one process on the same stream.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.monitoring.comparison import Comparison
from shared.monitoring.drift import ErrorDrift, FeatureDrift
from shared.monitoring.outcomes import Outcome
from shared.monitoring.scoring import WINDOWS, Scoreboard, error_of, kind_of
from shared.monitoring.unsupervised import AnomalyBoard, ClusterBoard

HISTORY_EVERY = 10  # scored samples between two points of the metrics-over-time history...
HISTORY_POINTS = 200  # ...until there are this many: then every other point goes and the
# spacing doubles, so the history always spans the version's whole life
QUIET = 200  # samples without a drift signal that close an episode
EPISODES_KEPT = 20


def iso(ts: float | None) -> str | None:
    return (
        None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    )


@dataclass
class Episode:
    """One drift episode: opened by the first signal, closed after QUIET quiet samples."""

    version: int
    started_seq: int
    started_ts: float
    signals: list[str]
    features: list[str]
    mean_error: float
    ended_seq: int | None = None
    ended_ts: float | None = None  # (ledgers pickled before it have the class default)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "started_seq": self.started_seq,
            "started_at": iso(self.started_ts),
            "signals": list(self.signals),
            "features": list(self.features),
            "mean_error": self.mean_error,
            "ended_seq": self.ended_seq,
            "open": self.ended_seq is None,
        }


@dataclass
class VersionTrack:
    """Everything monitored about one model version."""

    version: int
    samples: int = 0
    first_seq: int = 0
    last_seq: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    scores: Scoreboard | AnomalyBoard | ClusterBoard | None = None
    errors: ErrorDrift = field(default_factory=ErrorDrift)
    features: FeatureDrift = field(default_factory=FeatureDrift)
    history: list[dict[str, Any]] = field(default_factory=list)
    history_every: int = HISTORY_EVERY
    episodes: deque[Episode] = field(default_factory=lambda: deque(maxlen=EPISODES_KEPT))
    open_episode: Episode | None = None
    last_signal: int = 0  # samples seen at the last drift signal

    def apply(self, outcome: Outcome) -> Episode | None:
        """Advance by one outcome; return the episode it opened, if any."""
        if not self.samples:
            self.first_seq, self.first_ts = outcome.seq, outcome.ts
        self.samples += 1
        self.last_seq, self.last_ts = outcome.seq, outcome.ts
        if self.scores is None:
            self.scores = _board(outcome)
        signals = []
        if isinstance(self.scores, Scoreboard):
            scored = self.scores.update(outcome.y, outcome.prediction, outcome.proba)
        else:  # a detector's score or a clusterer's cluster (issue 17)
            scored = self.scores.observe(outcome)
        if scored and self.scores.scored % self.history_every == 0:
            if len(self.history) >= HISTORY_POINTS:
                self.history = self.history[1::2]  # the multiples of twice the spacing
                self.history_every *= 2
            if self.scores.scored % self.history_every == 0:
                point = {"sample": self.samples, "seq": outcome.seq, "at": iso(outcome.ts)}
                self.history.append({**point, **self.scores.headline()})
        error = error_of(self.scores.kind, outcome.y, outcome.prediction)
        if error is not None and math.isfinite(error) and self.errors.update(error):
            signals.append("error")
        if self.features.update(outcome.x):
            signals.append("features")
        return self._episode(outcome, signals)

    def _episode(self, outcome: Outcome, signals: list[str]) -> Episode | None:
        if not signals:
            if self.open_episode is not None and self.samples - self.last_signal >= QUIET:
                self.open_episode.ended_seq = outcome.seq
                self.open_episode.ended_ts = outcome.ts
                self.open_episode = None
            return None
        self.last_signal = self.samples
        drifted = self.features.drifted() if "features" in signals else []
        if self.open_episode is not None:  # the same episode goes on
            episode = self.open_episode
            episode.signals = sorted(set(episode.signals) | set(signals))
            episode.features = sorted(set(episode.features) | set(drifted))
            return None
        episode = Episode(
            self.version,
            outcome.seq,
            outcome.ts,
            signals,
            drifted,
            float(self.errors.adwin.estimation),
        )
        self.open_episode = episode
        self.episodes.append(episode)
        return episode

    def metrics(self) -> dict[str, Any]:
        scores = self.scores
        return {
            "version": self.version,
            "kind": scores.kind if scores else None,
            "samples": self.samples,
            "scored": scores.scored if scores else 0,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "first_at": iso(self.first_ts) if self.samples else None,
            "last_at": iso(self.last_ts) if self.samples else None,
            **(scores.report() if scores else {"cumulative": {}, "rolling": {}}),
            "history": list(self.history),
        }

    def drift(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "samples": self.samples,
            "detected": self.open_episode is not None,
            "error": self.errors.report(),
            "features": self.features.report(),
            "episodes": [e.as_dict() for e in self.episodes],
        }


def _board(outcome: Outcome) -> Scoreboard | AnomalyBoard | ClusterBoard:
    """What to score a version by, from its first outcome (so the same everywhere)."""
    if outcome.task == "anomaly":
        return AnomalyBoard()
    if outcome.task == "clustering":
        return ClusterBoard()
    return Scoreboard(kind_of(outcome.y, outcome.proba))


class Ledger:
    """Per version tracks, and the last seq folded in."""

    def __init__(self) -> None:
        self.versions: dict[int, VersionTrack] = {}
        self.seq = 0
        self.current: int | None = None  # version of the newest outcome
        # a challenger's shadow: the champion beside it (shared/monitoring/comparison.py)
        self.comparison: Comparison | None = None

    def apply(self, raw_outcomes: list[str]) -> list[Episode]:
        """Fold outcomes in (they arrive in seq order); return the episodes they opened."""
        opened = []
        for raw in raw_outcomes:
            outcome = Outcome.decode(raw)
            if outcome.seq <= self.seq:
                continue  # never count one twice
            track = self.versions.get(outcome.version)
            if track is None:
                for older in self.versions.values():  # keep one version's windows, not all
                    older.features.retire()
                track = self.versions[outcome.version] = VersionTrack(outcome.version)
            episode = track.apply(outcome)
            if outcome.paired is not None and outcome.task is not None:
                self._compare(outcome)
            if episode is not None:
                opened.append(episode)
            self.seq, self.current = outcome.seq, outcome.version
        return opened

    def _compare(self, outcome: Outcome) -> None:
        lineage = str((outcome.paired or {}).get("g"))
        comparison = getattr(self, "comparison", None)  # absent from older stored ledgers
        if comparison is None or comparison.lineage != lineage:  # a restarted challenger
            comparison = self.comparison = Comparison(lineage, outcome.task or "")
        comparison.observe(outcome)

    def compared(self) -> Comparison | None:
        """The champion/challenger comparison, if this is a shadow's ledger."""
        return getattr(self, "comparison", None)

    def drift_open(self) -> bool:
        track = self.versions.get(self.current) if self.current is not None else None
        return track is not None and track.open_episode is not None

    def metrics(self) -> dict[str, Any]:
        return {
            "folded_seq": self.seq,
            "windows": list(WINDOWS),
            "versions": [self.versions[v].metrics() for v in sorted(self.versions)],
        }
