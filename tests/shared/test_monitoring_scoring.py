"""Scoreboards, ledgers, drift detectors and latency histograms, without any server."""

from __future__ import annotations

import json
import pickle
import random
from typing import Any

import numpy as np
import pytest
from river import linear_model, metrics, naive_bayes, preprocessing, utils

from shared.learning import label_key
from shared.monitoring import latency
from shared.monitoring.drift import ErrorDrift, FeatureDrift, ks, psi
from shared.monitoring.ledger import HISTORY_EVERY, HISTORY_POINTS, QUIET, Ledger
from shared.monitoring.scoring import METRICS, PROBABILISTIC, WINDOWS, Scoreboard


def river_reference(kind: str, stream: list[tuple[Any, Any, Any]]) -> dict[str, Any]:
    """River in-process: labels for label metrics, River's own proba dicts for the rest."""
    cumulative = {name: make() for name, make in METRICS[kind].items()}  # type: ignore[index]
    rolling = {
        w: {name: utils.Rolling(make, window_size=w) for name, make in METRICS[kind].items()}  # type: ignore[index]
        for w in WINDOWS
    }
    for y, label, proba in stream:
        for group in (cumulative, *rolling.values()):
            for name, metric in group.items():
                metric.update(y, proba if name in PROBABILISTIC else label)
    return {
        "cumulative": {n: m.get() for n, m in cumulative.items()},
        "rolling": {str(w): {n: m.get() for n, m in g.items()} for w, g in rolling.items()},
    }


def outcome(seq: int, x: Any, y: Any, prediction: Any, proba: Any = None, version: int = 1) -> str:
    return json.dumps([seq, [x, y], {"v": version, "t": 1.0 + seq, "p": prediction, "q": proba}])


def test_binary_scoreboard_reads_api_probabilities_exactly_like_river() -> None:
    rng = random.Random(3)
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    stream, raws = [], []
    for seq in range(1, 301):
        x = {"a": rng.gauss(0, 1), "b": rng.gauss(0, 1)}
        y = x["a"] + 0.3 * rng.gauss(0, 1) > 0
        proba = model.predict_proba_one(x)
        label = max(proba, key=proba.get) if proba else None
        stream.append((y, label, proba))
        api_proba = {label_key(k): v for k, v in proba.items()}  # what the API answers
        raws.append(outcome(seq, x, y, label, api_proba))
        model.learn_one(x, y)
    ledger = Ledger()
    ledger.apply(raws[:120])
    ledger = pickle.loads(pickle.dumps(ledger))  # stored and loaded between two folds
    ledger.apply(raws[120:])
    report = ledger.metrics()["versions"][0]
    expected = river_reference("binary", stream)
    assert report["kind"] == "binary"
    assert report["cumulative"] == expected["cumulative"]
    assert report["rolling"] == expected["rolling"]


def test_multiclass_scoreboard_equals_river_in_label_space() -> None:
    rng = random.Random(5)
    model = naive_bayes.GaussianNB()
    board = Scoreboard("multiclass")
    stream = []
    for _ in range(200):
        y = rng.choice(["low", "mid", "high"])
        x = {"v": {"low": 0.0, "mid": 1.0, "high": 2.0}[y] + rng.gauss(0, 0.7)}
        proba = model.predict_proba_one(x)
        label = max(proba, key=proba.get) if proba else None
        stream.append((y, label, proba))
        board.update(y, label, {label_key(k): v for k, v in proba.items()})
        model.learn_one(x, y)
    expected = river_reference("multiclass", stream)
    assert board.report()["cumulative"] == expected["cumulative"]
    assert board.report()["rolling"] == expected["rolling"]


def test_ledger_counts_each_seq_once_and_keeps_versions_apart() -> None:
    ledger = Ledger()
    raws = [outcome(s, {"a": 1.0}, 2.0, 1.5, version=1 if s <= 5 else 2) for s in range(1, 9)]
    ledger.apply(raws[:6])
    ledger.apply(raws[3:])  # an overlapping re-read never counts twice
    versions = {v["version"]: v for v in ledger.metrics()["versions"]}
    assert (versions[1]["samples"], versions[2]["samples"]) == (5, 3)
    mae = metrics.MAE()
    for _ in range(5):
        mae.update(2.0, 1.5)
    assert versions[1]["cumulative"]["mae"] == mae.get()
    assert ledger.seq == 8


