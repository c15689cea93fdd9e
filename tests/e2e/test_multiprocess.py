"""Two `updown serve` processes, as on two machines: different data dirs, one fresh PostgreSQL
database and one storage root. Whatever one process issues, the other honours: tokens and JWKS
(also after a rotation), refresh-token rotation (one winner of a race), the sign-in throttle,
mailed codes, temporary S3 credentials; periodic cleanup runs once per interval, not once per process.

Also: an embedded install from before the shared state (keys and secrets under its data dir) keeps
its signing keys and service credentials when it upgrades."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_ENV, postgres_database
from tests.e2e.s3_helpers import Creds, signed
from tests.e2e.userpool_helpers import (
    assert_problem,
    assert_tokens,
    bearer,
    latest_code,
    me,
    new_email,
    new_password,
    signin,
    signup,
)
from tests.support.processes import Server, clean_env
from updown.core.jwt import SigningKey
from updown.core.secrets import write_private_file

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.embedded("starts its own pair of `updown serve` processes on a database of its own"),
]

MAX_FAILED = 3
CLEANUP_INTERVAL = 2
ISSUER = "https://cluster.example"  # one public name for the cluster, as behind a load balancer


@dataclass
class Pair:
    a: Server
    b: Server
    database_url: str

    def query(self, sql: str) -> list[Any]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql)))
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    if not os.environ.get(PG_ENV):
        # Several API processes share one PostgreSQL by design (SQLite is the one-machine embedded
        # mode); .ci/run sets the variable whenever a PostgreSQL answers on 127.0.0.1:5432.
        pytest.skip(f"scale-out runs on PostgreSQL: set {PG_ENV} to run the multi-process tests")
    root = tmp_path_factory.mktemp("multiprocess")
    with postgres_database("multiprocess") as url:
        env = clean_env(
            {
                "UPDOWN_DATABASE__URL": url,
                "UPDOWN_STORAGE__ROOT": str(root / "objects"),
                "UPDOWN_AUTH__ISSUER": ISSUER,
                "UPDOWN_AUTH__MAX_FAILED_SIGNINS": str(MAX_FAILED),
                "UPDOWN_PROCESSING__CLEANUP_INTERVAL": str(CLEANUP_INTERVAL),
            }
        )
        a = Server(data_dir=root / "a" / "data", env=env)
        b = Server(data_dir=root / "b" / "data", env=env)
        # Started at once on the empty database: both migrate (one waits on the other's lock) and
        # both make the first signing key and the service secrets; one of each must be left.
        failures: list[BaseException] = []

        def start(server: Server) -> None:
            try:
                server.start(timeout=90)
            except BaseException as exc:  # reported below, with the log
                failures.append(exc)

        threads = [threading.Thread(target=start, args=(s,)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            if failures:
                raise failures[0]
            yield Pair(a, b, url)
        finally:
            a.stop()
            b.stop()


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def kids(server: Server) -> set[str]:
    return {k["kid"] for k in httpx.get(f"{server.url}/.well-known/jwks.json").json()["keys"]}


def new_user(server: Server) -> tuple[str, str]:
    email, password = new_email("mp"), new_password()
    server.cli("user", "create", email, "--password", password)
    return email, password


@pytest.mark.postgres
def test_pair_started_together_one_ring_one_set_of_secrets(pair: Pair) -> None:
    assert pair.query("SELECT count(*) FROM signing_keys")[0][0] == 1
    names = sorted(row[0] for row in pair.query("SELECT name FROM service_secrets"))
    assert names == ["code_hmac_key", "credentials_key", "s3_access_key_id", "s3_secret_access_key"]
    for server in (pair.a, pair.b):
        assert not (server.data_dir / "keys").exists()
    # Each data dir shows the same generated S3 service keys to its operator.
    shown = [json.loads((s.data_dir / "secrets.json").read_text()) for s in (pair.a, pair.b)]
    assert shown[0] == shown[1]


@pytest.mark.postgres
def test_token_issued_by_a_verifies_on_b_and_jwks_agree(pair: Pair) -> None:
    email, password = new_user(pair.a)
    with httpx.Client(base_url=pair.a.url, timeout=30) as a, httpx.Client(base_url=pair.b.url, timeout=30) as b:
        tokens = assert_tokens(signin(a, email, password))
        r = me(b, tokens["accessToken"])
        assert r.status_code == 200, r.text
        assert r.json()["email"] == email
        guest = b.post("/identity/guest").json()["token"]
        assert a.get("/identity/me", headers=bearer(guest)).status_code == 200
    assert kids(pair.a) == kids(pair.b) >= {kid_of(tokens["accessToken"])}


@pytest.mark.postgres
def test_rotation_new_key_signs_and_verifies_on_both(pair: Pair) -> None:
    email, password = new_user(pair.a)
    with httpx.Client(base_url=pair.a.url, timeout=30) as a, httpx.Client(base_url=pair.b.url, timeout=30) as b:
        before = assert_tokens(signin(a, email, password))
        out = pair.a.cli("keys", "rotate").stdout
        new_kid = out.split()[3]
        assert new_kid != kid_of(before["accessToken"])
        # Each process rereads the ring every 30 s: A signs with the new key within that.
        deadline = time.monotonic() + 45
        while True:
            fresh = assert_tokens(signin(a, email, password))
            if kid_of(fresh["accessToken"]) == new_kid:
                break
            assert time.monotonic() < deadline, "A never signed with the rotated key"
            time.sleep(1)
        for client in (a, b):
            for token in (before["accessToken"], fresh["accessToken"]):
                r = me(client, token)
                assert r.status_code == 200, r.text
    assert kids(pair.a) == kids(pair.b) >= {new_kid, kid_of(before["accessToken"])}


@pytest.mark.postgres
def test_refresh_token_sent_to_both_at_once_one_new_pair(pair: Pair) -> None:
    email, password = new_user(pair.a)
    for _ in range(5):
        with httpx.Client(base_url=pair.a.url, timeout=30) as a:
            refresh = assert_tokens(signin(a, email, password))["refreshToken"]
        barrier = threading.Barrier(2)
        answers: list[httpx.Response] = []
        threads = [
            threading.Thread(target=_refresh_at_once, args=(s, refresh, barrier, answers)) for s in (pair.a, pair.b)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(r.status_code for r in answers) == [200, 401], [r.text for r in answers]
        won = next(r for r in answers if r.status_code == 200)
        lost = next(r for r in answers if r.status_code == 401)
        assert_tokens(won)
        assert_problem(lost, 401, "NotAuthorized")


def _refresh_at_once(server: Server, token: str, barrier: threading.Barrier, answers: list[httpx.Response]) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        c.get("/healthz")  # connected before the race starts
        barrier.wait()
        answers.append(c.post("/auth/refresh", json={"refreshToken": token}))


@pytest.mark.postgres
def test_failed_signins_throttled_across_both(pair: Pair) -> None:
    email, password = new_user(pair.a)
    servers = [pair.a, pair.b]
    for i in range(MAX_FAILED):
        with httpx.Client(base_url=servers[i % 2].url, timeout=30) as c:
            assert_problem(signin(c, email, "Wrong-password-42"), 401, "NotAuthorized")
    for server in servers:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            r = signin(c, email, password)
            assert_problem(r, 429, "TooManyRequests")
            assert 0 < int(r.headers["Retry-After"]) <= 900


@pytest.mark.postgres
def test_confirmation_code_mailed_by_a_confirms_on_b(pair: Pair) -> None:
    email, password = new_email("mp-code"), new_password()
    with httpx.Client(base_url=pair.a.url, timeout=30) as a, httpx.Client(base_url=pair.b.url, timeout=30) as b:
        assert signup(a, email, password).status_code == 201
        code = latest_code(pair.a, email)  # A's development outbox: per data dir
        r = b.post("/auth/confirm", json={"email": email, "code": code})
        assert r.status_code == 200, r.text
        assert_tokens(signin(b, email, password))


@pytest.mark.postgres
def test_temporary_credentials_from_a_sign_requests_b_accepts(pair: Pair) -> None:
    email, password = new_user(pair.a)
    with httpx.Client(base_url=pair.a.url, timeout=30) as a:
        token = assert_tokens(signin(a, email, password))["accessToken"]
        r = a.post("/identity/credentials", headers=bearer(token))
        assert r.status_code == 200, r.text
        body = r.json()
    creds = Creds(body["accessKeyId"], body["secretAccessKey"], body["sessionToken"], body["identityId"])
    key = f"private/{creds.identity_id}/from-a.txt"
    data = b"signed with credentials A issued"
    put = signed(pair.b, creds, "PUT", key, body=data, headers={"content-type": "text/plain"})
    assert put.status_code == 200, put.text
    got = signed(pair.a, creds, "GET", key)  # and the bytes are in the shared store
    assert got.status_code == 200, got.text
    assert got.content == data
    forged = Creds(creds.access_key_id, creds.secret_access_key[:-2] + "xx", creds.session_token)
    assert signed(pair.b, forged, "GET", key).status_code == 403


@pytest.mark.postgres
def test_periodic_cleanup_runs_once_per_interval(pair: Pair) -> None:
    # Both processes queue the cleanup of the current interval; the jobs table keeps one job per
    # interval and each is claimed (attempted) once, by one process, never two at a time.
    deadline = time.monotonic() + 60
    while True:
        rows = pair.query("SELECT dedupe, status, attempts FROM jobs WHERE kind = 'cleanup'")
        assert sum(1 for _d, status, _a in rows if status == "running") <= 1
        done = [r for r in rows if r[1] == "done"]
        if len(done) >= 3:
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.2)
    assert len({d for d, _s, _a in rows}) == len(rows)
    assert all(attempts == 1 for _d, _s, attempts in done), done


# --- upgrade of an embedded install ------------------------------------------------------------


def test_upgrade_embedded_install_keeps_keys_and_service_credentials(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # A data dir as the versions before the shared state left it: keys/ and secrets.json.
    old_key = SigningKey.generate()
    write_private_file(data / "keys" / f"{int(time.time() * 1000):015d}-{old_key.kid}.pem", old_key.to_pem())
    old = {
        "s3_access_key_id": "UPDOLDSERVICEKEY0001",
        "s3_secret_access_key": secrets.token_urlsafe(30),
        "code_hmac_key": secrets.token_hex(32),
        "credentials_key": secrets.token_hex(32),
    }
    write_private_file(data / "secrets.json", json.dumps(old).encode())
    with Server(data_dir=data, env=clean_env()) as srv:
        assert kids(srv) == {old_key.kid}
        guest = httpx.post(f"{srv.url}/identity/guest").json()["token"]
        assert kid_of(guest) == old_key.kid
        service = Creds(old["s3_access_key_id"], old["s3_secret_access_key"])
        put = signed(srv, service, "PUT", "public/upgrade.txt", body=b"x", headers={"content-type": "text/plain"})
        assert put.status_code == 200, put.text
    assert json.loads((data / "secrets.json").read_text()) == old  # left as it was
    # Started again, nothing is imported twice: same ring, same credentials.
    with Server(data_dir=data, env=clean_env()) as srv:
        assert kids(srv) == {old_key.kid}
        assert signed(srv, service, "GET", "public/upgrade.txt").content == b"x"
