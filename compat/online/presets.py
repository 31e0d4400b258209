"""The online-learning seeds' model services as catalog specs (seeds 000, 001).

Each seed model service was one process started with MODEL_NAME=<one of these>; its users'
scripts call it without creating anything first. So a compat model verb naming one of these
creates the model from its preset on first use (through the core's create); any other name
must be created with POST /api/v1/models like every model.
"""

from __future__ import annotations

from typing import Any

from shared.errors import ApiError
from shared.runtime import current_runtime
from shared.schemas import ModelSpec

_RIDGE = [{"kind": "standard_scaler"}, {"kind": "linear_regression", "params": {"l2": 1.0}}]

PRESETS: dict[str, dict[str, Any]] = {
    "linear_regression": {
        "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}],
        "description": "seed: River linear regression with StandardScaler",
    },
    "ridge_regression": {"steps": _RIDGE, "description": "seed: L2-regularised linear regression"},
    "lasso_regression": {
        "steps": [
            {"kind": "standard_scaler"},
            {"kind": "linear_regression", "params": {"l1": 0.1}},
        ],
        "description": "seed: L1-regularised linear regression",
    },
    "decision_tree": {
        "steps": [{"kind": "hoeffding_tree_regressor"}],
        "description": "seed: Hoeffding tree regressor",
    },
    "bagging_regressor": {
        "steps": [
            {
                "kind": "bagging_regressor",
                "params": {"model": {"steps": _RIDGE}, "n_models": 3},
            }
        ],
        "description": "seed: bagging of 3 ridge models",
    },
    "knn_regressor": {
        "steps": [
            {"kind": "standard_scaler"},
            {"kind": "knn_regressor", "params": {"n_neighbors": 5}},
        ],
        "description": "seed: k-nearest neighbours, k=5",
    },
    "amf_regressor": {
        "steps": [{"kind": "amf_regressor"}],
        "description": "seed: aggregated Mondrian forest",
    },
    "neural_network": {
        "steps": [
            {"kind": "standard_scaler"},
            {
                "kind": "mlp_regressor",
                "params": {"hidden_layer_sizes": [5], "activation": "relu"},
            },
        ],
        "description": "seed: MLP with 5 hidden neurons and ReLU",
    },
}


async def create_preset(tenant: str, name: str) -> bool:
    """Create `name` from its preset; False if it is not a preset name. A concurrent first
    use may create it first: that is as good."""
    preset = PRESETS.get(name)
    if preset is None:
        return False
    spec = ModelSpec.model_validate({"name": name, "task": "regression", **preset})
    try:
        await current_runtime().lifecycle.create(tenant, spec)
    except ApiError as exc:
        if exc.code != "model_exists":
            raise
    return True
