"""User pool e2e: the admin CLI (create, temporary passwords, groups, list, disable) against a running server."""

from __future__ import annotations

import httpx
import jwt

from tests.e2e.userpool_helpers import (
    assert_problem,
    assert_tokens,
    bearer,
    confirmed_user,
    me,
    new_email,
    new_password,
    signin,
)
from tests.support.processes import Server


def _groups(access_token: str) -> list[str]:
    claims = jwt.decode(access_token, options={"verify_signature": False})
    groups: list[str] = claims.get("cognito:groups", claims.get("groups", []))
    return groups


def test_user_create_admin_group_token_and_roles_carry_admin(client: httpx.Client, server: Server) -> None:
    email, password = new_email("admin"), new_password()
    out = server.cli("user", "create", email, "--password", password, "--group", "admin")
    assert out.returncode == 0
    tokens = assert_tokens(signin(client, email, password))  # confirmed, no challenge
    assert "admin" in _groups(tokens["accessToken"])
    profile = me(client, tokens["accessToken"]).json()
    assert profile["groups"] == ["admin"]
    assert profile["email"] == email
    identity = client.get("/identity/me", headers=bearer(tokens["accessToken"]))
    assert identity.status_code == 200, identity.text
    assert {"admin", "authenticated"} <= set(identity.json()["roles"])
    assert "guest" not in identity.json()["roles"]
    # `user list` shows them (and does not print password hashes).
    listed = server.cli("user", "list").stdout
    line = next(x for x in listed.splitlines() if email in x)
    assert "$argon2" not in listed
    assert "admin" in line


def test_user_create_temporary_password_new_password_challenge(client: httpx.Client, server: Server) -> None:
    email, temporary = new_email("temp"), new_password()
    server.cli("user", "create", email, "--password", temporary, "--temporary")
    assert_problem(signin(client, email, temporary + "x"), 401, "NotAuthorized")  # no challenge without the password
    r = signin(client, email, temporary)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["challenge"] == "NEW_PASSWORD_REQUIRED"
    assert isinstance(body["session"], str)
    assert body["session"]
    assert "accessToken" not in body
    assert "refreshToken" not in body
    weak = client.post("/auth/challenge", json={"session": body["session"], "newPassword": "password1234"})
    assert_problem(weak, 400, "InvalidPassword")
    forged = client.post("/auth/challenge", json={"session": body["session"] + "x", "newPassword": new_password()})
    assert_problem(forged, 401, "NotAuthorized")
    chosen = new_password()
    tokens = assert_tokens(client.post("/auth/challenge", json={"session": body["session"], "newPassword": chosen}))
    assert me(client, tokens["accessToken"]).json()["email"] == email
    # The session answered once; the new password signs in directly, the temporary one no more.
    reuse = client.post("/auth/challenge", json={"session": body["session"], "newPassword": new_password()})
    assert_problem(reuse, 401, "NotAuthorized")
    assert_tokens(signin(client, email, chosen))
    assert_problem(signin(client, email, temporary), 401, "NotAuthorized")


def test_challenge_made_up_session_401(client: httpx.Client) -> None:
    r = client.post("/auth/challenge", json={"session": "not-a-session", "newPassword": new_password()})
    assert_problem(r, 401, "NotAuthorized")


def test_user_create_unconfirmed_signin_user_not_confirmed(client: httpx.Client, server: Server) -> None:
    email, password = new_email("unconf"), new_password()
    server.cli("user", "create", email, "--password", password, "--unconfirmed")
    assert_problem(signin(client, email, password), 403, "UserNotConfirmed")


def test_user_create_existing_email_fails_cleanly(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    out = server.cli("user", "create", user.email, "--password", new_password(), check=False)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert_tokens(signin(client, user.email, user.password))  # untouched


def test_user_add_and_remove_group_changes_new_tokens(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    server.cli("user", "add-to-group", user.email, "admin")
    tokens = user.signin(client)
    assert "admin" in _groups(tokens["accessToken"])
    assert me(client, tokens["accessToken"]).json()["groups"] == ["admin"]
    server.cli("user", "remove-from-group", user.email, "admin")
    after = user.signin(client)
    assert "admin" not in _groups(after["accessToken"])
    assert me(client, after["accessToken"]).json()["groups"] == []
    roles = client.get("/identity/me", headers=bearer(after["accessToken"])).json()["roles"]
    assert "admin" not in roles
    assert "authenticated" in roles


def test_user_disable_existing_tokens_and_signin_refused(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    other = confirmed_user(client, server).signin(client)
    tokens = user.signin(client)
    server.cli("user", "disable", user.email)
    assert_problem(me(client, tokens["accessToken"]), 401, "NotAuthorized")
    assert_problem(client.get("/identity/me", headers=bearer(tokens["accessToken"])), 401, "NotAuthorized")
    assert_problem(client.post("/identity/credentials", headers=bearer(tokens["accessToken"])), 401, "NotAuthorized")
    assert_problem(client.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]}), 401, "NotAuthorized")
    assert_problem(signin(client, user.email, user.password), 401, "NotAuthorized")
    # Nobody else is affected.
    assert me(client, other["accessToken"]).status_code == 200


def test_user_cli_unknown_email_fails_cleanly(server: Server) -> None:
    out = server.cli("user", "disable", new_email("ghost"), check=False)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
