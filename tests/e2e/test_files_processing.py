"""Files e2e with their own servers: multipart resumed after a failed part, an abandoned intent
cleaned up, and a kill -9 between landing and processing that ends ready after a restart."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.files_helpers import complete, initiate, png, put_bytes, user
from tests.support.processes import Server, clean_env

PART = 64 * 1024


@pytest.fixture(scope="module")
def small_parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose multipart parts may be small and whose intents live one second."""
    root = tmp_path_factory.mktemp("mp")
    env = clean_env(
        {
            "UPDOWN_UPLOADS__MIN_PART_SIZE": str(PART),
            "UPDOWN_UPLOADS__DEFAULT_PART_SIZE": str(PART),
            "UPDOWN_UPLOADS__EXPIRES": "1",
            "UPDOWN_UPLOADS__MULTIPART_EXPIRES": "30",
        }
    )
    srv = Server(data_dir=root / "data", env=env).start()
    try:
        yield srv
    finally:
        srv.stop()


def _zip_bytes(size: int, seed: int) -> bytes:
    body = hashlib.shake_256(str(seed).encode()).digest(size - 4)
    return b"PK\x03\x04" + body


def _send_truncated(url: str, declared: int, data: bytes) -> None:
    """A PUT that claims ``declared`` bytes, sends fewer and hangs up: a part that failed midway."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=10) as sock:
        head = (
            f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Length: {declared}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + data)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass


def test_multipart_resumed_after_failed_part_etag_md5_of_md5s(small_parts: Server) -> None:
    with httpx.Client(base_url=small_parts.url, timeout=30) as client:
        alice = user(client, small_parts)
        data = _zip_bytes(PART * 2 + PART // 2, seed=1)
        r = initiate(
            client,
            alice,
            accessLevel="private",
            name="big.zip",
            contentType="application/zip",
            size=len(data),
            mode="multipart",
        )
        assert r.status_code == 201, r.text
        grant = r.json()
        plan = grant["multipart"]
        assert plan["partSize"] == PART
        urls = {p["partNumber"]: p["url"] for p in plan["parts"]}
        assert sorted(urls) == [1, 2, 3]
        chunks = {n: data[(n - 1) * PART : n * PART] for n in urls}
        etags = {}
        first = httpx.put(urls[1], content=chunks[1])
        assert first.status_code == 200, first.text
        etags[1] = first.headers["etag"].strip('"')
        assert etags[1] == hashlib.md5(chunks[1], usedforsecurity=False).hexdigest()
        _send_truncated(urls[2], len(chunks[2]), chunks[2][: PART // 3])
        # After the crash the client asks what arrived, and sends only what is missing.
        state = client.get(f"/storage/uploads/{grant['uploadId']}", headers=alice.headers).json()
        assert state["status"] == "pending"
        assert [(p["partNumber"], p["etag"]) for p in state["parts"]] == [(1, etags[1])]
        for n in (2, 3):
            sent = httpx.put(urls[n], content=chunks[n])
            assert sent.status_code == 200, sent.text
            etags[n] = sent.headers["etag"].strip('"')
        # A plain PUT with the part URL's query never replaces the whole object.
        listed = [
            p["partNumber"]
            for p in client.get(f"/storage/uploads/{grant['uploadId']}", headers=alice.headers).json()["parts"]
        ]
        assert listed == [1, 2, 3]
        done = complete(
            client, alice, grant["uploadId"], parts=[{"partNumber": n, "etag": etags[n]} for n in (1, 2, 3)]
        )
        assert done.status_code == 200, done.text
        record = done.json()
        assert record["size"] == len(data)
        joined = b"".join(hashlib.md5(chunks[n], usedforsecurity=False).digest() for n in (1, 2, 3))
        expected = hashlib.md5(joined, usedforsecurity=False).hexdigest() + "-3"
        state = client.get(f"/storage/uploads/{grant['uploadId']}", headers=alice.headers).json()
        assert state["etag"] == expected
        url = client.post(f"/storage/files/{record['key']}/url", headers=alice.headers).json()["url"]
        assert httpx.get(url).content == data


def test_multipart_complete_with_wrong_etag_or_order_4xx(small_parts: Server) -> None:
    with httpx.Client(base_url=small_parts.url, timeout=30) as client:
        alice = user(client, small_parts)
        data = _zip_bytes(PART + 10, seed=2)
        grant = initiate(
            client, alice, accessLevel="private", contentType="application/zip", size=len(data), mode="multipart"
        ).json()
        urls = [p["url"] for p in grant["multipart"]["parts"]]
        tags = [httpx.put(u, content=data[i * PART : (i + 1) * PART]).headers["etag"] for i, u in enumerate(urls)]
        wrong = complete(
            client,
            alice,
            grant["uploadId"],
            parts=[{"partNumber": 1, "etag": "0" * 32}, {"partNumber": 2, "etag": tags[1]}],
        )
        assert wrong.status_code == 400, wrong.text
        reversed_ = complete(
            client,
            alice,
            grant["uploadId"],
            parts=[{"partNumber": 2, "etag": tags[1]}, {"partNumber": 1, "etag": tags[0]}],
        )
        assert reversed_.status_code == 400, reversed_.text
        ok = complete(
            client, alice, grant["uploadId"], parts=[{"partNumber": i + 1, "etag": t} for i, t in enumerate(tags)]
        )
        assert ok.status_code == 200, ok.text
        again = complete(client, alice, grant["uploadId"])  # idempotent
        assert again.status_code == 200
        assert again.json()["etag"] == ok.json()["etag"]


def test_abandoned_intent_expired_by_cleanup_and_url_dead(small_parts: Server) -> None:
    with httpx.Client(base_url=small_parts.url, timeout=30) as client:
        alice = user(client, small_parts)
        data = png(seed=3)
        grant = initiate(client, alice, accessLevel="private", contentType="image/png", size=len(data)).json()
        time.sleep(1.5)
        dry = small_parts.cli("cleanup", "--dry-run")
        assert re.search(r"expired uploads: [1-9]", dry.stdout), dry.stdout
        state = client.get(f"/storage/uploads/{grant['uploadId']}", headers=alice.headers).json()
        assert state["status"] == "pending"  # a dry run changes nothing
        out = small_parts.cli("cleanup", "--older-than", "1h")
        assert re.search(r"expired uploads: [1-9]", out.stdout), out.stdout
        state = client.get(f"/storage/uploads/{grant['uploadId']}", headers=alice.headers).json()
        assert state["status"] == "expired"
        assert put_bytes(grant, data).status_code == 403
        r = complete(client, alice, grant["uploadId"])
        assert r.status_code == 409


def test_kill_9_between_landing_and_processing_ready_after_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    no_worker = clean_env({"UPDOWN_PROCESSING__EMBEDDED_WORKER": "false"})
    first = Server(data_dir=data_dir, env=no_worker).start()
    try:
        with httpx.Client(base_url=first.url, timeout=30) as client:
            alice = user(client, first)
            image = png(120, 80, seed=4)
            grant = initiate(client, alice, accessLevel="private", contentType="image/png", size=len(image)).json()
            assert put_bytes(grant, image).status_code == 200
            state = client.get(f"/storage/uploads/{grant['uploadId']}", headers=alice.headers).json()
            assert state["status"] == "uploaded"  # landed, queued, not processed: no worker runs
    finally:
        assert first.proc is not None
        os.killpg(first.proc.pid, signal.SIGKILL)
        first.proc.wait(timeout=10)
    # The same origin again: the issuer (and so the token) stays valid across the restart.
    second = Server(data_dir=data_dir, env=clean_env(), port=first.port).start()
    try:
        with httpx.Client(base_url=second.url, timeout=30) as client:
            done = client.post(f"/storage/uploads/{grant['uploadId']}/complete", headers=alice.headers)
            assert done.status_code == 200, done.text
            assert done.json()["status"] == "ready"
            assert "thumbnail" in done.json()["variants"]
    finally:
        second.stop()
