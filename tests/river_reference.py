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

from river import anomaly, cluster, datasets, preprocessing

from tests.servers import ROOT

N_ANOMALY = 400
N_KMEANS = 300


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


def reference(which: str, seed: str) -> Any:
    """`which` ("anomaly" or "kmeans") computed in a process started with PYTHONHASHSEED=seed."""
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
    answers = anomaly_answers() if sys.argv[1] == "anomaly" else kmeans_answers()
    print(json.dumps(answers))
