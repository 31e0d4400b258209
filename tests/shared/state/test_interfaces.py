"""The narrow state interfaces (shared/state/interfaces.py): both backends satisfy every one,
with the very signatures the Protocols declare, and the leaves split StateStore exactly."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.state import MemoryStateStore, RedisStateStore, StateStore
from shared.state.interfaces import COMPOSITES, LEAVES

ROOT = Path(__file__).resolve().parents[3]
# the composition root and the backends' own package may name the whole store; nothing else
WHOLE_STORE_ALLOWED = {"shared/runtime.py"}


def methods(protocol: type) -> set[str]:
    """The methods a Protocol declares, its bases' included."""
    return {
        name
        for cls in protocol.__mro__
        if cls not in (object,) and getattr(cls, "_is_protocol", False)
        for name, value in vars(cls).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }


def own_methods(protocol: type) -> set[str]:
    return {
        name
        for name, value in vars(protocol).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryStateStore()
        return
    redis_store = RedisStateStore(request.getfixturevalue("redis_url"))
    await redis_store.ping()  # a live store on the test Valkey, not only a class
    yield redis_store
    await redis_store.close()


@pytest.mark.parametrize("protocol", [*LEAVES, *COMPOSITES, StateStore], ids=lambda p: p.__name__)
async def test_both_backends_satisfy_every_interface(store: StateStore, protocol: type) -> None:
    assert isinstance(store, protocol)
    for name in sorted(methods(protocol)):
        implemented = getattr(type(store), name)
        # async as declared: every store operation is, a registration (ride_along) is not
        is_async = inspect.iscoroutinefunction(getattr(protocol, name))
        assert inspect.iscoroutinefunction(implemented) == is_async, name
        assert is_async or name == "ride_along", name
        declared = inspect.signature(getattr(protocol, name))
        assert inspect.signature(implemented) == declared, f"{type(store).__name__}.{name}"


def test_leaves_split_the_state_store_exactly() -> None:
    seen: dict[str, str] = {}
    for leaf in LEAVES:
        for name in methods(leaf):
            assert name not in seen, f"{name} in both {seen.get(name)} and {leaf.__name__}"
            seen[name] = leaf.__name__
    assert set(seen) == methods(StateStore)
    assert own_methods(StateStore) == set()  # every method belongs to a narrow interface
    assert set(StateStore.__mro__) >= set(LEAVES)


def test_composites_only_combine_leaves() -> None:
    for composite in COMPOSITES:
        assert own_methods(composite) == set(), composite.__name__
        leaves = [base for base in composite.__bases__ if base in LEAVES]
        assert len(leaves) >= 2, composite.__name__
        assert methods(composite) == set().union(*(methods(leaf) for leaf in leaves))


@pytest.mark.parametrize("backend", [MemoryStateStore, RedisStateStore])
def test_backends_offer_nothing_outside_the_interfaces(backend: type) -> None:
    coroutines = {
        name
        for name, value in vars(backend).items()
        if inspect.iscoroutinefunction(value) and not name.startswith("_")
    }
    assert coroutines | {"ride_along"} == methods(StateStore)


def test_no_consumer_takes_the_whole_store() -> None:
    """Outside shared/state/ only the composition root names StateStore; every consumer is
    typed against the narrow interface(s) it uses."""
    offenders = []
    for folder in ("shared", "compat", "functions"):
        for path in (ROOT / folder).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith("shared/state/") or relative in WHOLE_STORE_ALLOWED:
                continue
            if re.search(r"\bStateStore\b", path.read_text()):
                offenders.append(relative)
    assert offenders == []
