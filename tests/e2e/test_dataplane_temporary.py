"""The data plane in process with temporary credentials (the `resolve_temporary` seam): the gate
applies the principal's role policies, ``public/`` objects remember their owner, and a denial says
nothing about whether the object exists."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest

from updown.auth.principal import Principal
from updown.clock import SystemClock
from updown.core.sigv4 import Credentials, Signer, object_url
from updown.db.engine import Database
from updown.files.access import AccessGate
from updown.files.objects import Objects
from updown.files.presign import Presigner
from updown.files.records import OWNER_METADATA, Records
from updown.files.uploads import Uploads
from updown.policy import PolicyStore
from updown.settings import UploadSettings
from updown.storage.local import LocalBackend
from updown.web.s3.app import DataPlane

ALICE_ID = "us-east-1:aaaaaaaa-0000-4000-8000-000000000001"
BOB_ID = "us-east-1:bbbbbbbb-0000-4000-8000-000000000002"
SERVICE = Credentials("AKIDSERVICE000000000", "service-secret")
ALICE = Credentials("ASIAALICE00000000000", "alice-secret", "alice-token")
BOB = Credentials("ASIABOB0000000000000", "bob-secret", "bob-token")
USERS = {
    ALICE.access_key_id: (ALICE, Principal("user", "sigv4", identity_id=ALICE_ID, roles=("authenticated",))),
    BOB.access_key_id: (BOB, Principal("user", "sigv4", identity_id=BOB_ID, roles=("authenticated",))),
}
BASE = "http://testserver/s3"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, LocalBackend]]:
    storage = LocalBackend(tmp_path / "objects")
    clock = SystemClock()
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.migrate()
    gate = AccessGate(PolicyStore.from_settings(), bucket="files", clock=clock)
    presigner = Presigner(Signer(SERVICE, "us-east-1"), endpoint=BASE, bucket="files", clock=clock)
    records = Records(db, storage, gate, presigner, clock, default_expires=900, max_expires=604_800)
    uploads = Uploads(db, storage, gate, presigner, clock, UploadSettings(), queue_processing=lambda *_: None)
    objects = Objects(storage, gate, uploads, records, clock, max_object_size=1 << 20)
    plane = DataPlane(
        objects,
        bucket="files",
        region="us-east-1",
        service_credentials=SERVICE,
        max_object_size=1 << 20,
        clock=clock,
        resolve_temporary=USERS.get,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=plane), base_url="http://testserver") as c:
        yield c, storage
    db.dispose()
    db.dispose()


def _signed(
    creds: Credentials, method: str, key: str, headers: Mapping[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """A header-signed request, as an SDK holding temporary credentials makes it."""
    signed = Signer(creds, "us-east-1").sign_headers(
        method, object_url(BASE, "files", key), now=time.time(), headers=headers, payload_hash="UNSIGNED-PAYLOAD"
    )
    return signed.url, {**signed.headers, **(headers or {})}


async def _call(
    c: httpx.AsyncClient,
    creds: Credentials,
    method: str,
    key: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    url, all_headers = _signed(creds, method, key, headers)
    return await c.request(method, url, content=body if method == "PUT" else None, headers=all_headers)


async def test_dataplane_temporary_public_write_records_owner_and_hides_it(
    client: tuple[httpx.AsyncClient, LocalBackend],
) -> None:
    c, storage = client
    r = await _call(c, ALICE, "PUT", "public/alice.txt", b"mine", {"x-amz-meta-title": "A"})
    assert r.status_code == 200, r.text
    assert (await storage.head("public/alice.txt")).metadata == {"title": "A", OWNER_METADATA: ALICE_ID}
    g = await _call(c, BOB, "GET", "public/alice.txt")
    assert g.status_code == 200
    assert g.content == b"mine"  # streamed: no pathsend in this transport
    assert g.headers["x-amz-meta-title"] == "A"
    assert f"x-amz-meta-{OWNER_METADATA}" not in g.headers


async def test_dataplane_temporary_other_owner_cannot_replace_or_delete_public_object(
    client: tuple[httpx.AsyncClient, LocalBackend],
) -> None:
    c, storage = client
    assert (await _call(c, ALICE, "PUT", "public/shared.txt", b"alice's")).status_code == 200
    for method, body in (("PUT", b"bob's"), ("DELETE", b"")):
        r = await _call(c, BOB, method, "public/shared.txt", body)
        assert r.status_code == 403
        assert b"<Code>AccessDenied</Code>" in r.content
    assert (await storage.head("public/shared.txt")).size == len(b"alice's")
    assert (await _call(c, ALICE, "PUT", "public/shared.txt", b"alice v2")).status_code == 200
    assert (await _call(c, ALICE, "DELETE", "public/shared.txt")).status_code == 204


async def test_dataplane_temporary_private_of_another_identity_denied_whether_or_not_it_exists(
    client: tuple[httpx.AsyncClient, LocalBackend],
) -> None:
    c, _ = client
    own = f"private/{ALICE_ID}/note.txt"
    assert (await _call(c, ALICE, "PUT", own, b"secret")).status_code == 200
    assert (await _call(c, ALICE, "GET", own)).content == b"secret"
    existing = await _call(c, BOB, "GET", own)
    missing = await _call(c, BOB, "GET", f"private/{ALICE_ID}/nothing.txt")
    assert existing.status_code == missing.status_code == 403
    assert b"<Code>AccessDenied</Code>" in existing.content
    assert b"<Code>AccessDenied</Code>" in missing.content
    assert (await _call(c, BOB, "PUT", f"private/{ALICE_ID}/planted.txt", b"x")).status_code == 403


async def test_dataplane_temporary_reserved_owner_metadata_refused(
    client: tuple[httpx.AsyncClient, LocalBackend],
) -> None:
    c, storage = client
    r = await _call(c, BOB, "PUT", "public/forged.txt", b"x", {f"x-amz-meta-{OWNER_METADATA}": ALICE_ID})
    assert r.status_code == 400
    assert b"<Code>InvalidArgument</Code>" in r.content
    assert (await storage.list("public/forged")).items == ()


async def test_dataplane_temporary_wrong_session_token_is_invalid_access_key(
    client: tuple[httpx.AsyncClient, LocalBackend],
) -> None:
    c, _ = client
    forged = Credentials(ALICE.access_key_id, ALICE.secret_access_key, "stolen-token")
    r = await _call(c, forged, "GET", "public/alice.txt")
    assert r.status_code == 403
    assert b"<Code>InvalidAccessKeyId</Code>" in r.content
