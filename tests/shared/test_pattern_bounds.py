"""The shape bound on tokenizer patterns (shared/pattern_bounds.py): the patterns people
tokenize with pass, the ones `re` backtracks on for minutes do not."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.pattern_bounds import MAX_BRANCHING, PatternTooCostly, branching, check_pattern

LONGEST = 10_000

ALLOWED = [
    r"(?u)\b\w\w+\b",  # River's BagOfWords / TFIDF default
    r"(?u)\b\w[\w\-]+\b",
    r"\w+",
    r"\S+",
    r"[A-Za-z]{2,}",
    r"\w{3,20}",
    r"[#@]?\w+",  # words, hashtags, mentions
    r"#\w+|\w+",
    r"[\d.]+",
    r"(?:ab|cd)",
]

REFUSED = {
    r"(?:[\w\s]|[\w\s])*\d": "may hold no repetition",  # exponential
    r"(a+)+$": "may hold no repetition",  # exponential
    r"(?:a|b|ab)*c": "may hold no repetition",
    r"\d+(?:\.\d+)?": "may hold no repetition",  # an optional group holding a `+`
    r"\w+\s*\w+x": "can backtrack too long",  # cubic
    r"(?=\w+x)\w+": "can backtrack too long",  # a lookahead tries at every position
    "a?" * 20 + "a" * 20: "can backtrack too long",  # 2^20 ways
    r"(\w)\1": "back-reference",
    r"\w+|\w+|\w+": "can backtrack too long",  # more than MAX_BRANCHING
    r"#\w+|@\w+|\w+": "can backtrack too long",  # [#@]?\w+ says it in one
}


@pytest.mark.parametrize("pattern", ALLOWED)
def test_everyday_patterns_pass(pattern: str) -> None:
    check_pattern(pattern, LONGEST)


@pytest.mark.parametrize(("pattern", "says"), REFUSED.items())
def test_patterns_that_backtrack_long_are_refused(pattern: str, says: str) -> None:
    with pytest.raises(PatternTooCostly, match=re.escape(says)):
        check_pattern(pattern, LONGEST)


def test_an_unbounded_repetition_counts_as_the_longest_text() -> None:
    parsed = re._parser.parse(r"\w+")  # type: ignore[attr-defined]
    assert branching(parsed, LONGEST) == LONGEST
    assert branching(re._parser.parse(r"\w{2,5}x?"), LONGEST) == 4 * 2  # type: ignore[attr-defined]
    check_pattern("|".join([r"\w+"] * MAX_BRANCHING), LONGEST)


@given(st.lists(st.sampled_from([r"\w+", r"\s*", r"\d?", "x", r"\b", "[ab]"]), max_size=8))
def test_a_sequence_passes_exactly_when_its_ways_are_within_the_bound(parts: list[str]) -> None:
    pattern = "".join(parts)
    unbounded, optional = sum(p in (r"\w+", r"\s*") for p in parts), parts.count(r"\d?")
    ways = LONGEST**unbounded * 2**optional
    if ways <= MAX_BRANCHING * LONGEST:
        check_pattern(pattern, LONGEST)
    else:
        with pytest.raises(PatternTooCostly):
            check_pattern(pattern, LONGEST)
