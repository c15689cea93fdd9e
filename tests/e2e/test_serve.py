"""The real server: operations endpoints, problem+json errors, docs, and settings errors at start."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.nginx import OffloadFront
from tests.support.processes import Server, clean_env


def test_serve_healthz_ok(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_serve_readyz_database_reachable(client: httpx.Client) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


def test_serve_metrics_prometheus_text(client: httpx.Client) -> None:
    client.get("/healthz")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'updown_http_requests_total{family="healthz",method="GET",status="200"}' in r.text


def test_serve_openapi_and_docs_served(client: httpx.Client) -> None:
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert "/healthz" in spec.json()["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_serve_unknown_route_problem_json_404(client: httpx.Client) -> None:
    r = client.get("/no/such/route")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "NotFound"
    assert set(body) == {"type", "title", "status", "detail", "code"}


def test_serve_wrong_method_problem_json_405(client: httpx.Client) -> None:
    r = client.delete("/healthz")
    assert r.status_code == 405
    assert r.json()["code"] == "MethodNotAllowed"


def test_serve_oversized_json_body_413(client: httpx.Client) -> None:
    r = client.post("/healthz", content=b"x" * 2_000_000, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["code"] == "EntityTooLarge"


@pytest.mark.embedded("the SQLite database and secrets file of one embedded data dir")
def test_serve_creates_private_secrets_and_wal_database(server: Server) -> None:
    secrets_file = server.data_dir / "secrets.json"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    assert (server.data_dir / "updown.db").exists()


def test_serve_migrate_command_idempotent(server: Server) -> None:
    out = server.cli("migrate")
    assert "up to date" in out.stdout


def test_serve_bad_setting_one_line_error_no_traceback(tmp_path: Path) -> None:
    env = clean_env({"UPDOWN_SERVER__PROT": "1"})
    r = subprocess.run(
        [sys.executable, "-m", "updown", "serve", "--data", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert r.returncode != 0
    assert "unknown setting in environment: UPDOWN_SERVER__PROT" in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_serve_bad_value_in_config_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "u.toml"
    cfg.write_text("[server]\nport = 'eighty'\n")
    r = subprocess.run(
        [sys.executable, "-m", "updown", "serve", "--config", str(cfg), "--data", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert r.returncode != 0
    assert "bad value for server.port" in r.stderr
    assert "Traceback" not in r.stderr


def test_serve_init_writes_commented_config_with_fresh_secrets(tmp_path: Path) -> None:
    def init(name: str) -> str:
        subprocess.run(
            [sys.executable, "-m", "updown", "init", "--config", str(tmp_path / name)],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
            check=True,
        )
        return (tmp_path / name).read_text()

    a, b = init("a.toml"), init("b.toml")
    assert "secret_access_key = " in a
    assert a != b  # fresh secrets each time
    assert (tmp_path / "a.toml").stat().st_mode & 0o777 == 0o600
    # The written file is a valid config the server accepts.
    srv = Server(data_dir=tmp_path / "d", env=clean_env({"UPDOWN_CONFIG": str(tmp_path / "a.toml")})).start()
    try:
        assert httpx.get(f"{srv.url}/readyz").status_code == 200
    finally:
        srv.stop()
    again = subprocess.run(
        [sys.executable, "-m", "updown", "init", "--config", str(tmp_path / "a.toml")],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert again.returncode != 0
    assert "exists already" in again.stderr


def test_serve_two_workers_both_answer(tmp_path: Path) -> None:
    srv = Server(data_dir=tmp_path / "d", env=clean_env()).start("--workers", "2")
    try:
        for _ in range(20):
            assert httpx.get(f"{srv.url}/readyz").status_code == 200
    finally:
        srv.stop()
    assert srv.proc is not None
    assert srv.proc.returncode is not None


def test_serve_keys_rotate_new_key_signs_old_still_verifies(tmp_path: Path) -> None:
    srv = Server(data_dir=tmp_path / "d", env=clean_env()).start()
    try:
        before = httpx.get(f"{srv.url}/.well-known/jwks.json").json()["keys"]
        guest = httpx.post(f"{srv.url}/identity/guest").json()["token"]
        out = srv.cli("keys", "rotate").stdout
        assert out.startswith("new signing key ")
        new_kid = out.split()[3]
        # Workers rescan the keys directory every 30 s; a restart shows the result without waiting.
        srv.stop()
        srv.start()
        after = httpx.get(f"{srv.url}/.well-known/jwks.json").json()["keys"]
        assert {k["kid"] for k in after} == {k["kid"] for k in before} | {new_kid}
        fresh = httpx.post(f"{srv.url}/identity/guest").json()["token"]
        header = fresh.split(".")[0]
        assert json.loads(base64.urlsafe_b64decode(header + "=="))["kid"] == new_kid
        for token in (guest, fresh):
            r = httpx.get(f"{srv.url}/identity/me", headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
    finally:
        srv.stop()


@pytest.mark.embedded("its own server behind its own nginx (streaming bodies through, as deploy/'s front)")
def test_serve_oversized_json_body_413_behind_nginx_not_502(tmp_path: Path) -> None:
    # nginx streams bodies through as they come (proxy_request_buffering off): an answer sent
    # before the body is read must not end in a closed connection that nginx reports as 502.
    def chunked() -> Iterator[bytes]:
        yield from [b"x" * 100_000] * 20  # 2,000,000 bytes, no Content-Length

    with (
        Server(data_dir=tmp_path / "d", env=clean_env()) as srv,
        OffloadFront(tmp_path / "nginx", srv.port, srv.data_dir / "objects" / "objects") as front,
        httpx.Client(base_url=front.url, timeout=60) as c,
    ):
        for _ in range(3):  # again on nginx's kept-alive upstream connections
            for path, body, status in (
                ("/healthz", b"x" * 2_000_000, 413),
                ("/auth/signin", b"x" * 2_000_000, 413),
                ("/auth/signin", chunked(), 413),
                # Answered without reading the body at all: drained first as well.
                ("/healthz", chunked(), 405),
                ("/no/such/route", b"x" * 500_000, 404),
            ):
                r = c.post(path, content=body, headers={"content-type": "application/json"})
                assert r.status_code == status, (path, r.status_code, r.text[:200])
                assert r.headers["content-type"] == "application/problem+json"
                assert r.headers.get("connection") != "close"
                if status == 413:
                    assert r.json()["code"] == "EntityTooLarge"
                assert c.get("/healthz").status_code == 200
        log = front.run / "error.log"
        errors = log.read_text() if log.exists() else ""
        assert "upstream" not in errors, errors  # no broken pipe or premature close on nginx's side
