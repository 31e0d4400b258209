"""How long a tokenizer regex may backtrack: a bound on its cost, checked at create.

River tokenizes text with Python's `re`, a backtracking matcher that holds the GIL while it
matches: `(?:[\\w\\s]|[\\w\\s])*\\d` takes minutes on a 29-character text (exponential),
`\\w+\\s*\\w+x` and `\\w*a{500}b` are cubic on a long one, and any of them would stop every
tenant's requests in the process that learns it. The model must still tokenize exactly as River
does, so the pattern is not rewritten or run elsewhere: its cost is bounded.

`cost` estimates the steps `re` may take from one starting position, from the parsed pattern:
a sequence costs the sum of its items' costs, each times the ways the items before it can
match (backtracking retries every one); a repetition matches up to its top count (the longest
text, MAX_TEXT_CHARS, when unbounded) in as many ways as its span; alternatives add up and
weigh `BRANCH_WEIGHT` steps each (measured: a branch costs ~10x a character-class step), a
repeated group `GENERAL_REPEAT_WEIGHT` per character (re's general repeat, not its fast
one-character loop); IGNORECASE multiplies by `IGNORECASE_WEIGHT` (measured 5.7x). A repetition may hold no
repetition or alternatives (that turns polynomial into exponential), and back-references are
refused. A repetition last in the match costs only its least count and one more try of its
body: nothing after it can fail, so it is never retried, and findall resumes after what it
took. findall tries every
starting position, so the allowance is `ALLOWANCE` x the longest text per position: `\\w+x`
(2n) passes, `\\w+\\s*x` does not, `#\\w+|@\\w+|\\w+` and `https?://\\S+|\\w+` do.
"""

from __future__ import annotations

from re import _constants as sre  # the parsed form `re` itself compiles from
from re import _parser as sre_parse
from typing import Any

ALLOWANCE = 2  # steps per starting position, in units of the longest text (plus SLACK)
SLACK = 64  # for the constant steps around one repetition: anchors, a literal, a `?`
BRANCH_WEIGHT = 8
GENERAL_REPEAT_WEIGHT = 8  # a repeated group: re's general repeat, measured ~7x its fast loop
IGNORECASE_WEIGHT = 6
_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT)}
_BACKREFERENCES = {
    sre.GROUPREF,
    sre.GROUPREF_EXISTS,
    sre.GROUPREF_IGNORE,
    sre.GROUPREF_LOC_IGNORE,
    sre.GROUPREF_UNI_IGNORE,
}
_ONE_CHARACTER = {sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.ANY, sre.CATEGORY}
_ATOMIC = {sre.ASSERT, sre.ASSERT_NOT, getattr(sre, "ATOMIC_GROUP", sre.ASSERT)}
_NESTED = "a repetition may hold no repetition or alternatives (they backtrack exponentially)"


class PatternTooCostly(ValueError):
    """The pattern lets `re` backtrack past the bound; the message says why."""


def check_pattern(pattern: str, longest_text: int) -> None:
    """Raise PatternTooCostly when `pattern` could take more than ALLOWANCE x
    `longest_text` (+ SLACK) steps from one starting position (it compiles: checked before)."""
    parsed = sre_parse.parse(pattern)
    steps = cost(parsed, longest_text)
    if parsed.state.flags & sre.SRE_FLAG_IGNORECASE or _ignores_case(parsed):
        steps *= IGNORECASE_WEIGHT
    if steps > ALLOWANCE * longest_text + SLACK:
        raise PatternTooCostly(
            f"can backtrack too long (~{steps:,} steps per position where "
            f"{ALLOWANCE * longest_text + SLACK:,} are allowed): at most one unbounded "
            "repetition (+, *, {n,}) with something after it, little else that can match in "
            "several ways, and no (?i) (River lowercases the text already)"
        )


def cost(items: Any, longest_text: int) -> int:
    """Steps a parsed pattern may take from one position (every way tried)."""
    return _sequence(items, longest_text, tail=True)[1]


def _sequence(items: Any, n: int, tail: bool = False) -> tuple[int, int]:
    """(ways, steps) of a parsed sequence: the ways multiply, each item's steps are paid
    once per way of the items before it. `tail`: nothing after the sequence can fail."""
    ways, steps = 1, 0
    last = len(items) - 1
    for index, item in enumerate(items):
        item_ways, item_steps = _item(item, n, tail and index == last)
        steps += ways * item_steps
        ways *= item_ways
    return ways, steps


def _item(item: tuple[Any, Any], n: int, tail: bool) -> tuple[int, int]:
    op, av = item
    if op in _REPEATS:
        low, high, body = av
        body_ways, body_steps = _sequence(body, n)
        if body_ways > 1 or _has_repeat(body):
            raise PatternTooCostly(_NESTED)
        if not _single_step(body):  # re's general repeat: no fast one-character loop
            body_steps *= GENERAL_REPEAT_WEIGHT
        top = n if high == sre.MAXREPEAT else min(high, n)
        if tail:
            # last in the match: it fails only short of `low` (a greedy one also tries its
            # body once more, and fails), and once it matches nothing is retried; findall
            # goes on after what it took, so that is paid once a text
            tries = min(low, top) + (0 if op is sre.MIN_REPEAT else 1)
            return 1, max(1, tries * body_steps)
        return max(1, top - min(low, top) + 1), max(1, top * body_steps)
    if op is sre.BRANCH:
        alternatives = [_sequence(branch, n, tail) for branch in av[1]]
        ways = sum(w for w, _ in alternatives)
        return ways, sum(s for _, s in alternatives) + BRANCH_WEIGHT * len(alternatives)
    if op is sre.SUBPATTERN:
        return _sequence(av[-1], n, tail)
    if op in _ATOMIC:  # lookarounds and atomic groups: tried in full, matched one way
        body = av if op not in (sre.ASSERT, sre.ASSERT_NOT) else av[1]
        return 1, max(1, _sequence(body, n)[1])
    if op in _BACKREFERENCES:
        raise PatternTooCostly("uses a back-reference (its matching can be exponential)")
    return 1, 1  # one character, a class, an anchor


def _single_step(body: Any) -> bool:
    """One character, class or category: what re repeats in its fast loop."""
    return len(body) == 1 and body[0][0] in _ONE_CHARACTER


def _inner(op: Any, av: Any) -> list[Any]:
    """The sequences an item holds (none for a character or an anchor)."""
    if op in _REPEATS:
        return [av[2]]
    if op is sre.BRANCH:
        return list(av[1])
    if op is sre.SUBPATTERN:
        return [av[-1]]
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return [av[1]]
    if op is getattr(sre, "ATOMIC_GROUP", None):
        return [av]
    return []


def _has_repeat(items: Any) -> bool:
    for op, av in items:
        if op in _REPEATS or op is sre.BRANCH:
            return True
        if any(_has_repeat(inner) for inner in _inner(op, av)):
            return True
    return False


def _ignores_case(items: Any) -> bool:
    """A scoped `(?i:...)` anywhere in the pattern."""
    for op, av in items:
        if op is sre.SUBPATTERN and av[1] & sre.SRE_FLAG_IGNORECASE:
            return True
        if any(_ignores_case(inner) for inner in _inner(op, av)):
            return True
    return False
