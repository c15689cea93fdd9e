"""Identity pool e2e: guest identities, one stable identity per user, roles, and short-lived credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import httpx

from tests.e2e.userpool_helpers import (
    IDENTITY_RE,
    assert_problem,
    bearer,
    confirmed_user,
    me,
)
from tests.support.processes import Server

CREDENTIAL_KEYS = {"accessKeyId", "secretAccessKey", "sessionToken", "expiration", "identityId"}


def _guest(client: httpx.Client) -> dict[str, Any]:
    r = client.post("/identity/guest")
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _identity_me(client: httpx.Client, token: str) -> dict[str, Any]:
    r = client.get("/identity/me", headers=bearer(token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _credentials(client: httpx.Client, token: str) -> dict[str, Any]:
    r = client.post("/identity/credentials", headers=bearer(token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == CREDENTIAL_KEYS
    for name in CREDENTIAL_KEYS:
        assert isinstance(body[name], str), name
        assert body[name], name
    expiration = datetime.fromisoformat(body["expiration"].replace("Z", "+00:00"))
    assert expiration.tzinfo is not None
    now = datetime.now(UTC)
    assert now < expiration <= now + timedelta(hours=1, seconds=5)
    return body


# --- guests ---------------------------------------------------------------------------------------


def test_identity_guest_issues_identity_and_token(client: httpx.Client) -> None:
    body = _guest(client)
    assert set(body) == {"identityId", "token", "expiresIn"}
    assert IDENTITY_RE.fullmatch(body["identityId"]), body["identityId"]
    assert isinstance(body["expiresIn"], int)
    assert 0 < body["expiresIn"] <= 3600
    assert body["token"].count(".") == 2


def test_identity_guest_each_call_distinct_identity(client: httpx.Client) -> None:
    ids = {_guest(client)["identityId"] for _ in range(3)}
    assert len(ids) == 3


def test_identity_me_guest_token_role_guest(client: httpx.Client) -> None:
    guest = _guest(client)
    assert _identity_me(client, guest["token"]) == {
        "identityId": guest["identityId"],
        "role": "guest",
        "roles": ["guest"],
    }


def test_identity_guest_token_refused_on_user_routes(client: httpx.Client) -> None:
    token = _guest(client)["token"]
    assert_problem(me(client, token), 401, "NotAuthorized")
    assert_problem(client.patch("/auth/me/attributes", json={"name": "x"}, headers=bearer(token)), 401, "NotAuthorized")
    body = {"oldPassword": "Wrong-password-42", "newPassword": "Qz7!another-pass"}
    assert_problem(client.post("/auth/change-password", json=body, headers=bearer(token)), 401, "NotAuthorized")
    assert_problem(client.post("/auth/refresh", json={"refreshToken": token}), 401, "NotAuthorized")


# --- users ----------------------------------------------------------------------------------------


def test_identity_me_user_authenticated_stable_across_signins(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    first, second = user.signin(client), user.signin(client)
    a, b = _identity_me(client, first["accessToken"]), _identity_me(client, second["accessToken"])
    assert a == b
    assert a["role"] == "authenticated"
    assert a["roles"] == ["authenticated"]
    assert IDENTITY_RE.fullmatch(a["identityId"])
    assert "@" not in a["identityId"]
    assert user.email.split("@")[0] not in a["identityId"]
    assert me(client, first["accessToken"]).json()["identityId"] == a["identityId"]
    # Refreshed tokens name the same identity.
    fresh = client.post("/auth/refresh", json={"refreshToken": first["refreshToken"]}).json()
    assert _identity_me(client, fresh["accessToken"])["identityId"] == a["identityId"]


def test_identity_users_and_guests_distinct_ids(client: httpx.Client, server: Server) -> None:
    one, two = confirmed_user(client, server), confirmed_user(client, server)
    ids = [
        _identity_me(client, one.signin(client)["accessToken"])["identityId"],
        _identity_me(client, two.signin(client)["accessToken"])["identityId"],
        _guest(client)["identityId"],
    ]
    assert len(set(ids)) == 3


def test_identity_me_without_or_with_bad_bearer_401(client: httpx.Client, server: Server) -> None:
    tokens = confirmed_user(client, server).signin(client)
    assert_problem(client.get("/identity/me"), 401, "NotAuthorized")
    assert_problem(client.get("/identity/me", headers=bearer("nope")), 401, "NotAuthorized")
    assert_problem(client.get("/identity/me", headers=bearer(tokens["idToken"])), 401, "NotAuthorized")
    assert_problem(client.get("/identity/me", headers=bearer(tokens["refreshToken"])), 401, "NotAuthorized")


def test_identity_me_after_signout_401(client: httpx.Client, server: Server) -> None:
    tokens = confirmed_user(client, server).signin(client)
    assert client.post("/auth/signout", json={}, headers=bearer(tokens["accessToken"])).status_code == 204
    assert_problem(client.get("/identity/me", headers=bearer(tokens["accessToken"])), 401, "NotAuthorized")
    assert_problem(client.post("/identity/credentials", headers=bearer(tokens["accessToken"])), 401, "NotAuthorized")


# --- credentials ----------------------------------------------------------------------------------


def test_identity_credentials_user_short_lived_bound_to_identity(client: httpx.Client, server: Server) -> None:
    tokens = confirmed_user(client, server).signin(client)
    identity = _identity_me(client, tokens["accessToken"])["identityId"]
    creds = _credentials(client, tokens["accessToken"])
    assert creds["identityId"] == identity
    again = _credentials(client, tokens["accessToken"])
    assert again["accessKeyId"] != creds["accessKeyId"]
    assert again["secretAccessKey"] != creds["secretAccessKey"]
    assert tokens["accessToken"] not in (creds["sessionToken"], creds["secretAccessKey"])


def test_identity_credentials_guest_bound_to_guest_identity(client: httpx.Client) -> None:
    guest = _guest(client)
    creds = _credentials(client, guest["token"])
    assert creds["identityId"] == guest["identityId"]


def test_identity_credentials_without_or_with_wrong_bearer_401(client: httpx.Client, server: Server) -> None:
    tokens = confirmed_user(client, server).signin(client)
    assert_problem(client.post("/identity/credentials"), 401, "NotAuthorized")
    assert_problem(client.post("/identity/credentials", headers=bearer(tokens["idToken"])), 401, "NotAuthorized")
    assert_problem(client.post("/identity/credentials", headers=bearer(tokens["refreshToken"])), 401, "NotAuthorized")


def _s3(server: Server, creds: dict[str, Any], *, secret: str | None = None, session: str | None = None) -> Any:
    config = botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    return boto3.client(
        "s3",
        endpoint_url=f"{server.url}/s3",
        region_name="us-east-1",
        config=config,
        aws_access_key_id=creds["accessKeyId"],
        aws_secret_access_key=secret or creds["secretAccessKey"],
        aws_session_token=session or creds["sessionToken"],
    )


def _s3_error(call: Any) -> str:
    try:
        call()
    except botocore.exceptions.ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "no error"


def test_identity_credentials_sign_data_plane_requests_with_caller_policies(
    client: httpx.Client, server: Server
) -> None:
    tokens = confirmed_user(client, server).signin(client)
    creds = _credentials(client, tokens["accessToken"])
    own = f"private/{creds['identityId']}/note.txt"
    s3 = _s3(server, creds)
    s3.put_object(Bucket="files", Key=own, Body=b"mine", ContentType="text/plain")
    assert s3.get_object(Bucket="files", Key=own)["Body"].read() == b"mine"
    # The caller's policies apply: another identity's private files stay shut.
    other = _identity_me(client, confirmed_user(client, server).signin(client)["accessToken"])["identityId"]
    assert _s3_error(lambda: s3.put_object(Bucket="files", Key=f"private/{other}/x.txt", Body=b"x")) == "AccessDenied"
    # A guest's credentials read public/ but cannot write to a user's files.
    guest = _s3(server, _credentials(client, _guest(client)["token"]))
    assert _s3_error(lambda: guest.put_object(Bucket="files", Key=own, Body=b"x")) == "AccessDenied"
    # Wrong secret or session token: refused before any policy.
    bad_secret = _s3(server, creds, secret="x" * 40)
    assert _s3_error(lambda: bad_secret.get_object(Bucket="files", Key=own)) == "SignatureDoesNotMatch"
    bad_session = _s3(server, creds, session="forged")
    assert _s3_error(lambda: bad_session.get_object(Bucket="files", Key=own)) in (
        "InvalidAccessKeyId",
        "InvalidToken",
        "AccessDenied",
    )
