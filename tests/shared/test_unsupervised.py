"""Issue 17: detectors and clusterers in the catalog: every kind replays a mid-stream
snapshot exactly, obeys the bounds, and its inputs are checked before the log."""

from __future__ import annotations

import itertools
import pickle
from typing import Any

import pytest
from river import anomaly, datasets, metrics, stats

from shared import learning
from shared.catalog import KINDS, build_model, describe
from shared.errors import ApiError
from shared.monitoring.ledger import Ledger
from shared.monitoring.outcomes import encode_outcome
from shared.monitoring.unsupervised import REPORTED_CLUSTERS

NEW_KINDS = [k for k, v in KINDS.items() if v.role in ("anomaly_detector", "clusterer")]
SPECS: dict[str, dict[str, Any]] = {
    "quantile_filter": {"q": 0.9, "anomaly_detector": {"kind": "half_space_trees"}},
    "threshold_filter": {"threshold": 0.9, "anomaly_detector": {"kind": "gaussian_scorer"}},
    "denstream": {"n_samples_init": 20},
    "clustream": {"max_micro_clusters": 10, "time_gap": 20},
}


def spec_for(kind: str) -> dict[str, Any]:
    step = {"kind": kind, "params": SPECS.get(kind, {})}
    if kind in ("half_space_trees", "quantile_filter"):
        return {"steps": [{"kind": "min_max_scaler"}, step]}  # HST expects [0, 1] features
    return {"steps": [step]}


def stream(scores_target: bool, n: int) -> list[tuple[Any, Any]]:
    if scores_target:  # a univariate series: y is what is scored
        return [(None, y) for _, y in itertools.islice(datasets.AirlinePassengers(), n)]
    return [(x, None) for x, _ in itertools.islice(datasets.Phishing(), n)]


def test_every_family_member_is_in_the_catalog() -> None:
    assert set(NEW_KINDS) == {
        "half_space_trees",
        "one_class_svm",
        "loda",
        "local_outlier_factor",
        "gaussian_scorer",
        "standard_absolute_deviation",
        "quantile_filter",
        "threshold_filter",
        "kmeans",
        "dbstream",
        "denstream",
        "clustream",
        "streamkmeans",
    }
    listed = {k["kind"]: k for k in describe()}
    assert listed["kmeans"]["task"] == "clustering"
    assert listed["quantile_filter"]["task"] == "anomaly"
    assert listed["quantile_filter"]["params"]["anomaly_detector"] == "spec"
    assert listed["half_space_trees"]["bounds"]["height"] == "1..16"
    assert "limits" not in listed["half_space_trees"]["params"]  # a Python dict: not JSON


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_snapshot_mid_stream_replays_exactly(kind: str) -> None:
    blueprint, model = build_model(spec_for(kind))
    assert blueprint is not None
    samples = stream(blueprint.scores_target, 80)
    head, tail = samples[:40], samples[40:]
    for x, y in head:
        learning.learn(model, blueprint, learning.check_x(blueprint, x), y)
    restored = pickle.loads(pickle.dumps(model))
    for x, y in tail:
        x = learning.check_x(blueprint, x)
        answered = learning.predict(model, blueprint, x, y)
        assert answered == learning.predict(restored, blueprint, x, y)
        learning.learn(model, blueprint, x, y)
        learning.learn(restored, blueprint, x, y)
    x, y = tail[-1]
    x = learning.check_x(blueprint, x)
    assert learning.predict(model, blueprint, x, y) == learning.predict(restored, blueprint, x, y)


def test_a_univariate_detector_scores_y_as_river_does() -> None:
    spec = {"steps": [{"kind": "threshold_filter", "params": SPECS["threshold_filter"]}]}
    blueprint, model = build_model(spec)
    assert blueprint is not None and blueprint.scores_target
    local = anomaly.ThresholdFilter(anomaly.GaussianScorer(), threshold=0.9)
    for _, y in stream(True, 144):
        score = local.score_one(None, y)
        assert learning.predict(model, blueprint, {}, y) == (score, local.classify(score))
        learning.learn(model, blueprint, {}, learning.check_y(blueprint, y))
        local.learn_one(None, y)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "half_space_trees", "params": {"height": 40}}, "height is out of range"),
        ({"kind": "half_space_trees", "params": {"n_trees": 10**6}}, "MAX_ENSEMBLE_MODELS"),
        ({"kind": "loda", "params": {"n_random_cuts": 10**6}}, "n_random_cuts"),
        ({"kind": "kmeans", "params": {"n_clusters": 10**6}}, "n_clusters"),
        ({"kind": "streamkmeans", "params": {"chunk_size": 10**9}}, "chunk_size"),
        ({"kind": "clustream", "params": {"max_micro_clusters": 10**6}}, "max_micro_clusters"),
        ({"kind": "denstream", "params": {"n_samples_init": 10**9}}, "n_samples_init"),
        (
            {
                "kind": "quantile_filter",
                "params": {"q": 1.5, "anomaly_detector": {"kind": "loda"}},
            },
            "q must be within (0, 1)",
        ),
        ({"kind": "quantile_filter", "params": {"q": 0.9}}, "needs params: anomaly_detector"),
        (
            {
                "kind": "quantile_filter",
                "params": {"q": 0.9, "anomaly_detector": {"kind": "kmeans"}},
            },
            "expected a anomaly_detector",
        ),
        ({"kind": "half_space_trees", "params": {"limits": {"a": [0, 1]}}}, "unknown parameter"),
    ],
)
def test_bounds_and_bad_specs_are_422(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiError) as caught:
        build_model({"steps": [spec]})
    assert caught.value.status == 422
    assert message in caught.value.message


