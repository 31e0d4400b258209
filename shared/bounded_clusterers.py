"""DBSTREAM and DenStream with a bounded number of micro-clusters (issue 17).

River's density-based clusterers open a micro-cluster for every sample that lands far from
the ones they have, and forget one only when its weight fades: with a tiny radius or a tiny
fading/decay, they keep one per sample, so the state, each learn (a scan of every
micro-cluster) and each predict (a reclustering over all of them) grow with the stream. These
subclasses refuse the sample that would open a micro-cluster past `max_micro_clusters`
(MAX_MICRO_CLUSTERS): a learn that raises is never acknowledged (422 learn_failed) and has
changed nothing. Below the bound they are River's, float for float. The bound is a
constructor parameter, so River's `clone()` keeps it and a replay meets the same bound.
"""

from __future__ import annotations

from typing import Any

from river import cluster

from shared.settings import get_settings


def _refuse(count: int, bound: int) -> None:
    raise ValueError(
        f"this sample would open micro-cluster {count + 1}; MAX_MICRO_CLUSTERS is {bound}"
    )


class BoundedDBSTREAM(cluster.DBSTREAM):
    """River's DBSTREAM, keeping at most `max_micro_clusters` micro-clusters."""

    def __init__(
        self,
        clustering_threshold: float,
        fading_factor: float,
        cleanup_interval: float,
        intersection_factor: float,
        minimum_weight: float,
        max_micro_clusters: int,
    ) -> None:
        super().__init__(
            clustering_threshold=clustering_threshold,
            fading_factor=fading_factor,
            cleanup_interval=cleanup_interval,
            intersection_factor=intersection_factor,
            minimum_weight=minimum_weight,
        )
        self.max_micro_clusters = max_micro_clusters

    def learn_one(self, x: dict[str, Any], w: Any = None) -> None:
        count = len(self._micro_clusters)
        # only at the bound is the neighbour search done twice: River's _update repeats it
        if count >= self.max_micro_clusters and not self._find_fixed_radius_nn(x):
            _refuse(count, self.max_micro_clusters)
        super().learn_one(x, w)


class BoundedDenStream(cluster.DenStream):
    """River's DenStream, keeping at most `max_micro_clusters` (potential and outlier)
    micro-clusters once initialised (the initial buffer is `n_samples_init` samples)."""

    def __init__(
        self,
        decaying_factor: float,
        beta: float,
        mu: float,
        epsilon: float,
        n_samples_init: int,
        stream_speed: int,
        max_micro_clusters: int,
    ) -> None:
        super().__init__(
            decaying_factor=decaying_factor,
            beta=beta,
            mu=mu,
            epsilon=epsilon,
            n_samples_init=n_samples_init,
            stream_speed=stream_speed,
        )
        self.max_micro_clusters = max_micro_clusters

    def _opens_micro_cluster(self, x: dict[str, Any]) -> bool:
        """Whether River's _merge would add an outlier micro-cluster for x: neither the
        closest potential nor the closest outlier micro-cluster takes it within epsilon
        (radius_with reads no timestamp and changes nothing)."""
        for pool in (self.p_micro_clusters, self.o_micro_clusters):
            if pool:
                closest = pool[self._get_closest_cluster_key(x, pool)]
                if closest.radius_with(x) <= self.epsilon:
                    return False
        return True

    def learn_one(self, x: dict[str, Any], w: Any = None) -> None:
        if self.initialized:
            count = len(self.p_micro_clusters) + len(self.o_micro_clusters)
            if count >= self.max_micro_clusters and self._opens_micro_cluster(x):
                _refuse(count, self.max_micro_clusters)
        super().learn_one(x, w)


def dbstream(
    clustering_threshold: float = 1.0,
    fading_factor: float = 0.01,
    cleanup_interval: float = 2,
    intersection_factor: float = 0.3,
    minimum_weight: float = 1.0,
) -> BoundedDBSTREAM:
    return BoundedDBSTREAM(
        clustering_threshold,
        fading_factor,
        cleanup_interval,
        intersection_factor,
        minimum_weight,
        get_settings().max_micro_clusters,
    )


def denstream(
    decaying_factor: float = 0.25,
    beta: float = 0.75,
    mu: float = 2,
    epsilon: float = 0.02,
    n_samples_init: int = 1000,
    stream_speed: int = 100,
) -> BoundedDenStream:
    # River divides by log(mu·beta / (mu·beta - 1)): a ZeroDivisionError (a 500) at 1
    if not mu * beta > 1:
        raise ValueError("denstream needs mu * beta > 1 (a potential micro-cluster's weight)")
    return BoundedDenStream(
        decaying_factor,
        beta,
        mu,
        epsilon,
        n_samples_init,
        stream_speed,
        get_settings().max_micro_clusters,
    )
