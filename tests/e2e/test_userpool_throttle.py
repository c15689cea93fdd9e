"""User pool e2e: failed sign-ins are rate limited per account and per client address (429 + Retry-After),
alike for known and unknown emails; on a server with small limits so the tests stay quick."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.userpool_helpers import (
    assert_problem,
    assert_tokens,
    confirmed_users,
    new_email,
    signin,
)
from tests.support.processes import Server, clean_env

PER_ACCOUNT = 3
PER_ADDRESS = 10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("throttle")
    env = clean_env(
        {
            "UPDOWN_AUTH__MAX_FAILED_SIGNINS": str(PER_ACCOUNT),
            "UPDOWN_AUTH__MAX_FAILED_SIGNINS_PER_ADDRESS": str(PER_ADDRESS),
        }
    )
    srv = Server(data_dir=root / "data", env=env).start()
    try:
        yield srv
    finally:
        srv.stop()


def _assert_throttled(r: httpx.Response) -> None:
    assert_problem(r, 429, "TooManyRequests")
    retry_after = int(r.headers["Retry-After"])
    assert 0 < retry_after <= 900


def test_signin_failures_per_account_then_429_even_with_right_password(client: httpx.Client, server: Server) -> None:
    user, bystander = confirmed_users(client, server, 2)
    for _ in range(PER_ACCOUNT):
        assert_problem(signin(client, user.email, "Wrong-password-42"), 401, "NotAuthorized")
    _assert_throttled(signin(client, user.email, user.password))
    _assert_throttled(signin(client, user.email, "Wrong-password-42"))
    # The limit is per account: another user from the same address still signs in.
    assert_tokens(signin(client, bystander.email, bystander.password))


def test_signin_failures_unknown_email_throttled_alike(client: httpx.Client) -> None:
    # If only real accounts were locked, a 429 would tell which emails exist.
    ghost = new_email("ghost")
    for _ in range(PER_ACCOUNT):
        assert_problem(signin(client, ghost, "Wrong-password-42"), 401, "NotAuthorized")
    _assert_throttled(signin(client, ghost, "Wrong-password-42"))


def test_signin_failures_per_address_then_429_for_every_account(client: httpx.Client, server: Server) -> None:
    (user,) = confirmed_users(client, server, 1)
    throttled_after = None
    for attempt in range(1, PER_ADDRESS + 2):
        r = signin(client, new_email("spray"), "Wrong-password-42")  # password spraying: one try per account
        if r.status_code == 429:
            throttled_after = attempt
            _assert_throttled(r)
            break
        assert_problem(r, 401, "NotAuthorized")
    assert throttled_after is not None, "no 429 after more failed sign-ins than the per-address limit"
    # Even a right password from this address waits now.
    _assert_throttled(signin(client, user.email, user.password))
