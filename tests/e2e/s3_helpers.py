"""Helpers for the S3-API e2e tests: `updown serve` on either storage backend (local disk, or S3
through a moto server), and boto3 clients for the service credentials and for the temporary
credentials of a signed-in user or a guest (``POST /identity/credentials``)."""

from __future__ import annotations

import hashlib
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from tests.e2e.files_helpers import Caller, guest, user
from tests.e2e.userpool_helpers import bearer
from tests.support.processes import Server, clean_env
from updown.core.sigv4 import Credentials, Signer, object_url

BUCKET = "files"
REGION = "us-east-1"
MIB = 1024 * 1024
BACKENDS = ["local", "s3"]


def moto_backend_env(endpoint: str, bucket: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings of an `updown serve` whose objects live in ``bucket`` of the moto server at
    ``endpoint``, with ``extra`` over them.

    No periodic cleanup unless ``extra`` asks for one: moto reports every multipart upload as
    initiated in 2010, so the cleanup the worker runs at start would abort a test's open uploads.
    """
    env = {
        "UPDOWN_STORAGE__BACKEND": "s3",
        "UPDOWN_STORAGE__BUCKET": bucket,
        "UPDOWN_S3__ENDPOINT_URL": endpoint,
        "UPDOWN_S3__ACCESS_KEY_ID": "testing",
        "UPDOWN_S3__SECRET_ACCESS_KEY": "testing",
        "UPDOWN_S3__REGION": REGION,
        "UPDOWN_PROCESSING__CLEANUP_INTERVAL": "0",
    }
    env.update(extra or {})
    return env


@contextmanager
def serve(root: Path, backend: str, env: Mapping[str, str] | None = None, *, bucket: str = BUCKET) -> Iterator[Server]:
    """`updown serve` on ``backend``; for ``s3``, over a moto server and ``bucket`` there.

    moto keeps one store per process, whatever the server: a test that sweeps (cleanup) names a
    bucket of its own, so that it never touches another module's objects.
    """
    extra: dict[str, str] = dict(env or {})
    extra["UPDOWN_STORAGE__BUCKET"] = bucket
    extra.setdefault("UPDOWN_PROCESSING__CLEANUP_INTERVAL", "0")  # as on moto (moto_backend_env)
    moto = None
    if backend == "s3":
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}),
        ).create_bucket(Bucket=bucket)
        extra = moto_backend_env(endpoint, bucket, extra)
    srv = Server(data_dir=root / "data", env=clean_env(extra))
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        if moto is not None:
            moto.stop()


@dataclass(frozen=True)
class Creds:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    identity_id: str | None = None


def service_creds(server: Server) -> Creds:
    """The data plane's service credentials: the S3 store's own on the S3 backend, else generated."""
    if "UPDOWN_S3__ACCESS_KEY_ID" in server.env:
        return Creds(server.env["UPDOWN_S3__ACCESS_KEY_ID"], server.env["UPDOWN_S3__SECRET_ACCESS_KEY"])
    stored = json.loads((server.data_dir / "secrets.json").read_text())
    return Creds(stored["s3_access_key_id"], stored["s3_secret_access_key"])


def store_client(server: Server) -> Any | None:
    """boto3 on the S3 store behind ``server`` (its own endpoint and keys), for what the data
    plane does not show (a multipart upload left behind); None on the local backend."""
    if "UPDOWN_S3__ENDPOINT_URL" not in server.env:
        return None
    creds = service_creds(server)
    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.env["UPDOWN_S3__ENDPOINT_URL"],
        region_name=server.env.get("UPDOWN_S3__REGION", REGION),
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def store_bucket(server: Server) -> str:
    """The store's bucket behind ``server`` (``storage.bucket``: the settings file's unless the
    environment names one)."""
    return server.env.get("UPDOWN_STORAGE__BUCKET", BUCKET)


def temporary_creds(client: httpx.Client, caller: Caller) -> Creds:
    r = client.post("/identity/credentials", headers=bearer(caller.token))
    assert r.status_code == 200, r.text
    body = r.json()
    return Creds(body["accessKeyId"], body["secretAccessKey"], body["sessionToken"], body["identityId"])


def user_creds(server: Server) -> tuple[Caller, Creds]:
    """A fresh signed-in user and their temporary credentials."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        caller = user(client, server)
        return caller, temporary_creds(client, caller)


def guest_creds(server: Server) -> tuple[Caller, Creds]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        caller = guest(client)
        return caller, temporary_creds(client, caller)


def s3_client(server: Server, creds: Creds) -> Any:
    """boto3 as an application configures it: path-style, defaults otherwise (checksums too)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=f"{server.url}/s3",
        region_name=REGION,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        aws_session_token=creds.session_token,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def error_code(call: Any, *args: Any, **kwargs: Any) -> str:
    """The S3 error code ``call(*args, **kwargs)`` fails with (the test fails if it does not)."""
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return str(caught.value.response["Error"]["Code"])


def payload(size: int, seed: str) -> bytes:
    """``size`` reproducible pseudo-random bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.shake_256(f"{seed}:{counter}".encode()).digest(min(size - len(out), 1 << 20))
        counter += 1
    return bytes(out)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def multipart_etag(*parts: bytes) -> str:
    joined = b"".join(hashlib.md5(p, usedforsecurity=False).digest() for p in parts)
    return f'"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(parts)}"'


def signed(
    server: Server,
    creds: Creds,
    method: str,
    key: str | None,
    query: str = "",
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """A header-signed request sent as written (``key`` None: the bucket), for what boto3 would
    not send or would parse away."""
    base = f"{server.url}/s3"
    url = object_url(base, BUCKET, key) if key is not None else f"{base}/{BUCKET}"
    if query:
        url += f"?{query}"
    signer = Signer(Credentials(creds.access_key_id, creds.secret_access_key, creds.session_token), REGION)
    signed = signer.sign_headers(method, url, now=time.time(), headers=headers, payload_hash="UNSIGNED-PAYLOAD")
    return httpx.request(method, url, content=body, headers={**signed.headers, **(headers or {})}, timeout=30)


NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def xml_of(r: httpx.Response) -> ET.Element:
    return ET.fromstring(r.content)  # noqa: S314 - our own server's answer


def texts(root: ET.Element, path: str) -> list[str]:
    """The texts of the elements at ``path`` (names without the S3 namespace)."""
    qualified = "/".join(f"{NS}{part}" for part in path.split("/"))
    return [e.text or "" for e in root.findall(qualified)]
