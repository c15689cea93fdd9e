"""`updown worker` as its own process beside `updown serve` (processing.embedded_worker = false):
uploads processed to ready, its /healthz and /metrics, SIGTERM mid-job (finished, or returned to
the queue and finished by the next worker), a dead-lettered upload shown by the API and `updown
jobs`, then retried. On procrastinate + PostgreSQL (a fresh database per run) when the tests have
PostgreSQL, and always on the database queue over SQLite."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PG_ENV, postgres_database
from tests.e2e.files_helpers import Caller, initiate, png, put_bytes, upload, user
from tests.support.processes import Server, clean_env, free_port, launch, stop, tail
from updown.storage.local import LocalBackend

pytestmark = [pytest.mark.e2e, pytest.mark.embedded("starts its own `updown serve` and `updown worker` processes")]


def _params() -> list[Any]:
    params: list[Any] = ["database"]
    if os.environ.get(PG_ENV):
        params.append(pytest.param("procrastinate", marks=pytest.mark.postgres))
    return params


@dataclass
class Cluster:
    """One `updown serve` without its embedded worker, and `updown worker` processes beside it."""

    server: Server
    backend: str
    root: Path
    worker_proc: subprocess.Popen[bytes] | None = None
    health_port: int = 0
    worker_log: Path | None = None

    def start_worker(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self.health_port = free_port()
        self.worker_log = self.root / f"worker-{self.health_port}.log"
        cmd = [sys.executable, "-m", "updown", "worker", "--data", str(self.server.data_dir)]
        cmd += ["--concurrency", "2", "--health-port", str(self.health_port), *args]
        self.worker_proc = launch(
            cmd,
            self.worker_log,
            f"{self.health}/healthz",
            env={**self.server.env, **(env or {})},
            cwd=self.root,
        )
        return self.worker_proc

    @property
    def health(self) -> str:
        return f"http://127.0.0.1:{self.health_port}"

    def stop_worker(self) -> None:
        stop(self.worker_proc)


@pytest.fixture(scope="module", params=_params())
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    backend = str(request.param)
    root = tmp_path_factory.mktemp(f"worker-{backend}")
    with contextlib.ExitStack() as stack:
        env = {
            "UPDOWN_PROCESSING__EMBEDDED_WORKER": "false",
            "UPDOWN_PROCESSING__MAX_ATTEMPTS": "2",  # a broken job fails for good after one retry (2 s)
            "UPDOWN_PROCESSING__POLL_INTERVAL": "0.1",
            "UPDOWN_QUEUE__BACKEND": backend,
            "UPDOWN_QUEUE__STALLED_WORKER_TIMEOUT": "3",
        }
        if backend == "procrastinate":
            env["UPDOWN_DATABASE__URL"] = stack.enter_context(postgres_database("worker"))
        server = Server(data_dir=root / "data", env=clean_env(env)).start()
        stack.callback(server.stop)
        c = Cluster(server, backend, root)
        c.start_worker()
        stack.callback(c.stop_worker)
        yield c


def big_png(side: int = 6000) -> bytes:
    """A flat PNG of ``side``² pixels: a few hundred KiB on the wire, long to decode (the job
    runs long enough to be caught mid-way)."""
    row = b"\x00" + b"\x80" * (side * 3)
    idat = zlib.compress(row * side, 1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def land(client: httpx.Client, caller: Caller, data: bytes, name: str) -> str:
    """Initiates and sends an upload; returns its id without completing it."""
    r = initiate(client, caller, accessLevel="private", name=name, contentType="image/png", size=len(data))
    assert r.status_code == 201, r.text
    grant = r.json()
    assert put_bytes(grant, data).status_code == 200
    return str(grant["uploadId"])


def state(client: httpx.Client, caller: Caller, upload_id: str) -> dict[str, Any]:
    r = client.get(f"/storage/uploads/{upload_id}", headers=caller.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def wait_state(client: httpx.Client, caller: Caller, upload_id: str, want: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = state(client, caller, upload_id)
        if body["status"] == want or body.get("processing", {}).get("status") == want:
            return body
        time.sleep(0.1)
    raise AssertionError(f"upload {upload_id} never reached {want}: {body}")


def wait_running(cluster: Cluster, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{cluster.health}/healthz", timeout=2).json()["running"] > 0:
                return
        time.sleep(0.01)
    raise AssertionError("the worker never ran a job")


def metric(body: str, name: str, kind: str | None = None) -> float:
    labels = f'{{kind="{kind}"}}' if kind else ""
    found = re.search(rf"^{re.escape(name + labels)} ([0-9.e+]+)$", body, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_worker_processes_an_upload_to_ready(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.server.url, timeout=30) as client:
        owner = user(client, cluster.server)
        record = upload(client, owner, png(), accessLevel="private", name="one.png")
        assert record["status"] == "ready"
        assert "thumbnail" in record["variants"]


def test_worker_health_and_metrics_answer(cluster: Cluster) -> None:
    health = httpx.get(f"{cluster.health}/healthz", timeout=5)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    with httpx.Client(base_url=cluster.server.url, timeout=30) as client:
        owner = user(client, cluster.server)
        upload(client, owner, png(seed=2), accessLevel="private", name="counted.png")
    metrics = httpx.get(f"{cluster.health}/metrics", timeout=5)
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert metric(metrics.text, "updown_worker_jobs_done_total", "process-upload") >= 1
    assert "updown_worker_jobs_failed_total" in metrics.text or "updown_worker_jobs_failed" in metrics.text
    assert "updown_worker_jobs_running " in metrics.text
    assert httpx.get(f"{cluster.health}/nothing", timeout=5).status_code == 404


def test_worker_sigterm_mid_job_finishes_it(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.server.url, timeout=30) as client:
        owner = user(client, cluster.server)
        upload_id = land(client, owner, big_png(), "big.png")  # the data plane's PUT queues its job
        proc = cluster.worker_proc
        assert proc is not None
        wait_running(cluster)
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, tail(cluster.worker_log or Path("-"))
        assert state(client, owner, upload_id)["status"] == "ready"  # finished before it stopped
        cluster.start_worker()


def test_worker_sigterm_past_the_shutdown_timeout_returns_the_job(cluster: Cluster) -> None:
    cluster.stop_worker()
    cluster.start_worker(env={"UPDOWN_QUEUE__SHUTDOWN_TIMEOUT": "0"})
    with httpx.Client(base_url=cluster.server.url, timeout=30) as client:
        owner = user(client, cluster.server)
        upload_id = land(client, owner, big_png(), "returned.png")
        proc = cluster.worker_proc
        assert proc is not None
        wait_running(cluster)
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, tail(cluster.worker_log or Path("-"))
        body = state(client, owner, upload_id)
        assert body["status"] == "processing"
        assert body["processing"]["status"] == "queued"  # back in the queue, not lost, not failed
        cluster.start_worker()
        assert wait_state(client, owner, upload_id, "ready")["status"] == "ready"


def test_worker_dead_letter_shows_in_the_upload_and_jobs_then_retries(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.server.url, timeout=30) as client:
        owner = user(client, cluster.server)
        # A file where the processed object's folder must go: publishing fails (not the upload's
        # fault, so it is retried, not rejected), until the disk is fixed.
        folder = LocalBackend(cluster.server.data_dir / "objects").object_dir(f"private/{owner.identity_id}/x").parent
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.write_bytes(b"in the way")
        try:
            upload_id = land(client, owner, png(seed=3), "blocked.png")
            body = wait_state(client, owner, upload_id, "failed")
        finally:
            folder.unlink()
        assert body["status"] == "processing"
        assert body["processing"]["status"] == "failed"
        assert body["processing"]["attempts"] == 2
        error_type = body["processing"]["lastError"]
        assert error_type.isidentifier()  # the type only (e.g. OSError): no server paths reach the client

        listed = cluster.server.cli("jobs", "list", "--status", "failed").stdout
        assert "failed\t1" in listed
        assert f"failed process-upload attempts=2 key={upload_id}:" in listed
        assert f"    {error_type}: " in listed  # operators see the message too
        assert cluster.server.cli("jobs", "retry", "--all-failed").stdout.strip() == "retried 1 job(s)"
        assert wait_state(client, owner, upload_id, "ready")["status"] == "ready"
        counts = cluster.server.cli("jobs", "list").stdout
        assert "failed\t" not in counts
        assert "done\t" in counts
