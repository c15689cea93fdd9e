"""Identity hardening e2e (issue 11): a password change, reset or disable ends the other sessions; guest
identities are rate-limited; a temporary password cannot stay; auth answers are never cached; request
headers have a stated size limit on every surface."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import httpx
import pytest

from tests.e2e.userpool_helpers import (
    assert_problem,
    assert_tokens,
    bearer,
    confirmed_user,
    latest_code,
    me,
    new_email,
    new_password,
    signin,
)
from tests.support.processes import Server, clean_env


def _credentials(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/identity/credentials", headers=bearer(token))


def _s3(server: Server, creds: dict[str, Any]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=f"{server.url}/s3",
        region_name="us-east-1",
        config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        aws_access_key_id=creds["accessKeyId"],
        aws_secret_access_key=creds["secretAccessKey"],
        aws_session_token=creds["sessionToken"],
    )


def _s3_error(call: Any) -> str:
    try:
        call()
    except botocore.exceptions.ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "no error"


def _two_sessions(client: httpx.Client, server: Server) -> tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A user signed in twice (say, phone and laptop), the second with S3 credentials that work."""
    user = confirmed_user(client, server)
    mine, other = user.signin(client), user.signin(client)
    r = _credentials(client, other["accessToken"])
    assert r.status_code == 200, r.text
    creds = r.json()
    key = f"private/{creds['identityId']}/before.txt"
    _s3(server, creds).put_object(Bucket="files", Key=key, Body=b"ok")
    return user, mine, other, creds


def _assert_session_over(client: httpx.Client, server: Server, other: dict[str, Any], creds: dict[str, Any]) -> None:
    assert_problem(client.post("/auth/refresh", json={"refreshToken": other["refreshToken"]}), 401, "NotAuthorized")
    assert_problem(_credentials(client, other["accessToken"]), 401, "NotAuthorized")
    assert_problem(me(client, other["accessToken"]), 401, "NotAuthorized")
    key = f"private/{creds['identityId']}/after.txt"
    assert _s3_error(lambda: _s3(server, creds).put_object(Bucket="files", Key=key, Body=b"x")) == "InvalidAccessKeyId"


# --- 1. a password change, reset or disable ends the other sessions -------------------------------


def test_change_password_ends_other_sessions_caller_goes_on_with_new_tokens(
    client: httpx.Client, server: Server
) -> None:
    user, mine, other, creds = _two_sessions(client, server)
    new = new_password()
    r = client.post(
        "/auth/change-password",
        headers=bearer(mine["accessToken"]),
        json={"oldPassword": user.password, "newPassword": new},
    )
    assert r.status_code == 200, r.text
    fresh = assert_tokens(r)
    assert fresh["changed"] is True
    _assert_session_over(client, server, other, creds)
    # The caller's own tokens from before the change die too; it goes on with the new ones.
    assert_problem(me(client, mine["accessToken"]), 401, "NotAuthorized")
    assert_problem(client.post("/auth/refresh", json={"refreshToken": mine["refreshToken"]}), 401, "NotAuthorized")
    assert me(client, fresh["accessToken"]).status_code == 200
    assert _credentials(client, fresh["accessToken"]).status_code == 200
    refreshed = assert_tokens(client.post("/auth/refresh", json={"refreshToken": fresh["refreshToken"]}))
    assert me(client, refreshed["accessToken"]).status_code == 200
    assert_problem(signin(client, user.email, user.password), 401, "NotAuthorized")
    assert_tokens(signin(client, user.email, new))


def test_reset_password_ends_every_session_and_its_credentials(client: httpx.Client, server: Server) -> None:
    user, _, other, creds = _two_sessions(client, server)
    assert client.post("/auth/forgot-password", json={"email": user.email}).status_code == 200
    new = new_password()
    body = {"email": user.email, "code": latest_code(server, user.email), "newPassword": new}
    assert client.post("/auth/reset-password", json=body).status_code == 200
    _assert_session_over(client, server, other, creds)
    assert_tokens(signin(client, user.email, new))


def test_user_disable_ends_every_session_and_its_credentials(client: httpx.Client, server: Server) -> None:
    user, _, other, creds = _two_sessions(client, server)
    server.cli("user", "disable", user.email)
    # The CLI is another process: /auth/* and /identity/credentials read the database at once.
    _assert_session_over(client, server, other, creds)
    server.cli("user", "enable", user.email)
    # Enabling again does not bring the old sessions back.
    assert_problem(client.post("/auth/refresh", json={"refreshToken": other["refreshToken"]}), 401, "NotAuthorized")
    assert_tokens(signin(client, user.email, user.password))


# --- 3. a temporary password cannot become the permanent one --------------------------------------


def test_new_password_challenge_refuses_temporary_password_then_accepts_another(
    client: httpx.Client, server: Server
) -> None:
    email, temporary = new_email("temp"), new_password()
    server.cli("user", "create", email, "--password", temporary, "--temporary")
    session = signin(client, email, temporary).json()["session"]
    same = client.post("/auth/challenge", json={"session": session, "newPassword": temporary})
    assert "temporary" in assert_problem(same, 400, "InvalidPassword")["detail"]
    new = new_password()
    tokens = assert_tokens(client.post("/auth/challenge", json={"session": session, "newPassword": new}))
    assert me(client, tokens["accessToken"]).status_code == 200
    assert_problem(signin(client, email, temporary), 401, "NotAuthorized")


