"""The cost bound on tokenizer patterns (shared/pattern_bounds.py): the patterns people
tokenize with pass, the ones `re` backtracks on for minutes do not."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.pattern_bounds import ALLOWANCE, SLACK, PatternTooCostly, check_pattern, cost

LONGEST = 10_000

ALLOWED = [
    r"(?u)\b\w\w+\b",  # River's BagOfWords / TFIDF default
    r"(?u)\b\w[\w\-]+\b",
    r"\w+",
    r"\S+",
    r"[A-Za-z]{2,}",
    r"\w{3,20}",
    r"[#@]?\w+",
    r"#\w+|@\w+|\w+",  # hashtags, mentions, words
    r"https?://\S+|\w+",
    r"[\d.]+",
    r"(?i)\w+",
    r"[\w\s]+x",  # the worst kind admitted: ~0.2 s on 'a' * 10,000
]

REFUSED = {
    r"(?:[\w\s]|[\w\s])*\d": "may hold no repetition",  # exponential
    r"(a+)+$": "may hold no repetition",  # exponential
    r"(?:a|b|ab)*c": "may hold no repetition",
    r"\d+(?:\.\d+)?": "may hold no repetition",  # an optional group holding a `+`
    r"\w+\s*\w+x": "can backtrack too long",  # cubic
    r"\w*a{500}b": "can backtrack too long",  # 500 steps at each of n ways
    r"[a-z]+(?=a{900}b)": "can backtrack too long",  # the same in a lookahead
    r"\w{0,140}\w{0,140}x": "can backtrack too long",  # 141 x 141 ways
    "(?:|)" * 14 + "x": "can backtrack too long",  # 2^14 ways
    "a?" * 20 + "a" * 20: "can backtrack too long",  # 2^20 ways
    r"[\w\s]+x|[\w\s]+y": "can backtrack too long",  # two n^2 alternatives
    r"(?i)[\w\s]+x": "can backtrack too long",  # ignoring case: ~6x each step
    r"(\w)\1": "back-reference",
    # found by a review: a repetition in an atomic group in an optional group (cubic)
    r"(?>\w*\w*x)?": "may hold no repetition",
    r"(\w)+x": "can backtrack too long",  # a repeated group: re's slow general repeat
    r"(?>(?i:\w))+x": "can backtrack too long",
}


@pytest.mark.parametrize("pattern", ALLOWED)
def test_everyday_patterns_pass(pattern: str) -> None:
    check_pattern(pattern, LONGEST)


@pytest.mark.parametrize(("pattern", "says"), REFUSED.items())
def test_patterns_that_backtrack_long_are_refused(pattern: str, says: str) -> None:
    with pytest.raises(PatternTooCostly, match=re.escape(says)):
        check_pattern(pattern, LONGEST)


def parsed(pattern: str) -> object:
    return re._parser.parse(pattern)  # type: ignore[attr-defined]


def test_a_repetition_last_in_the_match_is_paid_once_a_text() -> None:
    assert cost(parsed(r"\w+"), LONGEST) == 2  # its least count and one more try: never retried
    assert cost(parsed(r"\w+x"), LONGEST) == 2 * LONGEST  # n steps, then x from n ways
    assert cost(parsed(r"\w{2,5}x"), LONGEST) == 5 + 4  # 5 steps, then x from 4 ways
    assert cost(parsed(r"[\w\s]+x"), LONGEST) <= ALLOWANCE * LONGEST + SLACK


PARTS = [r"\w+", r"\s*", r"\d?", "x", r"\b", "[ab]", r"\w{2,9}", "(?:|)"]


@given(st.lists(st.sampled_from(PARTS), min_size=1, max_size=6))
def test_something_more_to_match_never_makes_a_pattern_cheaper(parts: list[str]) -> None:
    """A literal after a refused pattern leaves it refused: it can only add retries."""
    pattern = "".join(parts)
    assert cost(parsed(pattern + "x"), LONGEST) >= cost(parsed(pattern), LONGEST)
    try:
        check_pattern(pattern, LONGEST)
    except PatternTooCostly:
        with pytest.raises(PatternTooCostly):
            check_pattern(pattern + "x", LONGEST)
