"""Feature drift's kept baselines: the same scores as comparing from scratch at every check."""

from __future__ import annotations

import math
import pickle
import random
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import stats

from shared.monitoring.drift import (
    CHECK_EVERY,
    PSI_BINS,
    RECENT,
    REFERENCE,
    FeatureDrift,
    _column,
    _numeric,
    ks,
    psi,
)


def _samples(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        shift = 3.0 if i > count // 2 else 0.0  # the second half moves
        rows.append(
            {
                "a": rng.gauss(shift, 1.0),
                "b": rng.randint(0, 5),
                "c": "text",  # never compared
                "d": rng.choice([1.5, float("nan"), True]),  # bools and NaN are left out
            }
        )
    return rows


def test_psi_is_the_textbook_sum_over_reference_quantile_bins() -> None:
    rng = np.random.default_rng(7)
    reference, recent = rng.normal(0, 1, 200), rng.normal(0.5, 1, 200)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    p = np.maximum(np.bincount(np.searchsorted(edges, reference, "right")) / 200, 1e-4)
    q = np.maximum(np.bincount(np.searchsorted(edges, recent, "right")) / 200, 1e-4)
    assert psi(reference, recent) == float(np.sum((q - p) * np.log(q / p)))
    statistic, _ = ks(reference, recent)
    assert statistic == pytest.approx(stats.ks_2samp(reference, recent).statistic, abs=1e-12)


def test_kept_baselines_score_exactly_like_a_fresh_comparison() -> None:
    kept, fresh = FeatureDrift(), FeatureDrift()
    for x in _samples(REFERENCE + RECENT + 6 * CHECK_EVERY, seed=3):
        kept.update(x)
        # a pickle round trip drops the kept baselines: each check starts from the reference
        fresh = pickle.loads(pickle.dumps(fresh))
        fresh.update(x)
        assert kept.report() == fresh.report()
    assert kept.drifted() == ["a"]
    # "d" is a number in only a third of the reference: too few to compare
    assert set(kept.report()["features"]) == {"a", "b"}


def test_pickled_drift_leaves_its_baselines_out() -> None:
    watcher = FeatureDrift()
    for x in _samples(REFERENCE + RECENT, seed=5):
        watcher.update(x)
    assert watcher._kept  # the check at REFERENCE + RECENT kept them
    assert "_kept" not in pickle.loads(pickle.dumps(watcher)).__dict__


def test_a_retired_window_refills_its_reference_from_scratch() -> None:
    watcher, fresh = FeatureDrift(), FeatureDrift()
    rows = _samples(2 * (REFERENCE + RECENT), seed=9)
    for x in rows[: REFERENCE + RECENT]:
        watcher.update(x)
    watcher.retire()
    assert watcher._kept is None
    fresh.samples = watcher.samples
    for x in rows[REFERENCE + RECENT :]:
        watcher.update(x)
        fresh.update(x)
    assert watcher.report() == fresh.report()


_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.sampled_from([int(sys.float_info.max) + 2**969, -int(sys.float_info.max) - 1, 10**400]),
    st.booleans(),
    st.none(),
    st.text(max_size=2),
)


@given(st.lists(_values, max_size=30))
@example([math.inf, int(sys.float_info.max) + 2**969])  # past float's max, rounded down
def test_column_keeps_exactly_the_finite_numbers(values: list[Any]) -> None:
    column = _column([{"f": v} for v in values], "f")
    expected = np.array([float(v) for v in values if _numeric(v)], dtype=float)
    assert column.tolist() == expected.tolist()
