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


def test_it_writes_what_the_standard_library_writes() -> None:
    # key order kept (River sums a dict in that order), shortest float repr, non-str keys
    data = {"z": 0.1 + 0.2, "a": 1e16, "m": -0.0, "p": {True: 0.5, 3: 0.25}, "t": (1, "é")}
    assert json.loads(dump_json(data)) == json.loads(json.dumps(data))
    assert list(json.loads(dump_json(data))) == ["z", "a", "m", "p", "t"]
    assert json.loads(dump_json(data))["z"] == 0.1 + 0.2


def test_values_orjson_refuses_go_through_the_standard_library() -> None:
    class Real(float):  # a float subclass (numpy's float64 is one)
        pass

    assert dump_json({"big": 2**70, "r": Real(math.inf), "s": Real(0.5)}) == (
        b'{"big":1180591620717411303424,"r":null,"s":0.5}'
    )
