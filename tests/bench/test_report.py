"""The bench's report helpers: when an aim is met, and what the tables print."""

from __future__ import annotations

from bench.report import Aim, Row, aims, table


def test_at_least_and_at_most_aims_include_their_target() -> None:
    assert Aim("ratio", 0.6, 0.6, ">=").met
    assert not Aim("ratio", 0.59, 0.6, ">=").met
    assert Aim("ratio", 1.5, 1.5, "<=").met
    assert not Aim("ratio", 1.51, 1.5, "<=").met


def test_an_equal_aim_compares_the_value_as_printed() -> None:
    assert Aim("round trips", 1.004, 1, "=").met
    assert not Aim("round trips", 1.01, 1, "=").met
    assert not Aim("round trips", 0.99, 1, "=").met


def test_aims_mark_only_the_missed_ones() -> None:
    text = aims([Aim("met one", 20.0, 15, ">="), Aim("short one", 4.5, 15, ">=")])
    met, missed = text.splitlines()
    assert met.startswith("met one") and met.endswith("met")
    assert "aim missed" not in met
    assert missed.startswith("short one") and missed.endswith("aim missed")
    assert "aim >= 15" in missed


def test_an_aim_says_when_the_floor_misses_it_too() -> None:
    reachable = Aim("predict / echo", 0.48, 0.8, ">=", floor=1.06)
    beyond = Aim("predict_learn / echo", 0.28, 0.6, ">=", floor=0.51)
    assert not reachable.above_floor and beyond.above_floor
    assert not Aim("no floor", 0.1, 0.8, ">=").above_floor
    kept, out_of_reach = aims([reachable, beyond]).splitlines()
    assert kept.endswith("aim missed (floor 1.06)")
    assert out_of_reach.endswith("aim missed (floor 0.51, the floor misses it too)")


def test_throughput_rows_show_their_ratio_to_the_echo() -> None:
    rows = [
        Row("echo", "ff echo", 16, 5000.0, 1.0, 2.0, 0, vs_echo=1.0),
        Row("chantilly learn", "chantilly", 16, 208.0, 70.0, 90.0, 0, vs_echo=208 / 5000),
        Row("predict_one", "in-process River", None, 90000.0, 0.01, 0.02),
    ]
    head, _rule, echo, rival, river = table(rows).splitlines()
    assert "÷ echo" in head
    assert "1.00" in echo and "0.04" in rival
    assert "in-process River" in river and "-" in river
