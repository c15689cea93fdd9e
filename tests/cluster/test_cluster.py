"""The cluster (tests/cluster/stack.py: PostgreSQL, SeaweedFS, `updown serve` ×3, `updown worker` ×2,
nginx, all on deploy/'s files) passes the e2e suite with its requests spread round-robin over the
API processes, and survives what only a cluster can do: a worker killed mid-job, an API process
killed mid-upload, and a throttle that N processes must enforce as one.

The e2e suite runs in a pytest process of its own (``UPDOWN_TEST_CLUSTER`` makes its ``server``
fixture this cluster's front); the tests here run after it, in file order, and restart what they kill.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.cluster.stack import BUCKET, LEASE_SECONDS, REGION, REPO, Cluster, wait_for
from tests.e2e.conftest import CLUSTER_ENV
from tests.e2e.files_helpers import complete, initiate, png, put_bytes, upload, user
from tests.e2e.s3_helpers import payload, user_creds
from tests.support.processes import tail
from updown import settings as settings_mod
from updown.core.sigv4 import Credentials, Signer, object_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MIB = 1024 * 1024
# The whole e2e run against the cluster; measured at about 75 s on this machine's 2 cores.
E2E_TIMEOUT = 900


def test_e2e_suite_passes_against_the_cluster_spread_over_every_api_process(cluster: Cluster, tmp_path: Path) -> None:
    description = cluster.describe(tmp_path / "cluster.json")
    before = cluster.nginx.upstream_counts()
    log = tmp_path / "e2e.log"
    started = time.monotonic()
    with log.open("wb") as out:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/e2e", "-q", "-p", "no:cacheprovider", "-rfE", "--tb=short"],
            cwd=REPO,
            env={**os.environ, CLUSTER_ENV: str(description)},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=E2E_TIMEOUT,
            check=False,
        )
    took = time.monotonic() - started
    summary = tail(log, 40)
    print(f"e2e suite against the cluster: {took:.0f} s\n{summary}")
    assert run.returncode == 0, f"the e2e suite failed against the cluster ({log}):\n{tail(log, 200)}"
    assert " passed" in summary
    # nginx sent each request to the next process: every API process answered a fair share.
    served = cluster.nginx.upstream_counts() - before
    total = sum(served.values())
    assert {f"127.0.0.1:{api.port}" for api in cluster.apis} <= set(served), served
    for upstream, n in served.items():
        assert n >= total / (len(cluster.apis) * 2), f"{upstream} served {n} of {total} requests: {served}"


def _solid_png(width: int, height: int) -> bytes:
    """A large, cheap PNG (one colour: a few hundred KiB) that takes a worker a while to verify,
    decode and thumbnail (every pixel is decoded under the pixel limit)."""
    row = b"\x00" + bytes((120, 30, 200)) * width

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(row * height, 1)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _job_of(cluster: Cluster, upload_id: str) -> tuple[str, int] | None:
    """(status, attempts) of the processing job of ``upload_id``, from the database queue's table."""
    rows = cluster.sql("SELECT status, attempts FROM jobs WHERE payload::text LIKE %s", f"%{upload_id}%")
    return (str(rows[0][0]), int(rows[0][1])) if rows else None


