"""DBSTREAM and DenStream keep at most MAX_MICRO_CLUSTERS micro-clusters: below the bound
they answer River's clusters float for float; the sample that would open one more is refused
and has changed nothing."""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
from river import cluster, datasets

from shared import learning
from shared.catalog import build_model
from shared.errors import ApiError
from shared.settings import reset_settings_cache

PHISHING = [x for x, _ in itertools.islice(datasets.Phishing(), 300)]
# (kind, spec params, River's own clusterer with the same params)
EXACT: list[tuple[str, dict[str, Any], Any]] = [
    ("dbstream", {}, cluster.DBSTREAM),
    (
        "dbstream",
        {"clustering_threshold": 0.5, "fading_factor": 0.05, "minimum_weight": 0.0},
        cluster.DBSTREAM,
    ),
    ("denstream", {"n_samples_init": 50, "epsilon": 0.5}, cluster.DenStream),
    (
        "denstream",
        {"n_samples_init": 20, "epsilon": 0.3, "decaying_factor": 0.01, "stream_speed": 10},
        cluster.DenStream,
    ),
]
# one micro-cluster per distinct sample, never faded nor cleaned up
ONE_PER_SAMPLE: dict[str, dict[str, Any]] = {
    "dbstream": {"clustering_threshold": 1e-6, "fading_factor": 1e-6, "cleanup_interval": 1e6},
    "denstream": {
        "n_samples_init": 1,
        "epsilon": 1e-6,
        "decaying_factor": 1e-6,
        "mu": 1.5,
        "beta": 1.0,
    },
}


@pytest.fixture
def max_micro_clusters(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("MAX_MICRO_CLUSTERS", "5")
    reset_settings_cache()
    yield 5
    monkeypatch.delenv("MAX_MICRO_CLUSTERS")
    reset_settings_cache()


def _build(kind: str, params: dict[str, Any]) -> tuple[Any, Any]:
    blueprint, model = build_model({"steps": [{"kind": kind, "params": params}]})
    assert blueprint is not None
    return blueprint, model


@pytest.mark.parametrize(("kind", "params", "river"), EXACT)
def test_below_the_bound_they_are_rivers(kind: str, params: dict[str, Any], river: Any) -> None:
    blueprint, model = _build(kind, params)
    local = river(**params)
    answered = []
    for x in PHISHING:
        x = learning.check_x(blueprint, x)
        # DenStream has no cluster before n_samples_init (River answers 0): null
        expected = local.predict_one(x) if getattr(local, "initialized", True) else None
        assert learning.predict(model, blueprint, x, None) == (expected, None)
        answered.append(expected)
        learning.learn(model, blueprint, x, None)
        local.learn_one(x)
    assert len({a for a in answered if a is not None}) > 1  # it did cluster


def _state(model: Any) -> Any:
    """What a learn changes (DenStream's micro-clusters cache their centre when read)."""
    if isinstance(model, cluster.DBSTREAM):
        return pickle.dumps(model)
    return (
        model._n_samples_seen,
        model.timestamp,
        [
            (k, mc.N, mc.linear_sum, mc.squared_sum)
            for pool in (model.p_micro_clusters, model.o_micro_clusters)
            for k, mc in pool.items()
        ],
    )


def _micro_clusters(model: Any) -> int:
    if isinstance(model, cluster.DBSTREAM):
        return len(model._micro_clusters)
    return len(model.p_micro_clusters) + len(model.o_micro_clusters)


@pytest.mark.parametrize("kind", sorted(ONE_PER_SAMPLE))
def test_a_sample_past_the_bound_is_refused_and_changes_nothing(
    kind: str, max_micro_clusters: int
) -> None:
    blueprint, model = _build(kind, ONE_PER_SAMPLE[kind])
    # 1-D points far apart (DenStream's radius formula merges some 2-D ones); DenStream's
    # first sample is its n_samples_init buffer, no micro-cluster
    points = iter({"a": 10.0 * i} for i in range(1, 100))
    learned = []
    while _micro_clusters(model) < max_micro_clusters:
        learned.append(next(points))
        learning.learn(model, blueprint, learned[-1], None)
    before = _state(model)
    with pytest.raises(ValueError, match="MAX_MICRO_CLUSTERS is 5"):
        learning.learn(model, blueprint, {"a": -1000.0}, None)
    assert _state(model) == before
    learning.learn(model, blueprint, learned[-1], None)  # joins a micro-cluster: learned
    assert _state(model) != before
    assert _micro_clusters(model) == max_micro_clusters
    # the bound travels with the model (River's clone keeps constructor parameters)
    assert model.clone().max_micro_clusters == max_micro_clusters


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("dbstream", {"clustering_threshold": 1e-9}, "clustering_threshold is out of range"),
        ("dbstream", {"fading_factor": 1e-12}, "fading_factor is out of range"),
        ("dbstream", {"fading_factor": 2.0}, "fading_factor is out of range"),
        ("dbstream", {"cleanup_interval": 1e12}, "cleanup_interval is out of range"),
        ("dbstream", {"minimum_weight": -1.0}, "minimum_weight is out of range"),
        ("dbstream", {"intersection_factor": 0.0}, "intersection_factor is out of range"),
        ("denstream", {"decaying_factor": 1e-12}, "decaying_factor is out of range"),
        ("denstream", {"beta": 1.5}, "beta is out of range"),
        ("denstream", {"n_samples_init": 2001}, "n_samples_init is out of range"),
        ("denstream", {"mu": 1.0, "beta": 1.0}, "mu * beta > 1"),  # River: ZeroDivisionError
        ("clustream", {"max_micro_clusters": 1001}, "MAX_MICRO_CLUSTERS"),
    ],
)
def test_their_parameters_are_bounded(kind: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiError) as caught:
        _build(kind, params)
    assert caught.value.status == 422
    assert message in caught.value.message