def test_regression_skips_missing_predictions() -> None:
    board = Scoreboard("regression")
    assert not board.update(3.0, None, None)
    assert board.update(3.0, 2.0, None)
    assert board.scored == 1


def test_error_drift_counts_rises_not_falls() -> None:
    rises = ErrorDrift()
    assert not any(rises.update(1.0 if i < 500 else 5.0) for i in range(500))
    assert any(rises.update(5.0 + 0.01 * (i % 3)) for i in range(300))
    falls = ErrorDrift()
    assert not any(falls.update(5.0 if i < 500 else 1.0) for i in range(800))
    assert falls.report()["changes"] >= 1  # ADWIN saw the change; it is just not drift


def test_feature_drift_psi_and_ks() -> None:
    rng = np.random.default_rng(7)
    same = rng.normal(size=200), rng.normal(size=200)
    moved = rng.normal(size=200), rng.normal(1.5, 1, size=200)
    assert psi(*same) < 0.25 and ks(*same)[1] > 0.001
    assert psi(*moved) > 0.25 and ks(*moved)[1] < 1e-6
    watcher = FeatureDrift()
    flags = [watcher.update({"f": float(v), "flag": True}) for v in rng.normal(size=400)]
    assert not any(flags) and set(watcher.scores) == {"f"}  # booleans are not watched
    flags = [watcher.update({"f": float(v)}) for v in rng.normal(3, 1, size=200)]
    assert any(flags) and watcher.drifted() == ["f"]


def test_episode_opens_once_and_closes_after_quiet() -> None:
    rng = random.Random(11)
    raws, seq = [], 0
    for level, count in ((0.0, 600), (8.0, 200 + QUIET + 300)):
        for _ in range(count):
            seq += 1
            raws.append(outcome(seq, None, level + rng.gauss(0, 0.2), 0.0))
    ledger = Ledger()
    opened = ledger.apply(raws)
    assert len(opened) == 1 and opened[0].signals == ["error"]
    assert 600 < opened[0].started_seq <= 650
    drift = ledger.versions[1].drift()
    assert drift["episodes"][0]["ended_seq"] is not None and not drift["detected"]


@pytest.mark.parametrize("ms", [0.005, 0.2, 3.0, 47.0, 900.0])
def test_latency_buckets_hold_percentiles_within_ten_percent(ms: float) -> None:
    counts: dict[str, float] = {}
    for _ in range(100):
        latency.record(counts, "predict", ms)
    summary = latency.summarize(counts)["predict"]
    assert summary["count"] == 100
    assert summary["mean_ms"] == pytest.approx(ms)
    for p in ("p50_ms", "p95_ms", "p99_ms"):
        assert summary[p] == pytest.approx(ms, rel=0.1, abs=0.011)


def test_latency_percentiles_of_a_spread() -> None:
    counts: dict[str, float] = {}
    for i in range(1, 1001):
        latency.record(counts, "predict_learn", i / 10)  # 0.1 .. 100 ms, uniform
    summary = latency.summarize(counts)["predict_learn"]
    assert summary["p50_ms"] == pytest.approx(50, rel=0.1)
    assert summary["p95_ms"] == pytest.approx(95, rel=0.1)
    assert summary["p99_ms"] == pytest.approx(99, rel=0.1)


def test_history_thins_out_to_span_the_whole_stream() -> None:
    ledger = Ledger()
    n = HISTORY_EVERY * HISTORY_POINTS * 3  # three times what fits at the first spacing
    ledger.apply([outcome(s, None, 1.0, 0.5) for s in range(1, n + 1)])
    samples = [point["sample"] for point in ledger.versions[1].history]
    spacing = HISTORY_EVERY * 4
    assert samples == list(range(spacing, n + 1, spacing))
    assert len(samples) <= HISTORY_POINTS
