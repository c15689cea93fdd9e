"""`POST /policy/simulate` (admin) and `updown policy simulate` give the same answer; others are refused."""

from __future__ import annotations

import httpx

from tests.e2e.userpool_helpers import bearer, confirmed_user, new_email, new_password, signin
from tests.support.processes import Server

ID = "us-east-1:11111111-1111-1111-1111-111111111111"


def _admin_token(client: httpx.Client, server: Server) -> str:
    email, password = new_email("admin"), new_password()
    server.cli("user", "create", email, "--password", password, "--group", "admin")
    r = signin(client, email, password)
    assert r.status_code == 200, r.text
    return str(r.json()["accessToken"])


def test_policy_simulate_admin_gets_decision_with_statement(client: httpx.Client, server: Server) -> None:
    token = _admin_token(client, server)
    body = {
        "role": "authenticated",
        "action": "s3:PutObject",
        "resource": f"arn:aws:s3:::files/private/{ID}/a.jpg",
        "identityId": ID,
    }
    r = client.post("/policy/simulate", json=body, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["effect"] == "Allow"
    assert r.json()["statement"] == "authenticated-storage#OwnFiles"
    other = {**body, "identityId": "us-east-1:22222222-2222-2222-2222-222222222222"}
    r = client.post("/policy/simulate", json=other, headers=bearer(token))
    assert r.json()["effect"] == "Deny"
    assert "no statement allows" in r.json()["reason"]


def test_policy_simulate_cli_matches_http(client: httpx.Client, server: Server) -> None:
    token = _admin_token(client, server)
    resource = "arn:aws:s3:::files/protected/x/a.jpg"
    http = client.post(
        "/policy/simulate",
        json={"role": "guest", "action": "s3:GetObject", "resource": resource, "context": {"aws:SourceIp": "10.0.0.1"}},
        headers=bearer(token),
    ).json()
    out = server.cli(
        "policy",
        "simulate",
        "--role",
        "guest",
        "--action",
        "s3:GetObject",
        "--resource",
        resource,
        "--context",
        "aws:SourceIp=10.0.0.1",
    ).stdout
    assert out.split()[0] == http["effect"] == "Deny"
    assert "no statement allows" in out


def test_policy_simulate_plain_user_403_access_denied(client: httpx.Client, server: Server) -> None:
    token = confirmed_user(client, server).signin(client)["accessToken"]
    body = {"role": "admin", "action": "s3:GetObject", "resource": "files/x"}
    r = client.post("/policy/simulate", json=body, headers=bearer(token))
    assert r.status_code == 403
    assert r.json()["code"] == "AccessDenied"


def test_policy_simulate_guest_and_anonymous_refused(client: httpx.Client) -> None:
    body = {"role": "admin", "action": "s3:GetObject", "resource": "files/x"}
    assert client.post("/policy/simulate", json=body).status_code == 401
    guest = client.post("/identity/guest").json()["token"]
    r = client.post("/policy/simulate", json=body, headers=bearer(guest))
    assert r.status_code == 401
    assert r.json()["code"] == "NotAuthorized"
