"""The JSON codec: compact, and a non-finite float becomes null wherever it sits."""

from __future__ import annotations

import json
import math

from shared.edge.codec import JSON, dump_json, finite


def test_finite_values_pass_unchanged_and_compact() -> None:
    data = {"y": 1.5, "xs": [1, 2.0, "a"], "ok": True, "none": None}
    assert dump_json(data) == b'{"y":1.5,"xs":[1,2.0,"a"],"ok":true,"none":null}'


def test_non_finite_floats_become_null_at_any_depth() -> None:
    data = {"nan": math.nan, "deep": [{"inf": math.inf}, (-math.inf, 2.0)], "n": 3}
    assert json.loads(dump_json(data)) == {
        "nan": None,
        "deep": [{"inf": None}, [None, 2.0]],
        "n": 3,
    }


def test_finite_leaves_other_types_alone() -> None:
    assert finite("nan") == "nan" and finite(7) == 7 and finite(0.25) == 0.25
    assert finite((math.nan,)) == [None]


def test_the_json_response_renders_with_the_codec() -> None:
    response = JSON({"p": math.nan})
    assert response.body == b'{"p":null}'
    assert response.headers["content-type"] == "application/json"