def _signal(proc: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    assert proc is not None
    os.killpg(proc.pid, sig)


def test_worker_killed_mid_job_the_other_worker_finishes_it(cluster: Cluster) -> None:
    first, second = cluster.workers
    front = cluster.front
    with httpx.Client(base_url=front.url, timeout=30) as c:
        caller = user(c, front)
        data = _solid_png(7000, 7000)  # 49 MP: under processing.max_pixels (50 MP)
        grant = initiate(
            c, caller, accessLevel="private", name="cluster/slow.png", contentType="image/png", size=len(data)
        )
        assert grant.status_code == 201, grant.text
        body = grant.json()
        upload_id = body["uploadId"]
        # Only the first worker may claim the job: the second is frozen until the first is dead.
        _signal(second.proc, signal.SIGSTOP)
        try:
            assert put_bytes(body, data).status_code == 200
            # `complete` waits a moment for processing: watch the job while it is in flight.
            with ThreadPoolExecutor(1) as pool:
                completing = pool.submit(complete, c, caller, upload_id)
                wait_for(
                    lambda: _job_of(cluster, upload_id) == ("running", 1), 20, "the first worker claims the job", 0.005
                )
                # Frozen mid-job, so the kill lands before it can finish, whatever the machine's speed.
                _signal(first.proc, signal.SIGSTOP)
                done = completing.result()
            assert done.status_code in (200, 202), done.text
            state = c.get(f"/storage/uploads/{upload_id}", headers=caller.headers).json()
            assert state["status"] != "ready", state
            first.kill()
            killed_at = time.monotonic()
        finally:
            _signal(second.proc, signal.SIGCONT)
        try:
            # The lease runs out; the second worker takes the job and finishes it.

            def ready() -> dict[str, object] | None:
                s = c.get(f"/storage/uploads/{upload_id}", headers=caller.headers).json()
                return s if s["status"] in ("ready", "rejected") else None

            state = wait_for(ready, LEASE_SECONDS + 60, "the upload is processed after the kill", 0.2)
            print(f"ready {time.monotonic() - killed_at:.1f} s after the kill (lease {LEASE_SECONDS} s)")
            assert state["status"] == "ready", state
            assert _job_of(cluster, upload_id) == ("done", 2)
            file = c.get("/storage/files", params={"accessLevel": "private"}, headers=caller.headers)
            assert file.status_code == 200, file.text
            assert "cluster/slow.png" in file.text
        finally:
            first.start()


@pytest.fixture
def service_signer(cluster: Cluster) -> Signer:
    """The data plane's service credentials: on the S3 backend, the store's own."""
    return Signer(Credentials(cluster.weed.access_key_id, cluster.weed.secret_access_key), REGION)


def _slow_body(data: bytes, kill_after: int, kill: object) -> Iterator[bytes]:
    for offset in range(0, len(data), MIB):
        if offset == kill_after:
            kill()  # type: ignore[operator]
            time.sleep(0.2)
        yield data[offset : offset + MIB]


def test_api_killed_mid_upload_no_row_for_missing_bytes_and_the_retry_succeeds(
    cluster: Cluster, service_signer: Signer
) -> None:
    victim = cluster.apis[0]
    key = f"public/cluster/killed-{secrets.token_hex(4)}.bin"
    data = hashlib.shake_256(key.encode()).digest(24 * MIB)
    url = service_signer.presign("PUT", object_url(f"{victim.url}/s3", BUCKET, key), expires=300, now=time.time())
    try:
        with pytest.raises(httpx.TransportError):
            httpx.put(
                url,
                content=_slow_body(data, 8 * MIB, victim.kill),
                headers={"content-length": str(len(data))},
                timeout=60,
            )
        assert victim.proc is not None
        assert victim.proc.poll() is not None
        # Nothing of the cut-off upload anywhere: no object in the store, no row in the database,
        # and no process answers for the key.
        with pytest.raises(ClientError) as missing:
            cluster.weed.client().head_object(Bucket=BUCKET, Key=key)
        assert missing.value.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound")
        assert cluster.sql("SELECT key FROM files WHERE key = %s", key) == []
        front_url = object_url(f"{cluster.front.url}/s3", BUCKET, key)
        head = httpx.head(service_signer.presign("HEAD", front_url, expires=60, now=time.time()), timeout=30)
        assert head.status_code == 404
        # The client retries through the front, which sends it to a live process.
        again = httpx.put(
            service_signer.presign("PUT", front_url, expires=300, now=time.time()), content=data, timeout=60
        )
        assert again.status_code == 200, again.text
        # (The S3 backend streams a large body to the store in parts: its ETag is a multipart one.)
        assert again.headers["etag"]
        got = httpx.get(service_signer.presign("GET", front_url, expires=60, now=time.time()), timeout=60)
        assert got.status_code == 200
        assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    finally:
        victim.start()


def test_signin_throttle_holds_across_the_api_processes(cluster: Cluster) -> None:
    limit = settings_mod.load(data_dir=cluster.ops_dir, environ=cluster.env).auth.max_failed_signins
    email, password = f"throttle-{secrets.token_hex(4)}@example.com", "Cluster-throttle-42!"
    created = cluster.front_cli("user", "create", email, "--password", password)
    assert created.returncode == 0, created.stderr
    apis = cluster.apis
    # The failed sign-ins go to the processes in turn: each one sees only some of them.
    for attempt in range(limit):
        r = httpx.post(f"{apis[attempt % len(apis)].url}/auth/signin", json={"email": email, "password": "Wrong-42!x"})
        assert r.status_code == 401, r.text
    # Past the limit every process refuses, the right password too.
    for api in apis:
        r = httpx.post(f"{api.url}/auth/signin", json={"email": email, "password": password})
        assert r.status_code == 429, r.text
        assert r.json()["code"] == "TooManyRequests"
        assert int(r.headers["retry-after"]) > 0


def test_downloads_through_nginx_are_offloaded_to_the_store(cluster: Cluster) -> None:
    """deploy/'s offload (``storage.offload = "x-accel-redirect"``, nginx's internal location): an
    API process decides each GET and answers headers only; nginx fetches the bytes from SeaweedFS."""
    service = Signer(Credentials(cluster.weed.access_key_id, cluster.weed.secret_access_key), REGION)
    front, store = cluster.nginx.url, f"127.0.0.1:{cluster.weed.port}"

    def presigned(base: str, method: str, key: str, signer: Signer = service) -> str:
        return signer.presign(method, object_url(f"{base}/s3", BUCKET, key), expires=300, now=time.time())

    def offloaded() -> int:
        # An offloaded GET is logged with two upstreams: the API process, then the store.
        return sum(f" : {store} " in line for line in cluster.nginx.access_log.read_text().splitlines())

    data = payload(2 * MIB + 33, "cluster-offload")
    key = "public/offload/Dir With Space/ünï+@x.bin"
    put = httpx.put(presigned(front, "PUT", key), content=data, timeout=60)
    assert put.status_code == 200, put.text
    etag = put.headers["etag"]
    before = offloaded()

    # A presigned GET of the /s3 data plane.
    got = httpx.get(presigned(front, "GET", key), timeout=60)
    assert (got.status_code, got.content, got.headers["etag"]) == (200, data, etag)
    inert = {"x-content-type-options": "nosniff", "content-security-policy": "sandbox"}
    assert {k: got.headers[k] for k in inert} == inert
    assert got.headers["content-disposition"] == "attachment"
    assert not [k for k in got.headers if k.startswith(("x-amz-meta-", "seaweed"))]
    part = httpx.get(presigned(front, "GET", key), headers={"Range": "bytes=1000-1999"}, timeout=60)
    assert (part.status_code, part.content) == (206, data[1000:2000])
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"

    # The S3 API at the root, header-signed (as boto3 and the aws cli send it).
    url = object_url(front, BUCKET, key)
    signed = service.sign_headers("GET", url, now=time.time(), headers={"range": "bytes=-100"})
    tail_part = httpx.get(url, headers={**signed.headers, "range": "bytes=-100"}, timeout=60)
    assert (tail_part.status_code, tail_part.content) == (206, data[-100:])
    assert tail_part.headers["etag"] == etag

    # /cdn of a public file.
    with httpx.Client(base_url=front, timeout=60) as c:
        record = upload(c, user(c, cluster.front), png(96, 64, seed=77), accessLevel="public", name="offload/pic.png")
    pic = httpx.get(f"{front}/cdn/offload/pic.png", timeout=60)
    assert pic.status_code == 200
    assert hashlib.md5(pic.content, usedforsecurity=False).hexdigest() == record["etag"]
    assert (pic.headers["content-type"], pic.headers["x-content-type-options"]) == ("image/png", "nosniff")
    assert pic.headers["cache-control"].startswith("public, max-age=")
    pic_part = httpx.get(f"{front}/cdn/offload/pic.png", headers={"Range": "bytes=0-15"}, timeout=60)
    assert (pic_part.status_code, pic_part.content) == (206, pic.content[:16])
    # nginx writes a request's log line just after its last byte: the count may lag a moment.
    wait_for(lambda: offloaded() - before >= 5, 5, "each of those GETs sent by nginx from the store")
    assert offloaded() - before == 5

    # A denied GET is the API process's 403: nothing from the store.
    owner, _ = user_creds(cluster.front)
    _, intruder = user_creds(cluster.front)
    private = f"private/{owner.identity_id}/offload.bin"
    assert httpx.put(presigned(front, "PUT", private), content=data, timeout=60).status_code == 200
    before = offloaded()
    theirs = Signer(Credentials(intruder.access_key_id, intruder.secret_access_key, intruder.session_token), REGION)
    denied = httpx.get(presigned(front, "GET", private, theirs), timeout=60)
    assert denied.status_code == 403
    assert b"<Code>AccessDenied</Code>" in denied.content
    assert data[:64] not in denied.content
    assert "x-accel-redirect" not in denied.headers
    assert offloaded() == before

    # Straight to one API process: the decision, headers only, with the redirect nginx follows.
    for api in cluster.apis:
        raw = httpx.get(presigned(api.url, "GET", key), timeout=60)
        assert (raw.status_code, raw.content, raw.headers["content-length"]) == (200, b"", "0")
        assert raw.headers["x-accel-redirect"].startswith(f"/_updown_objects/{BUCKET}/public/offload/")
        assert raw.headers["etag"] == etag
        assert "X-Amz-SignedHeaders=host%3Bif-match&" in raw.headers["x-accel-redirect"]
