"""User pool e2e: sign-in, refresh rotation and reuse detection, sign-out, password reset and change, /auth/me."""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx
import pytest

from tests.e2e.userpool_helpers import (
    IDENTITY_RE,
    INCORRECT,
    UUID_RE,
    assert_problem,
    assert_tokens,
    bearer,
    codes_for,
    confirmed_user,
    latest_code,
    me,
    new_email,
    new_password,
    outbox,
    signin,
)
from tests.support.processes import Server


def _refresh(client: httpx.Client, refresh_token: str) -> httpx.Response:
    return client.post("/auth/refresh", json={"refreshToken": refresh_token})


def _assert_live(client: httpx.Client, tokens: dict[str, Any]) -> None:
    assert me(client, tokens["accessToken"]).status_code == 200


def _assert_dead(client: httpx.Client, tokens: dict[str, Any]) -> None:
    """Neither the access token nor the refresh token of this session works any more."""
    assert_problem(me(client, tokens["accessToken"]), 401, "NotAuthorized")
    assert_problem(_refresh(client, tokens["refreshToken"]), 401, "NotAuthorized")


# --- sign-in --------------------------------------------------------------------------------------


def test_signin_confirmed_user_bearer_tokens(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    tokens = user.signin(client)
    assert tokens["accessToken"].count(".") == 2
    assert tokens["idToken"].count(".") == 2
    assert tokens["refreshToken"] not in (tokens["accessToken"], tokens["idToken"])
    _assert_live(client, tokens)


def test_signin_unknown_email_and_wrong_password_answer_alike(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    wrong = signin(client, user.email, user.password + "!")
    unknown = signin(client, new_email("ghost"), user.password)
    a = assert_problem(wrong, 401, "NotAuthorized")
    b = assert_problem(unknown, 401, "NotAuthorized")
    assert a == b
    assert a["detail"] == INCORRECT
    assert wrong.headers["content-type"] == unknown.headers["content-type"]


def test_signin_unknown_email_takes_as_long_as_wrong_password(client: httpx.Client, server: Server) -> None:
    # Dummy hashing for unknown emails: without it, an unknown email answers in a fraction of the time.
    user = confirmed_user(client, server)

    def timed(email: str) -> float:
        start = time.perf_counter()
        r = signin(client, email, "Wrong-password-42")
        elapsed = time.perf_counter() - start
        assert r.status_code == 401
        return elapsed

    known, unknown = [], []
    for _ in range(3):
        known.append(timed(user.email))
        unknown.append(timed(new_email("ghost")))
    assert statistics.median(unknown) > 0.5 * statistics.median(known), (known, unknown)


# --- refresh --------------------------------------------------------------------------------------


def test_refresh_rotates_old_refresh_token_dead(client: httpx.Client, server: Server) -> None:
    tokens = confirmed_user(client, server).signin(client)
    fresh = assert_tokens(_refresh(client, tokens["refreshToken"]))
    assert fresh["refreshToken"] != tokens["refreshToken"]
    assert fresh["accessToken"] != tokens["accessToken"]
    _assert_live(client, fresh)
    assert_problem(_refresh(client, tokens["refreshToken"]), 401, "NotAuthorized")


def test_refresh_reused_token_revokes_whole_family_only(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    first = user.signin(client)
    other = user.signin(client)  # another session of the same user
    second = assert_tokens(_refresh(client, first["refreshToken"]))
    third = assert_tokens(_refresh(client, second["refreshToken"]))
    # A stolen, already used token is presented: the whole family dies.
    assert_problem(_refresh(client, first["refreshToken"]), 401, "NotAuthorized")
    _assert_dead(client, third)
    assert_problem(me(client, second["accessToken"]), 401, "NotAuthorized")
    assert_problem(me(client, first["accessToken"]), 401, "NotAuthorized")
    # The user's other session is a different family and lives on.
    _assert_live(client, other)
    assert_tokens(_refresh(client, other["refreshToken"]))


def test_refresh_garbage_token_401(client: httpx.Client) -> None:
    for token in ("nope", "x" * 43, "a.b.c"):
        assert_problem(_refresh(client, token), 401, "NotAuthorized")


def test_refresh_access_token_as_refresh_token_401(client: httpx.Client, server: Server) -> None:
    tokens = confirmed_user(client, server).signin(client)
    assert_problem(_refresh(client, tokens["accessToken"]), 401, "NotAuthorized")
    assert_problem(_refresh(client, tokens["idToken"]), 401, "NotAuthorized")


# --- sign-out -------------------------------------------------------------------------------------


def test_signout_this_session_ends_it_only(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    one, two = user.signin(client), user.signin(client)
    r = client.post("/auth/signout", json={"refreshToken": one["refreshToken"]}, headers=bearer(one["accessToken"]))
    assert r.status_code == 204, r.text
    assert r.content == b""
    _assert_dead(client, one)
    _assert_live(client, two)
    assert_tokens(_refresh(client, two["refreshToken"]))


def test_signout_without_refresh_token_ends_bearer_session(client: httpx.Client, server: Server) -> None:
    tokens = confirmed_user(client, server).signin(client)
    r = client.post("/auth/signout", json={}, headers=bearer(tokens["accessToken"]))
    assert r.status_code == 204, r.text
    _assert_dead(client, tokens)


def test_signout_global_ends_every_session(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    one, two = user.signin(client), user.signin(client)
    r = client.post("/auth/signout", json={"global": True}, headers=bearer(one["accessToken"]))
    assert r.status_code == 204, r.text
    _assert_dead(client, one)
    _assert_dead(client, two)
    # Signing in again starts a new session.
    _assert_live(client, user.signin(client))


def test_signout_without_bearer_401(client: httpx.Client, server: Server) -> None:
    tokens = confirmed_user(client, server).signin(client)
    assert_problem(client.post("/auth/signout", json={"refreshToken": tokens["refreshToken"]}), 401, "NotAuthorized")
    _assert_live(client, tokens)


def test_signout_other_users_refresh_token_leaves_it_alive(client: httpx.Client, server: Server) -> None:
    mallory = confirmed_user(client, server).signin(client)
    alice = confirmed_user(client, server).signin(client)
    r = client.post(
        "/auth/signout", json={"refreshToken": alice["refreshToken"]}, headers=bearer(mallory["accessToken"])
    )
    assert r.status_code in (204, 400, 401, 403), r.text
    _assert_live(client, alice)
    assert_tokens(_refresh(client, alice["refreshToken"]))


# --- forgot / reset password ----------------------------------------------------------------------


def test_forgot_password_known_and_unknown_email_answer_alike(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    ghost = new_email("ghost")
    known = client.post("/auth/forgot-password", json={"email": user.email})
    unknown = client.post("/auth/forgot-password", json={"email": ghost})
    assert known.status_code == unknown.status_code == 200
    assert set(known.json()) == set(unknown.json()) == {"delivery"}
    assert set(known.json()["delivery"]) == set(unknown.json()["delivery"])
    assert known.json()["delivery"]["medium"] == unknown.json()["delivery"]["medium"] == "EMAIL"
    messages = outbox(server)
    assert codes_for(messages, ghost) == []
    assert len(codes_for(messages, user.email)) == 2  # sign-up and reset


def test_reset_password_revokes_sessions_new_password_works(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    session = user.signin(client)
    assert client.post("/auth/forgot-password", json={"email": user.email}).status_code == 200
    code = latest_code(server, user.email)
    new = new_password()
    wrong = str((int(code) + 1) % 10 ** len(code)).zfill(len(code))
    body = {"email": user.email, "code": wrong, "newPassword": new}
    assert_problem(client.post("/auth/reset-password", json=body), 400, "CodeMismatch")
    r = client.post("/auth/reset-password", json={**body, "code": code})
    assert r.status_code == 200, r.text
    _assert_dead(client, session)
    assert_problem(signin(client, user.email, user.password), 401, "NotAuthorized")
    assert_tokens(signin(client, user.email, new))
    # The code worked once.
    again = {"email": user.email, "code": code, "newPassword": new_password()}
    assert_problem(client.post("/auth/reset-password", json=again), 400, "ExpiredCode")


def test_reset_password_five_wrong_codes_right_code_then_expired(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    assert client.post("/auth/forgot-password", json={"email": user.email}).status_code == 200
    code = latest_code(server, user.email)
    wrong = str((int(code) + 1) % 10 ** len(code)).zfill(len(code))
    for _ in range(5):
        r = client.post(
            "/auth/reset-password", json={"email": user.email, "code": wrong, "newPassword": new_password()}
        )
        assert r.status_code in (400, 429), r.text
    r = client.post("/auth/reset-password", json={"email": user.email, "code": code, "newPassword": new_password()})
    assert_problem(r, 400, "ExpiredCode")
    assert_tokens(signin(client, user.email, user.password))  # the password did not change


def test_reset_password_confirm_code_not_accepted_for_reset(client: httpx.Client, server: Server) -> None:
    email, password = new_email(), new_password()
    assert client.post("/auth/signup", json={"email": email, "password": password}).status_code == 201
    code = latest_code(server, email)
    body = {"email": email, "code": code, "newPassword": new_password()}
    assert_problem(client.post("/auth/reset-password", json=body), 400, "CodeMismatch", "ExpiredCode")


def test_reset_password_unknown_email_refused_400(client: httpx.Client) -> None:
    body = {"email": new_email("ghost"), "code": "123456", "newPassword": new_password()}
    assert_problem(client.post("/auth/reset-password", json=body), 400, "CodeMismatch", "ExpiredCode")


# --- change password ------------------------------------------------------------------------------


def test_change_password_checks_old_and_policy_then_changes(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    tokens = user.signin(client)
    auth = bearer(tokens["accessToken"])
    new = new_password()
    r = client.post(
        "/auth/change-password", json={"oldPassword": "Wrong-password-42", "newPassword": new}, headers=auth
    )
    assert_problem(r, 401, "NotAuthorized")
    r = client.post(
        "/auth/change-password", json={"oldPassword": user.password, "newPassword": "password1234"}, headers=auth
    )
    assert_problem(r, 400, "InvalidPassword")
    r = client.post("/auth/change-password", json={"oldPassword": user.password, "newPassword": new}, headers=auth)
    assert r.status_code == 200, r.text
    assert_problem(signin(client, user.email, user.password), 401, "NotAuthorized")
    assert_tokens(signin(client, user.email, new))


def test_change_password_without_bearer_401(client: httpx.Client) -> None:
    body = {"oldPassword": "Wrong-password-42", "newPassword": new_password()}
    assert_problem(client.post("/auth/change-password", json=body), 401, "NotAuthorized")


def test_change_password_bad_body_400(client: httpx.Client, server: Server) -> None:
    tokens = confirmed_user(client, server).signin(client)
    bodies: list[Any] = [{}, {"oldPassword": 5, "newPassword": 5}, [], {"oldPassword": "x"}]
    for body in bodies:
        r = client.post("/auth/change-password", json=body, headers=bearer(tokens["accessToken"]))
        assert_problem(r, 400, "InvalidRequest")


# --- /auth/me and attributes ----------------------------------------------------------------------


def test_me_access_token_profile(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    r = me(client, user.signin(client)["accessToken"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"sub", "email", "emailVerified", "groups", "identityId", "attributes"}
    assert UUID_RE.fullmatch(body["sub"])
    assert body["email"] == user.email
    assert body["emailVerified"] is True
    assert body["groups"] == []
    assert IDENTITY_RE.fullmatch(body["identityId"])
    assert user.email.split("@")[0] not in body["identityId"]
    assert isinstance(body["attributes"], dict)


def test_me_without_bearer_401(client: httpx.Client) -> None:
    assert_problem(client.get("/auth/me"), 401, "NotAuthorized")
    assert_problem(client.get("/auth/me", headers={"Authorization": "Bearer"}), 401, "NotAuthorized")
    assert_problem(client.get("/auth/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "NotAuthorized")


def test_me_attributes_set_then_null_deletes(client: httpx.Client, server: Server) -> None:
    tokens = confirmed_user(client, server).signin(client)
    auth = bearer(tokens["accessToken"])
    changes = {"name": "Ada Lovelace", "picture": "protected/x/avatar.png", "custom:color": "teal"}
    r = client.patch("/auth/me/attributes", json=changes, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["attributes"] == changes
    assert me(client, tokens["accessToken"]).json()["attributes"] == changes
    r = client.patch("/auth/me/attributes", json={"name": None}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["attributes"] == {"picture": "protected/x/avatar.png", "custom:color": "teal"}
    assert me(client, tokens["accessToken"]).json()["attributes"] == r.json()["attributes"]


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": "00000000-0000-0000-0000-000000000000"},
        {"email": "someone-else@example.com"},
        {"email_verified": "true"},
        {"groups": "admin"},
        {"cognito:groups": "admin"},
        {"custom:role": "admin"},
        {"custom:groups": "admin"},
        {"name": "ok", "custom:role": "admin"},  # one bad name refuses the whole change
        {"name": 5},
        {"name": ["x"]},
    ],
)
def test_me_attributes_protected_or_bad_refused_nothing_changes(
    client: httpx.Client, server: Server, changes: dict[str, Any]
) -> None:
    tokens = confirmed_user(client, server).signin(client)
    before = me(client, tokens["accessToken"]).json()
    r = client.patch("/auth/me/attributes", json=changes, headers=bearer(tokens["accessToken"]))
    assert_problem(r, 400, "InvalidRequest")
    after = me(client, tokens["accessToken"]).json()
    assert after == before
    assert after["groups"] == []


def test_me_attributes_without_bearer_401(client: httpx.Client) -> None:
    assert_problem(client.patch("/auth/me/attributes", json={"name": "x"}), 401, "NotAuthorized")


def test_me_attributes_non_object_body_400(client: httpx.Client, server: Server) -> None:
    tokens = confirmed_user(client, server).signin(client)
    bodies: list[Any] = [[], "x", 5]
    for body in bodies:
        r = client.patch("/auth/me/attributes", json=body, headers=bearer(tokens["accessToken"]))
        assert_problem(r, 400, "InvalidRequest")
