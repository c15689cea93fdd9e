"""Helpers for the user pool and identity pool e2e tests: fresh emails, codes from the outbox, signed-in users.

Codes come from the development outbox through `updown mail list --json`, the public way. A CLI call
costs a Python start, so :func:`confirmed_users` signs up a batch and reads the outbox once for all.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.processes import Server

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
IDENTITY_RE = re.compile(r"[a-z0-9-]+:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TOKEN_KEYS = {"accessToken", "idToken", "refreshToken", "expiresIn", "tokenType"}
INCORRECT = "Incorrect username or password."


def new_email(tag: str = "u") -> str:
    """A fresh, valid address no other test uses."""
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def new_password() -> str:
    """A password the policy accepts: long, random, with every character class."""
    return "Qz7!" + secrets.token_urlsafe(12)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(r: httpx.Response, status: int, *codes: str) -> dict[str, Any]:
    """The response is problem+json with this status and one of ``codes``; returns the body."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body: dict[str, Any] = r.json()
    assert set(body) == PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["code"] in codes, body
    assert "Traceback" not in r.text
    return body


def assert_tokens(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert set(body) >= TOKEN_KEYS, body
    assert body["tokenType"] == "Bearer"
    assert isinstance(body["expiresIn"], int)
    assert 0 < body["expiresIn"] <= 3600
    return body


def outbox(server: Server) -> list[dict[str, Any]]:
    """Every message of the development outbox, oldest first, via `updown mail list --json`."""
    out = server.cli("mail", "list", "--json").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def latest_code(server: Server, email: str) -> str:
    """The newest code mailed to ``email``."""
    mine = codes_for(outbox(server), email)
    assert mine, f"no code to {email} in the outbox"
    return mine[-1]


def codes_for(messages: list[dict[str, Any]], email: str) -> list[str]:
    """The codes mailed to ``email``, oldest first (notices without a code are skipped)."""
    return [m["code"] for m in messages if m["to"] == email and m.get("code") is not None]


def signup(client: httpx.Client, email: str, password: str, **extra: Any) -> httpx.Response:
    return client.post("/auth/signup", json={"email": email, "password": password, **extra})


def signin(client: httpx.Client, email: str, password: str) -> httpx.Response:
    return client.post("/auth/signin", json={"email": email, "password": password})


def me(client: httpx.Client, access_token: str) -> httpx.Response:
    return client.get("/auth/me", headers=bearer(access_token))


@dataclass
class User:
    """A confirmed user and the password they signed up with."""

    email: str
    password: str

    def signin(self, client: httpx.Client) -> dict[str, Any]:
        return assert_tokens(signin(client, self.email, self.password))


# Users made ahead, per server: keyed by its data dir, not its URL, since a later server can be
# given the port of one already stopped (five sign-ins of another server's users failed so in CI).
_pools: dict[str, list[User]] = {}


def confirmed_users(client: httpx.Client, server: Server, n: int = 1, batch: int = 8) -> list[User]:
    """``n`` fresh confirmed users, made by sign-up + confirm; one outbox read per batch."""
    pool = _pools.setdefault(str(server.data_dir), [])
    if len(pool) < n:
        made = [User(new_email("pool"), new_password()) for _ in range(max(batch, n - len(pool)))]
        for user in made:
            r = signup(client, user.email, user.password)
            assert r.status_code == 201, r.text
        messages = outbox(server)
        for user in made:
            code = codes_for(messages, user.email)[-1]
            r = client.post("/auth/confirm", json={"email": user.email, "code": code})
            assert r.status_code == 200, r.text
        pool.extend(made)
    taken, pool[:] = pool[:n], pool[n:]
    return taken


def confirmed_user(client: httpx.Client, server: Server) -> User:
    return confirmed_users(client, server, 1)[0]
