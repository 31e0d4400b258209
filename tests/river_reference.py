"""River in-process, for the exactness tests of detectors and clusterers (issue 17).

Run as its own process (`reference(...)`): KMeans' first centres follow the iteration order of
a set of feature names, hence the process's PYTHONHASHSEED, and the test process runs with
whatever seed it inherited. The reference runs with the seed it is given: the platform's fixed
one (shared/hashseed.py) to compare with a server, another one to show the trap is real.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from typing import Any

from river import anomaly, cluster, datasets, forest, preprocessing

from tests.servers import ROOT

N_ANOMALY = 400
N_KMEANS = 300
N_WATER = 300
WATER_LAGS = 3


def phishing(n: int) -> list[tuple[dict[str, Any], bool]]:
    return list(itertools.islice(datasets.Phishing(), n))


def anomaly_answers(n: int = N_ANOMALY) -> list[dict[str, Any]]:
    """predict_learn of a MinMaxScaler | QuantileFilter(HalfSpaceTrees) on x alone."""
    model = preprocessing.MinMaxScaler() | anomaly.QuantileFilter(
        anomaly.HalfSpaceTrees(seed=42), q=0.95
    )
    answers = []
    for x, _ in phishing(n):
        score = model.score_one(x)
        answers.append({"score": score, "is_anomaly": bool(model[-1].classify(score))})
        model.learn_one(x)
    return answers


def kmeans_answers(n: int = N_KMEANS) -> list[int]:
    """predict_learn of KMeans(n_clusters=3, seed=42) on x alone: the cluster ids."""
    model = cluster.KMeans(n_clusters=3, seed=42)
    answers = []
    for x, _ in phishing(n):
        answers.append(model.predict_one(x))
        model.learn_one(x)
    return answers


def water_answers(n: int = N_WATER, n_lags: int = WATER_LAGS) -> dict[str, list[Any]]:
    """A WaterFlow series fed to three subscribers as the ingest fan-out feeds them: a
    univariate detector scores each value as y, a multivariate detector and KMeans get the
    window `{"value", "in_1".."in_N"}` once it is full (None before: no answer)."""
    hst = preprocessing.MinMaxScaler() | anomaly.QuantileFilter(
        anomaly.HalfSpaceTrees(seed=42), q=0.95
    )
    gauss = anomaly.QuantileFilter(anomaly.GaussianScorer(), q=0.95)
    kmeans = cluster.KMeans(n_clusters=3, seed=42)
    answers: dict[str, list[Any]] = {"hst": [], "gauss": [], "km": []}
    window: list[float] = []
    for _, value in itertools.islice(datasets.WaterFlow(), n):
        score = gauss.score_one(None, value)
        answers["gauss"].append({"score": score, "is_anomaly": bool(gauss.classify(score))})
        gauss.learn_one(None, value)
        if len(window) < n_lags:
            answers["hst"].append(None)
            answers["km"].append(None)
        else:
            x = {"value": value, **{f"in_{i}": v for i, v in enumerate(window, start=1)}}
            score = hst.score_one(x)
            answers["hst"].append({"score": score, "is_anomaly": bool(hst[-1].classify(score))})
            hst.learn_one(x)
            answers["km"].append({"cluster": kmeans.predict_one(x)})
            kmeans.learn_one(x)
        window = [value, *window][:n_lags]
    return answers


FOREST_BATCHES = (300, 100)  # learn batches, in order, then FOREST_PROBES predictions
FOREST_PROBES = 30


def trump(n: int) -> list[tuple[dict[str, Any], float]]:
    return [(dict(x), float(y)) for x, y in itertools.islice(datasets.TrumpApproval(), n)]


def forest_answers() -> list[float]:
    """An ARFRegressor(n_models=3, seed=7) fed the FOREST_BATCHES of TrumpApproval in order:
    its predictions of the next FOREST_PROBES xs."""
    model = forest.ARFRegressor(n_models=3, seed=7)
    learned = sum(FOREST_BATCHES)
    samples = trump(learned + FOREST_PROBES)
    for x, y in samples[:learned]:
        model.learn_one(x, y)
    return [model.predict_one(x) for x, _ in samples[learned:]]


def reference(which: str, seed: str) -> Any:
    """`which` ("anomaly", "kmeans", "water" or "forest") computed in a process started with PYTHONHASHSEED=seed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-m", "tests.river_reference", which],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
        timeout=300,
    )
    return json.loads(done.stdout)


if __name__ == "__main__":
    which = {
        "anomaly": anomaly_answers,
        "kmeans": kmeans_answers,
        "water": water_answers,
        "forest": forest_answers,
    }
    print(json.dumps(which[sys.argv[1]]()))
