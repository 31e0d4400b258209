"""How long a tokenizer regex may backtrack: a bound on its shape, checked at create.

River tokenizes text with Python's `re`, a backtracking matcher that holds the GIL while it
matches: a pattern such as `(?:[\\w\\s]|[\\w\\s])*\\d` takes minutes on a 29-character
text (exponential), `\\w+\\s*\\w+x` cubic time on a 10,000-character one, and either would stop
every tenant's requests in the process that learns it. The model must still tokenize exactly
as River does, so the pattern is not rewritten or run elsewhere: its shape is bounded.

`branching` estimates, for one starting position, how many ways the pattern can try: a
repetition multiplies by its span (an unbounded one by the longest text, MAX_TEXT_CHARS),
alternatives add up, a sequence multiplies. A repetition may hold no repetition or
alternatives of its own (nested repetition is what turns polynomial into exponential), and
back-references are refused. `check_pattern` allows up to `MAX_BRANCHING` x MAX_TEXT_CHARS:
one unbounded repetition per alternative, at most two (or one beside an optional item),
measured at ~0.2 s of one core per alternative on the worst 10,000-character text
(`[\\w\\s]+x` on 'a' * 10,000; four such alternatives took ~1 s).
"""

from __future__ import annotations

from re import _constants as sre  # the parsed form `re` itself compiles from
from re import _parser as sre_parse
from typing import Any

MAX_BRANCHING = 2  # in units of MAX_TEXT_CHARS: two alternatives with one `+` each
_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT)}
_BACKREFERENCES = {
    sre.GROUPREF,
    sre.GROUPREF_EXISTS,
    sre.GROUPREF_IGNORE,
    sre.GROUPREF_LOC_IGNORE,
    sre.GROUPREF_UNI_IGNORE,
}
_NESTED = "a repetition may hold no repetition or alternatives (they backtrack exponentially)"


class PatternTooCostly(ValueError):
    """The pattern's shape lets `re` backtrack past the bound; the message says why."""


def check_pattern(pattern: str, longest_text: int) -> None:
    """Raise PatternTooCostly when `pattern` could backtrack past MAX_BRANCHING x
    `longest_text` tries per starting position (the pattern compiles: checked before)."""
    ways = branching(sre_parse.parse(pattern), longest_text)
    if ways > MAX_BRANCHING * longest_text:
        raise PatternTooCostly(
            "can backtrack too long: at most one unbounded repetition (+, *, {n,}) per "
            f"alternative and at most {MAX_BRANCHING} such alternatives"
        )


def branching(items: Any, longest_text: int, in_repeat: bool = False) -> int:
    """The ways `items` (a parsed sequence) can be tried from one position, bounded above."""
    ways = 1
    for op, av in items:
        if op in _REPEATS:
            low, high, body = av
            if in_repeat:
                raise PatternTooCostly(_NESTED)
            if branching(body, longest_text, in_repeat=True) > 1:
                raise PatternTooCostly(_NESTED)
            ways *= longest_text if high == sre.MAXREPEAT else high - low + 1
        elif op is sre.BRANCH:
            if in_repeat:
                raise PatternTooCostly(_NESTED)
            ways *= sum(branching(branch, longest_text) for branch in av[1])
        elif op is sre.SUBPATTERN:
            ways *= branching(av[-1], longest_text, in_repeat)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            ways *= branching(av[1], longest_text, in_repeat)
        elif op is getattr(sre, "ATOMIC_GROUP", None):
            ways *= branching(av, longest_text, in_repeat)
        elif op in _BACKREFERENCES:
            raise PatternTooCostly("uses a back-reference (its matching can be exponential)")
    return ways
