"""core.codes: code generation, binding to user and purpose, and the single-use/expiry/tries machine."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from updown.clock import FrozenClock
from updown.core import codes
from updown.core.codes import CodeState
from updown.errors import CodeMismatch, ConfigError, ExpiredCode

SECRET = b"s" * 32
USER = "user-1"


def fresh(clock: FrozenClock, purpose: codes.Purpose = "confirm", code: str = "123456") -> CodeState:
    return codes.issue(code, user_id=USER, purpose=purpose, secret=SECRET, now=clock.now())


def attempt(state: CodeState, code: str, clock: FrozenClock, purpose: str = "confirm") -> codes.CodeCheck:
    return codes.check(state, code, clock.now(), user_id=USER, purpose=purpose, secret=SECRET)


def test_new_code_six_digits_by_default() -> None:
    seen = {codes.new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in seen)
    assert len(seen) > 190  # random, not a counter


def test_new_code_zero_padded_and_sized() -> None:
    assert all(len(codes.new_code(8)) == 8 for _ in range(50))
    for bad in (5, 11):
        with pytest.raises(ConfigError):
            codes.new_code(bad)


def test_hash_code_binds_user_purpose_and_secret() -> None:
    base = codes.hash_code("123456", user_id=USER, purpose="confirm", secret=SECRET)
    assert len(base) == 64
    assert "123456" not in base
    assert base == codes.hash_code("123456", user_id=USER, purpose="confirm", secret=SECRET)
    assert base != codes.hash_code("123456", user_id="user-2", purpose="confirm", secret=SECRET)
    assert base != codes.hash_code("123456", user_id=USER, purpose="reset", secret=SECRET)
    assert base != codes.hash_code("123456", user_id=USER, purpose="confirm", secret=b"t" * 32)
    assert base != codes.hash_code("123457", user_id=USER, purpose="confirm", secret=SECRET)


def test_hash_code_fields_are_unambiguous() -> None:
    # Naive concatenation would make these two equal.
    a = codes.hash_code("123456", user_id="u1", purpose="confirm", secret=SECRET)
    b = codes.hash_code("123456", user_id="", purpose="confirmu1", secret=SECRET)
    assert a != b


def test_hash_code_short_secret_refused() -> None:
    with pytest.raises(ConfigError):
        codes.hash_code("123456", user_id=USER, purpose="confirm", secret=b"short")


def test_hashes_equal() -> None:
    assert codes.hashes_equal("abc", "abc")
    assert not codes.hashes_equal("abc", "abd")
    assert not codes.hashes_equal("abc", "abcd")


def test_check_right_code_succeeds_once() -> None:
    clock = FrozenClock()
    state = fresh(clock)
    ok, state, error = attempt(state, "123456", clock)
    assert (ok, error, state.used) == (True, None, True)
    ok, state2, error = attempt(state, "123456", clock)
    assert (ok, error) == (False, ExpiredCode)
    assert state2 == state


def test_check_wrong_code_costs_a_try() -> None:
    clock = FrozenClock()
    state = fresh(clock)
    ok, state, error = attempt(state, "654321", clock)
    assert (ok, error, state.tries_left, state.used) == (False, CodeMismatch, 4, False)
    ok, state, error = attempt(state, "123456", clock)
    assert ok


def test_check_dies_after_five_wrong_tries() -> None:
    clock = FrozenClock()
    state = fresh(clock)
    for left in (4, 3, 2, 1, 0):
        ok, state, error = attempt(state, "000000", clock)
        assert (ok, error, state.tries_left) == (False, CodeMismatch, left)
    ok, after, error = attempt(state, "123456", clock)
    assert (ok, error) == (False, ExpiredCode)
    assert after == state


@pytest.mark.parametrize(("purpose", "ttl"), [("confirm", 24 * 3600), ("reset", 3600)])
def test_check_expires_at_purpose_lifetime(purpose: codes.Purpose, ttl: int) -> None:
    clock = FrozenClock()
    state = fresh(clock, purpose)
    clock.advance(ttl - 1)
    assert attempt(replace(state), "123456", clock, purpose).ok
    clock.advance(1)
    ok, after, error = attempt(state, "123456", clock, purpose)
    assert (ok, error, after) == (False, ExpiredCode, state)


def test_issue_ttl_capped_per_purpose() -> None:
    clock = FrozenClock()
    short = codes.issue("123456", user_id=USER, purpose="reset", secret=SECRET, now=clock.now(), ttl=600)
    assert short.expires_at == clock.now() + 600
    with pytest.raises(ConfigError):
        codes.issue("123456", user_id=USER, purpose="reset", secret=SECRET, now=clock.now(), ttl=3601)
    with pytest.raises(ConfigError):
        codes.issue("123456", user_id=USER, purpose="confirm", secret=SECRET, now=clock.now(), ttl=0)
    with pytest.raises(ConfigError):
        codes.issue("123456", user_id=USER, purpose="mfa", secret=SECRET, now=clock.now())  # type: ignore[arg-type]


def test_check_wrong_purpose_is_a_mismatch() -> None:
    clock = FrozenClock()
    state = fresh(clock, "confirm")
    ok, state, error = attempt(state, "123456", clock, purpose="reset")
    assert (ok, error, state.tries_left) == (False, CodeMismatch, 4)


@pytest.mark.parametrize("code", ["12345", "12345a", "１２３４５６", "²²²²²²", " 123456", "12345678901", ""])
def test_check_malformed_code_is_a_mismatch(code: str) -> None:
    clock = FrozenClock()
    ok, state, error = attempt(fresh(clock), code, clock)
    assert (ok, error, state.tries_left) == (False, CodeMismatch, 4)


@given(
    code=st.from_regex(r"\A[0-9]{6,10}\Z"),
    user_a=st.text(max_size=20),
    user_b=st.text(max_size=20),
    purposes=st.permutations(codes.PURPOSES),
)
def test_check_code_never_crosses_user_or_purpose(
    code: str, user_a: str, user_b: str, purposes: list[codes.Purpose]
) -> None:
    a, b = purposes
    state = codes.issue(code, user_id=user_a, purpose=a, secret=SECRET, now=0)
    # The same code for the other purpose, or for another user, never validates.
    assert not codes.check(state, code, 1, user_id=user_a, purpose=b, secret=SECRET).ok
    other = codes.issue(code, user_id=user_a, purpose=b, secret=SECRET, now=0)
    assert not codes.check(replace(other, purpose=a), code, 1, user_id=user_a, purpose=a, secret=SECRET).ok
    if user_b != user_a:
        assert not codes.check(state, code, 1, user_id=user_b, purpose=a, secret=SECRET).ok
    assert codes.check(state, code, 1, user_id=user_a, purpose=a, secret=SECRET).ok


@given(st.lists(st.from_regex(r"\A[0-9]{6}\Z"), max_size=12))
def test_check_tries_never_exceed_five(guesses: list[str]) -> None:
    state = codes.issue("424242", user_id=USER, purpose="reset", secret=SECRET, now=0)
    for wrong, guess in enumerate(guesses):
        ok, state, _ = codes.check(state, guess, 1, user_id=USER, purpose="reset", secret=SECRET)
        if ok:
            assert guess == "424242"
            assert wrong < codes.MAX_TRIES
            break
    assert state.tries_left >= 0