# --- 4. auth answers are never cached -------------------------------------------------------------


def _assert_no_store(r: httpx.Response) -> None:
    assert r.status_code in (200, 201), r.text
    assert r.headers["cache-control"] == "no-store", r.headers
    assert r.headers["pragma"] == "no-cache", r.headers


def test_auth_and_identity_answers_carry_no_store(client: httpx.Client, server: Server) -> None:
    email, temporary = new_email("cache"), new_password()
    server.cli("user", "create", email, "--password", temporary, "--temporary")
    challenged = signin(client, email, temporary)
    _assert_no_store(challenged)
    answered = client.post(
        "/auth/challenge", json={"session": challenged.json()["session"], "newPassword": new_password()}
    )
    _assert_no_store(answered)
    tokens = confirmed_user(client, server).signin(client)
    _assert_no_store(signin(client, *_user_of(client, server)))
    _assert_no_store(client.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]}))
    _assert_no_store(me(client, tokens["accessToken"]))
    _assert_no_store(client.get("/identity/me", headers=bearer(tokens["accessToken"])))
    _assert_no_store(_credentials(client, tokens["accessToken"]))
    guest = client.post("/identity/guest")
    _assert_no_store(guest)
    _assert_no_store(client.get("/identity/me", headers=bearer(guest.json()["token"])))


def _user_of(client: httpx.Client, server: Server) -> tuple[str, str]:
    user = confirmed_user(client, server)
    return user.email, user.password


# --- 5. request header size is a stated limit -----------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/me", "/identity/guest", "/s3/files/public/x.txt", "/cdn/public/x.jpg"])
def test_header_over_16_kib_answered_431_before_any_work(client: httpx.Client, path: str) -> None:
    big = {"X-Padding": "a" * (17 * 1024)}
    r = client.request("POST" if path == "/identity/guest" else "GET", path, headers=big)
    assert r.status_code == 431, r.text
    if path.startswith("/s3"):
        assert r.headers["content-type"].startswith("application/xml")
        assert "<Code>RequestHeaderSectionTooLarge</Code>" in r.text
    else:
        assert_problem(r, 431, "RequestHeaderFieldsTooLarge")
    # Under the limit the same call goes on to its ordinary answer.
    small = client.request("POST" if path == "/identity/guest" else "GET", path, headers={"X-Padding": "a" * 8000})
    assert small.status_code != 431


# --- 2. guest identities are rate-limited (last: it spends this address's guest budget) -----------


@pytest.mark.embedded(
    "spends the address's guest budget at the default rate; in the cluster's one database the later "
    "modules would meet it (the cluster raises identity.guest_rate_per_minute)"
)
def test_guest_100_rapid_requests_meet_429_with_retry_after(client: httpx.Client) -> None:
    answers = [client.post("/identity/guest") for _ in range(100)]
    created = [r for r in answers if r.status_code == 201]
    limited = [r for r in answers if r.status_code == 429]
    assert len(created) + len(limited) == 100
    assert limited, "no 429 in 100 rapid guest requests"
    assert len(created) <= 15  # the burst (10), and what refills while the loop runs
    body = assert_problem(limited[0], 429, "TooManyRequests")
    assert body["status"] == 429
    retry_after = int(limited[0].headers["retry-after"])
    assert 1 <= retry_after <= 60


@pytest.mark.embedded("spends the address's guest budget (after the test above, which needs it whole)")
def test_guest_forged_x_forwarded_for_ignored_without_trusted_proxies(client: httpx.Client) -> None:
    # No server.trusted_proxies (the default): a new forged address on every request still draws
    # on the one budget of the socket address, so the header cannot dodge the limit.
    answers = [client.post("/identity/guest", headers={"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(20)]
    assert any(r.status_code == 429 for r in answers), [r.status_code for r in answers]


GUEST_BURST = 2


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that trusts loopback as its reverse proxy, with a small guest budget (2, then 1 a minute)."""
    env = clean_env(
        {
            "UPDOWN_SERVER__TRUSTED_PROXIES": '["127.0.0.1/32", "::1/128"]',
            "UPDOWN_IDENTITY__GUEST_BURST": str(GUEST_BURST),
            "UPDOWN_IDENTITY__GUEST_RATE_PER_MINUTE": "1",
        }
    )
    with Server(data_dir=tmp_path_factory.mktemp("proxied") / "data", env=env) as srv:
        yield srv


def test_guest_behind_trusted_proxy_each_forwarded_address_has_its_own_bucket(proxied: Server) -> None:
    def guest(forwarded_for: str) -> int:
        return httpx.post(f"{proxied.url}/identity/guest", headers={"X-Forwarded-For": forwarded_for}).status_code

    assert [guest("203.0.113.1") for _ in range(GUEST_BURST + 1)] == [201] * GUEST_BURST + [429]
    # Another client behind the proxy has a bucket of its own...
    assert [guest("203.0.113.2") for _ in range(GUEST_BURST)] == [201] * GUEST_BURST
    # ...and what a client writes left of the address the proxy appended never wins.
    assert guest("192.0.2.77, 203.0.113.1") == 429
    assert guest("192.0.2.77, 203.0.113.2") == 429
    # Trusted hops on the right are skipped: the client is the first untrusted one from the right.
    assert guest("203.0.113.1, 192.0.2.78, 127.0.0.1") == 201
