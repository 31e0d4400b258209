"""The state store's circuit breaker (shared/state/breaker.py), on its own clock: while open
at most one call (the probe) reaches the store per outcome, never before the cool-down."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.state.breaker import CircuitBreaker

COOLDOWN = 1.0
STEPS = st.lists(
    st.one_of(
        st.just(("admit", 0.0)),
        st.just(("failed", 0.0)),
        st.just(("succeeded", 0.0)),
        st.just(("abandoned", 0.0)),
        st.tuples(st.just("tick"), st.floats(0.0, 2.0)),
    ),
    max_size=60,
)


@given(STEPS)
def test_open_admits_one_probe_per_outcome_after_the_cooldown(
    steps: list[tuple[str, float]],
) -> None:
    now = [0.0]
    breaker = CircuitBreaker(COOLDOWN, clock=lambda: now[0])
    opened_at: float | None = None
    admitted_since_outcome = 0
    for step, dt in steps:
        if step == "tick":
            now[0] += dt
        elif step == "admit":
            admitted = breaker.admit()
            if opened_at is None:
                assert admitted  # closed: every call goes to the store
            elif admitted:
                assert now[0] >= opened_at + COOLDOWN  # never a probe before the cool-down
                admitted_since_outcome += 1
                assert admitted_since_outcome == 1  # one probe at a time
        elif step == "failed":
            breaker.failed()
            opened_at, admitted_since_outcome = now[0], 0
        elif step == "succeeded":
            breaker.succeeded()
            opened_at, admitted_since_outcome = None, 0
        else:
            breaker.abandoned()
            admitted_since_outcome = 0
        assert breaker.is_open == (opened_at is not None)


def test_refusals_are_counted_and_zero_cooldown_is_off() -> None:
    now = [0.0]
    breaker = CircuitBreaker(COOLDOWN, clock=lambda: now[0])
    breaker.failed()
    assert [breaker.admit() for _ in range(3)] == [False, False, False]
    assert breaker.refused == 3
    now[0] += COOLDOWN
    assert [breaker.admit(), breaker.admit()] == [True, False]  # the probe, then fail fast
    breaker.succeeded()
    assert breaker.admit() and breaker.admit()

    off = CircuitBreaker(0.0)
    off.failed()
    assert off.admit() and off.admit() and off.refused == 0
