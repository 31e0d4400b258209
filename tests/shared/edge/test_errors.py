"""The exception table: what the state and registry packages registered, registration rules,
the MRO lookup and the one Retry-After policy."""

from __future__ import annotations

import pytest
from starlette.requests import ClientDisconnect

from shared.edge.errors import api_error_of, as_api_error, register, rule_of
from shared.errors import ApiError
from shared.registry import (
    AliasConflict,
    ChecksumMismatch,
    RegistryError,
    RegistryUnavailable,
    VersionExists,
    VersionNotFound,
)
from shared.state import StateUnavailable


@pytest.mark.parametrize(
    ("exc", "status", "code", "retry_after"),
    [
        (StateUnavailable("down"), 503, "state_unavailable", "1"),
        (RegistryUnavailable("down"), 503, "registry_unavailable", "2"),
        (VersionExists("v1"), 409, "registry_conflict", None),
        (AliasConflict("moved"), 409, "registry_conflict", None),
        (VersionNotFound("v9"), 404, "version_not_found", None),
        (ChecksumMismatch("v1 sha"), 409, "checksum_mismatch", None),
        (ClientDisconnect(), 408, "request_timeout", None),
    ],
)
def test_the_registered_exceptions(
    exc: Exception, status: int, code: str, retry_after: str | None
) -> None:
    error = api_error_of(exc)
    assert error is not None
    assert (error.status, error.code, error.headers.get("Retry-After")) == (
        status,
        code,
        retry_after,
    )


def test_a_message_may_name_the_exception() -> None:
    error = api_error_of(ChecksumMismatch("v3 {not a field}"))
    assert error is not None and error.message.endswith("corrupt: v3 {not a field}")


def test_an_api_error_is_its_own_answer_and_the_unexpected_has_none() -> None:
    sent = ApiError(418, "teapot", "short and stout")
    assert api_error_of(sent) is sent
    assert api_error_of(RuntimeError("boom")) is None
    assert api_error_of(RegistryError("a base class nobody registered")) is None


def test_as_api_error_answers_the_unexpected_with_a_bare_500() -> None:
    error = as_api_error(RuntimeError("secret detail"), {"method": "GET", "path": "/x"})
    assert (error.status, error.code) == (500, "internal_error")
    assert "secret" not in error.message


class _Down(Exception):
    pass


class _DownHard(_Down):
    pass


class _DownSoft(_Down):
    pass


def test_a_package_registers_its_own_and_subclasses_inherit_the_rule() -> None:
    register(_Down, 503, "thing_unavailable", "the thing is down; retry", retry_after=3)
    register(_DownSoft, 409, "thing_busy", "the thing is busy")
    register(_Down, 503, "thing_unavailable", "the thing is down; retry", retry_after=3)  # again
    hard, soft = api_error_of(_DownHard()), api_error_of(_DownSoft())
    assert hard is not None and (hard.status, hard.code) == (503, "thing_unavailable")
    assert hard.headers == {"Retry-After": "3"}
    assert soft is not None and (soft.status, soft.code, soft.headers) == (409, "thing_busy", {})
    rule = rule_of(_DownHard)
    assert rule is not None and rule.code == "thing_unavailable"


def test_one_type_has_one_rule() -> None:
    class Twice(Exception):
        pass

    register(Twice, 409, "first", "first")
    with pytest.raises(ValueError, match="already answered as first"):
        register(Twice, 409, "second", "second")


def test_one_retry_after_policy_a_503_and_only_a_503_says_when() -> None:
    class Down(Exception):
        pass

    with pytest.raises(ValueError, match="Retry-After"):
        register(Down, 503, "down", "down")
    with pytest.raises(ValueError, match="Retry-After"):
        register(Down, 409, "busy", "busy", retry_after=1)
    assert rule_of(Down) is None
