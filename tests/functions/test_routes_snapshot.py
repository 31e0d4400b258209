"""Each function group serves exactly the (method, path) → handler table recorded in
routes_snapshot.json (taken before compat/ left shared/): moving code never adds, drops or
reroutes an endpoint. A deliberate route change updates the snapshot in the same commit."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from functions.gateway import GROUPS

SNAPSHOT = json.loads((Path(__file__).parent / "routes_snapshot.json").read_text())


def served(group: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for route in importlib.import_module(f"functions.{group}.main").ROUTES:
        for method in sorted(route.methods - {"HEAD"}):
            key = f"{method} {route.path}"
            assert key not in table, f"{group} mounts {key} twice"
            table[key] = route.endpoint.__name__
    return table


def test_snapshot_covers_every_group() -> None:
    assert set(SNAPSHOT) == set(GROUPS)


@pytest.mark.parametrize("group", GROUPS)
def test_group_serves_the_recorded_routes(group: str) -> None:
    assert served(group) == SNAPSHOT[group]
