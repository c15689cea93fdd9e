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


def _signin_from(client: httpx.Client, forwarded_for: str, email: str, password: str) -> httpx.Response:
    return client.post(
        "/auth/signin", json={"email": email, "password": password}, headers={"X-Forwarded-For": forwarded_for}
    )


def _spray_until_throttled(client: httpx.Client, forwarded_for: str | None) -> int:
    """Failed sign-ins, one per fresh account, until 429; how many it took (at most PER_ADDRESS + 1).
    ``forwarded_for`` None: a different forged X-Forwarded-For on each try."""
    for attempt in range(1, PER_ADDRESS + 2):
        claimed = forwarded_for or f"198.51.100.{attempt}"
        r = _signin_from(client, claimed, new_email("spray"), "Wrong-password-42")
        if r.status_code == 429:
            _assert_throttled(r)
            return attempt
        assert_problem(r, 401, "NotAuthorized")
    raise AssertionError(f"no 429 after {PER_ADDRESS + 1} failed sign-ins from one address")


def test_signin_forged_x_forwarded_for_ignored_without_trusted_proxies(client: httpx.Client) -> None:
    # No server.trusted_proxies (the default): the header names no one, so a client that writes a
    # new address into it each time still spends the one budget of its socket address.
    assert _spray_until_throttled(client, None) <= PER_ADDRESS + 1
    _assert_throttled(_signin_from(client, "192.0.2.200", new_email("spray"), "Wrong-password-42"))


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that trusts loopback as its reverse proxy (the tests connect from 127.0.0.1)."""
    root: Path = tmp_path_factory.mktemp("throttle-proxied")
    env = clean_env(
        {
            "UPDOWN_AUTH__MAX_FAILED_SIGNINS": str(PER_ACCOUNT),
            "UPDOWN_AUTH__MAX_FAILED_SIGNINS_PER_ADDRESS": str(PER_ADDRESS),
            "UPDOWN_SERVER__TRUSTED_PROXIES": "127.0.0.0/8,::1",
        }
    )
    with Server(data_dir=root / "data", env=env) as srv:
        yield srv


def test_signin_behind_trusted_proxy_each_forwarded_address_has_its_own_budget(proxied: Server) -> None:
    with httpx.Client(base_url=proxied.url, timeout=30) as client:
        (user,) = confirmed_users(client, proxied, 1)
        assert _spray_until_throttled(client, "203.0.113.7") == PER_ADDRESS + 1
        # Another client behind the same proxy is not throttled by the first one's failures...
        assert_tokens(_signin_from(client, "203.0.113.8", user.email, user.password))
        # ...while the first stays throttled, also when it forges an address to the left of the
        # one the proxy appended (the rightmost untrusted entry is the client).
        _assert_throttled(_signin_from(client, "203.0.113.7", user.email, user.password))
        _assert_throttled(_signin_from(client, "203.0.113.8, 203.0.113.7", user.email, user.password))
        # A proxy chain: trusted hops on the right are skipped.
        assert_tokens(_signin_from(client, "203.0.113.7, 203.0.113.9, 127.0.0.1", user.email, user.password))
        # A malformed entry on the way: the chain is not believed, the peer (127.0.0.1) counts.
        assert_tokens(_signin_from(client, "203.0.113.7, not-an-address", user.email, user.password))
