"""Models as bytes (shared/model_pickle.py): River's binary-search-tree splitter nodes are
written flat, so a tree whose leaf saw many ordered values pickles, and the model read back
learns and predicts exactly as the one written."""

from __future__ import annotations

import io
import pickle
from typing import Any

import pytest
from river import datasets, ensemble, rules, tree

from shared import model_pickle

# TrumpApproval's features arrive in date order: the leaves' E-BSTs grow into chains
SAMPLES: list[tuple[dict[str, Any], float]] = [
    (dict(x), float(y)) for x, y in datasets.TrumpApproval()
]


def bagged_trees() -> Any:
    return ensemble.BaggingRegressor(tree.HoeffdingTreeRegressor(), n_models=2, seed=1)


@pytest.mark.parametrize(
    "make",
    [bagged_trees, lambda: rules.AMRules(), lambda: tree.HoeffdingTreeRegressor()],
    ids=["bagged trees", "AMRules", "tree"],
)
def test_the_model_read_back_learns_and_predicts_as_the_one_written(make: Any) -> None:
    model = make()
    for x, y in SAMPLES[:900]:
        model.learn_one(x, y)
    copy = pickle.loads(model_pickle.dumps(model))
    for x, y in SAMPLES[900:]:
        assert copy.predict_one(x) == model.predict_one(x)
        copy.learn_one(x, y)
        model.learn_one(x, y)
    assert model_pickle.dumps(copy) == model_pickle.dumps(model)


def test_a_chain_plain_pickle_cannot_walk() -> None:
    model = bagged_trees()
    for x, y in SAMPLES[:900]:
        model.learn_one(x, y)
    # pickle's own reduction (no copyreg entries: the flat one is registered process-wide
    # once used) is what snapshots and versions of it hit before
    plain = pickle.Pickler(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL)
    plain.dispatch_table = {}
    with pytest.raises(RecursionError):
        plain.dump(model)
    assert pickle.loads(model_pickle.dumps(model)).predict_one(SAMPLES[0][0]) == (
        model.predict_one(SAMPLES[0][0])
    )
