"""How the ML service's `{model_name, dataset_id, model_type, hyperparameters}` becomes a core
model and its training data, and how its `input_data` becomes the model's x.

A data set whose features include text (a ticket's title and description) trains a text
pipeline (tfidf → naive Bayes for classification): the core's text models read one string,
so the feature columns are joined, in the data set's column order, into that string, both
for training (a derived CSV beside the data set) and for every prediction. Numeric features
train a tabular model on the columns as they are.

The configuration is stored once per model, beside the registry, in
`<tenant>/_ml-service/<model_id>/model.json` (created exclusively).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.errors import unprocessable
from shared.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

FOLDER = "_ml-service"
TEXT = "text"
TARGET_GUESSES = ("priority", "label", "target", "y", "class", "category")
# What each seed model_type trains, for text and for numeric features.
SPECS: dict[str, dict[bool, list[dict[str, Any]]]] = {
    "classification": {
        True: [{"kind": "tfidf"}, {"kind": "multinomial_nb"}],
        False: [{"kind": "gaussian_nb"}],
    },
    "regression": {
        True: [{"kind": "tfidf"}, {"kind": "linear_regression"}],
        False: [{"kind": "standard_scaler"}, {"kind": "linear_regression"}],
    },
}
TASKS = {"classification": "classification", "regression": "regression"}
# Hyperparameters the mapping reads; any other is reported back as ignored (an online model
# makes one pass: epochs and batch sizes have no meaning for it).
KNOWN = {"target", "features", "steps", "learning_rate", "test_size", "shuffle", "random_state"}


def config_key(model_id: str) -> str:
    return f"{FOLDER}/{model_id}/model.json"


def derived_key(model_id: str, dataset_id: str) -> str:
    return f"{FOLDER}/{model_id}/data/{dataset_id}.csv"


def plan(
    model_id: str, model_type: str, dataset: dict[str, Any], hyperparameters: dict[str, Any]
) -> dict[str, Any]:
    """The model's configuration: task, spec, target, feature columns, text or not."""
    if model_type not in SPECS:
        raise unprocessable(
            f"model_type '{model_type}' is not one of {', '.join(SPECS)}", "unknown_model_type"
        )
    columns: list[str] = dataset["columns"]
    target = hyperparameters.get("target") or next(
        (c for c in TARGET_GUESSES if c in columns), columns[-1]
    )
    features = hyperparameters.get("features") or [c for c in columns if c != target]
    missing = [c for c in [target, *features] if c not in columns]
    if missing:
        raise unprocessable(
            f"dataset '{dataset['dataset_id']}' has no column {missing[0]!r}; it has {columns}",
            "unknown_column",
        )
    text = any(dataset["column_types"][c] == "text" for c in features)
    steps = hyperparameters.get("steps") or json.loads(json.dumps(SPECS[model_type][text]))
    rate = hyperparameters.get("learning_rate")
    if rate is not None and steps[-1]["kind"] in ("linear_regression", "logistic_regression"):
        steps[-1].setdefault("params", {})["optimizer"] = {"kind": "sgd", "params": {"lr": rate}}
    return {
        "model_id": model_id,
        "model_type": model_type,
        "task": TASKS[model_type],
        "steps": steps,
        "target": target,
        "features": features,
        "text": text,
        "hyperparameters": hyperparameters,
        "ignored_hyperparameters": sorted(set(hyperparameters) - KNOWN),
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def joined(values: list[Any]) -> str:
    import pandas as pd  # here: only the routes that read tables load pandas

    return " ".join(str(v) for v in values if v is not None and not pd.isna(v))


def text_csv(frame: pd.DataFrame, config: dict[str, Any]) -> bytes:
    """The data set with its feature columns joined into one text column (training input)."""
    import pandas as pd  # here: only the routes that read tables load pandas

    rows = frame[config["features"]].to_numpy(dtype=object).tolist()
    derived = pd.DataFrame(
        {TEXT: [joined(row) for row in rows], config["target"]: frame[config["target"]]}
    )
    buffer = io.StringIO()
    derived.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def x_of(config: dict[str, Any], input_data: Any) -> Any:
    """`input_data` as the model's x: the joined text, or the feature columns given."""
    if not isinstance(input_data, dict):
        raise unprocessable("input_data must be an object of feature → value", "invalid_input")
    present = [c for c in config["features"] if input_data.get(c) is not None]
    if not present:
        raise unprocessable(
            f"input_data has none of this model's features: {config['features']}",
            "invalid_input",
        )
    if config["text"]:
        return joined([input_data[c] for c in present])
    return {c: input_data[c] for c in present}


async def load_config(registry: Registry, tenant: str, model_id: str) -> dict[str, Any] | None:
    raw = await registry.get_blob(tenant, config_key(model_id))
    return json.loads(raw) if raw is not None else None