def test_nesting_depth_is_bounded() -> None:
    inner: dict[str, Any] = {"kind": "loda"}
    for _ in range(4):
        inner = {"kind": "quantile_filter", "params": {"q": 0.9, "anomaly_detector": inner}}
    with pytest.raises(ApiError) as caught:
        build_model({"steps": [inner]})
    assert "nest at most" in caught.value.message


def test_a_univariate_detector_takes_no_transformers() -> None:
    with pytest.raises(ApiError) as caught:
        build_model({"steps": [{"kind": "standard_scaler"}, {"kind": "gaussian_scorer"}]})
    assert "scores y, not x" in caught.value.message


def test_what_each_task_accepts_as_y() -> None:
    detector, _ = build_model({"steps": [{"kind": "loda"}]})
    univariate, _ = build_model({"steps": [{"kind": "gaussian_scorer"}]})
    clusterer, _ = build_model({"steps": [{"kind": "kmeans"}]})
    assert detector is not None and univariate is not None and clusterer is not None
    assert learning.check_y(detector, None) is None
    assert learning.check_y(detector, 1) is True  # a ground-truth flag, for ROC AUC
    assert learning.check_y(univariate, 3.5) == 3.5
    assert learning.check_y(clusterer, None) is None
    for blueprint, y, code in [
        (detector, 3.5, "invalid_target"),
        (detector, "fraud", "invalid_target"),
        (univariate, None, "missing_target"),
        (univariate, "x", "invalid_target"),
        (clusterer, 1, "unexpected_target"),
    ]:
        with pytest.raises(ApiError) as caught:
            learning.check_y(blueprint, y)
        assert (caught.value.status, caught.value.code) == (422, code)
    with pytest.raises(ApiError) as caught:
        learning.check_x(detector, None)
    assert caught.value.code == "missing_features"
    assert learning.check_x(univariate, None) == {}


def _outcomes(answers: list[dict[str, Any]], ys: list[Any]) -> list[str]:
    import json

    return [
        json.dumps([seq, [{"f": 1.0}, y], json.loads(encode_outcome(answer, 0.0))])
        for seq, (answer, y) in enumerate(zip(answers, ys, strict=True), start=1)
    ]


def test_anomaly_monitoring_equals_river_statistics() -> None:
    scores = [0.1 * (i % 7) + 0.01 * i for i in range(60)]
    flags = [s > 0.5 for s in scores]
    ys = [i % 5 == 0 for i in range(60)]
    answers = [
        {"score": s, "is_anomaly": f, "model_version": 1}
        for s, f in zip(scores, flags, strict=True)
    ]
    ledger = Ledger()
    ledger.apply(_outcomes(answers, ys))
    [version] = ledger.metrics()["versions"]
    assert version["kind"] == "anomaly" and version["scored"] == 60
    p90, mean, rate, roc = stats.Quantile(0.9), stats.Mean(), stats.Mean(), metrics.RollingROCAUC()
    for s, f, y in zip(scores, flags, ys, strict=True):
        p90.update(s)
        mean.update(s)
        rate.update(float(f))
        roc.update(y, s)
    cumulative = version["cumulative"]
    assert cumulative["score_p90"] == p90.get()
    assert cumulative["score_mean"] == mean.get()
    assert cumulative["flagged_rate"] == rate.get()
    assert cumulative["roc_auc"] == roc.get()
    assert set(version["rolling"]) == {"5", "10", "20"}
    assert ledger.versions[1].drift()["error"]["detector"] == "ADWIN"  # over the score


def test_anomaly_monitoring_without_labels_or_filter() -> None:
    answers = [{"score": float(i), "model_version": 1} for i in range(10)]
    ledger = Ledger()
    ledger.apply(_outcomes(answers, [None] * 10))
    cumulative = ledger.metrics()["versions"][0]["cumulative"]
    assert cumulative["roc_auc"] is None and cumulative["flagged_rate"] is None
    assert cumulative["score_p50"] is not None


def test_clustering_monitoring_counts_cluster_sizes() -> None:
    clusters = [0, 1, 1, 2, 1, 0, 1]
    answers = [{"cluster": c, "model_version": 1} for c in clusters]
    ledger = Ledger()
    ledger.apply(_outcomes(answers, [None] * len(clusters)))
    [version] = ledger.metrics()["versions"]
    assert version["kind"] == "clustering"
    assert version["cluster_sizes"] == {"0": 2, "1": 4, "2": 1}
    assert version["cumulative"] == {"clusters": 3.0, "largest_share": 4 / 7}
    assert version["rolling"]["5"] == {"clusters": 3.0, "largest_share": 3 / 5}


def test_cluster_sizes_list_the_largest_and_sum_the_rest() -> None:
    # cluster c took c + 1 samples: the largest REPORTED_CLUSTERS are the highest ids
    n = REPORTED_CLUSTERS + 30
    clusters = [c for c in range(n) for _ in range(c + 1)]
    answers = [{"cluster": c, "model_version": 1} for c in clusters]
    ledger = Ledger()
    ledger.apply(_outcomes(answers, [None] * len(clusters)))
    [version] = ledger.metrics()["versions"]
    sizes = version["cluster_sizes"]
    assert len(sizes) == REPORTED_CLUSTERS + 1
    assert {k: v for k, v in sizes.items() if k != "other"} == {str(c): c + 1 for c in range(30, n)}
    assert sizes["other"] == sum(range(1, 31))
    assert sum(sizes.values()) == len(clusters)
    assert version["cumulative"]["clusters"] == n  # the count is of every cluster
