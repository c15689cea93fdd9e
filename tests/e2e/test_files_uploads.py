"""Files e2e: upload intents (put, post), processing to ready, access levels between two users and a
guest, lies about type and size, a decompression bomb, reads, URLs, delete and copy."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from tests.e2e.conftest import CLUSTER_ENV
from tests.e2e.files_helpers import (
    Caller,
    complete,
    guest,
    initiate,
    png,
    post_form,
    put_bytes,
    upload,
    user,
)
from tests.e2e.userpool_helpers import assert_problem
from tests.support.processes import Server


@pytest.fixture(scope="module")
def alice(server: Server) -> Caller:
    with httpx.Client(base_url=server.url) as c:
        return user(c, server)


@pytest.fixture(scope="module")
def bob(server: Server) -> Caller:
    with httpx.Client(base_url=server.url) as c:
        return user(c, server)


# --- initiate ------------------------------------------------------------------------------------


def test_initiate_put_binds_key_type_length_and_metadata(client: httpx.Client, alice: Caller) -> None:
    r = initiate(
        client, alice, accessLevel="private", name="a/b.png", contentType="image/png", size=10, metadata={"Title": "x"}
    )
    assert r.status_code == 201, r.text
    grant = r.json()
    assert grant["key"] == f"private/{alice.identity_id}/a/b.png"
    assert len(grant["uploadId"]) == 32
    headers = grant["put"]["headers"]
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Length"] == "10"
    assert headers["x-amz-meta-title"] == "x"
    url = grant["put"]["url"]
    assert "X-Amz-Signature=" in url
    assert "content-length%3Bcontent-type%3Bhost%3Bx-amz-meta-title" in url
    # Another type, another length or no metadata: the signature no longer matches, nothing lands.
    wrong_type = httpx.put(url, content=b"0123456789", headers={**_plain(headers), "Content-Type": "image/gif"})
    assert wrong_type.status_code == 403
    longer = httpx.put(url, content=b"0123456789X", headers=_plain(headers))
    assert longer.status_code == 403
    state = client.get(f"/storage/uploads/{grant['uploadId']}", headers=alice.headers).json()
    assert state["status"] == "pending"


def _plain(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != "content-length"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"accessLevel": "secret", "contentType": "image/png", "size": 1}, 400, "InvalidRequest"),
        ({"accessLevel": "public", "contentType": "text/html", "size": 1}, 400, "InvalidContentType"),
        ({"accessLevel": "public", "contentType": "image/png", "size": 1, "name": "../x.png"}, 400, "InvalidKey"),
        ({"accessLevel": "public", "contentType": "image/png", "size": 1, "name": "_variants/x"}, 400, "InvalidKey"),
        ({"accessLevel": "public", "contentType": "image/png", "size": 200 * 1024**2}, 413, "EntityTooLarge"),
        ({"accessLevel": "public", "contentType": "image/png", "size": 1, "mode": "ftp"}, 400, "InvalidRequest"),
        ({"accessLevel": "public", "contentType": "image/png", "size": -1}, 400, "InvalidRequest"),
        (
            {"accessLevel": "public", "contentType": "image/png", "size": 1, "metadata": {"updown-owner": "x"}},
            400,
            "InvalidRequest",
        ),
    ],
)
def test_initiate_bad_input_4xx_with_code(
    client: httpx.Client, alice: Caller, body: dict[str, object], status: int, code: str
) -> None:
    assert_problem(client.post("/storage/uploads", headers=alice.headers, json=body), status, code)


def test_initiate_needs_a_caller_and_the_policy(client: httpx.Client, alice: Caller) -> None:
    body = {"accessLevel": "public", "contentType": "image/png", "size": 1}
    assert_problem(client.post("/storage/uploads", json=body), 401, "NotAuthorized")
    # A guest may read public/ but not write anywhere.
    g = guest(client)
    assert_problem(client.post("/storage/uploads", headers=g.headers, json=body), 403, "AccessDenied")


# --- put, process, read ------------------------------------------------------------------------


def test_put_upload_processed_ready_with_thumbnail(client: httpx.Client, server: Server, alice: Caller) -> None:
    data = png(300, 200)
    record = upload(client, alice, data, accessLevel="private", name="photos/cat.png", metadata={"album": "pets"})
    assert record["key"] == f"private/{alice.identity_id}/photos/cat.png"
    assert record["size"] == len(data)
    assert record["etag"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert record["contentType"] == "image/png"
    assert record["metadata"] == {"album": "pets"}
    assert record["identityId"] == alice.identity_id
    assert (record["width"], record["height"]) == (300, 200)
    thumb = record["variants"]["thumbnail"]
    assert thumb.startswith(f"private/{alice.identity_id}/_variants/thumbnail/")
    assert thumb.endswith(".webp")
    assert "publicUrl" not in record
    # The owner reads the file and its thumbnail through presigned URLs.
    url = client.post(f"/storage/files/{record['key']}/url", headers=alice.headers).json()["url"]
    got = httpx.get(url)
    assert got.status_code == 200
    assert got.content == data
    # Served as the verified type, inline (a raster image), by whichever store holds the bytes;
    # only updown's own data plane adds nosniff and the sandbox (an S3 store has neither).
    assert got.headers["content-type"] == "image/png"
    assert "content-disposition" not in got.headers
    if own_data_plane(server):
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["content-security-policy"] == "sandbox"
    turl = client.post(f"/storage/files/{thumb}/url", headers=alice.headers).json()["url"]
    t = httpx.get(turl)
    assert t.status_code == 200
    assert t.headers["content-type"] == "image/webp"
    assert t.content[:4] == b"RIFF"
    assert t.content[8:12] == b"WEBP"
    # The intent is single use: its URL cannot replace the bytes any more.
    listed = client.get("/storage/files", headers=alice.headers, params={"accessLevel": "private"}).json()
    assert record["key"] in [i["key"] for i in listed["items"]]


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/plain", b"plain words, which a browser left to sniff might still take for a page\n" * 4),
        ("application/pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"),
    ],
)
def test_url_not_an_image_served_as_verified_type_and_attachment(
    client: httpx.Client, alice: Caller, content_type: str, data: bytes
) -> None:
    # No S3 store adds nosniff or a sandbox: the URL itself asks for the type and an attachment.
    name = f"docs/note.{content_type.rsplit('/', 1)[-1]}"
    record = upload(client, alice, data, content_type=content_type, accessLevel="private", name=name)
    assert record["contentType"] == content_type
    url = client.post(f"/storage/files/{record['key']}/url", headers=alice.headers).json()["url"]
    assert f"response-content-type={content_type.replace('/', '%2F')}" in url
    got = httpx.get(url)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"].split(";")[0] == content_type
    filename = name.rsplit("/", 1)[-1]
    assert got.headers["content-disposition"] == f"attachment; filename=\"{filename}\"; filename*=UTF-8''{filename}"


def test_access_levels_between_two_users_and_a_guest(client: httpx.Client, alice: Caller, bob: Caller) -> None:
    g = guest(client)
    private = upload(client, alice, png(seed=2), accessLevel="private", name="p.png")["key"]
    protected = upload(client, alice, png(seed=3), accessLevel="protected", name="q.png")["key"]
    public = upload(client, alice, png(seed=4), accessLevel="public", name=f"{alice.identity_id[-12:]}.png")["key"]
    for caller, key, ok in [
        (alice, private, True),
        (bob, private, False),
        (g, private, False),
        (alice, protected, True),
        (bob, protected, True),
        (g, protected, False),
        (alice, public, True),
        (bob, public, True),
        (g, public, True),
    ]:
        r = client.get(f"/storage/files/{key}", headers=caller.headers)
        assert r.status_code == (200 if ok else 403), (key, caller, r.text)
    # Bob cannot write into Alice's protected space (the key is built from his own identity) nor
    # delete her files; a public file is deleted only by its owner.
    assert_problem(client.delete(f"/storage/files/{protected}", headers=bob.headers), 403, "AccessDenied")
    assert_problem(client.delete(f"/storage/files/{public}", headers=bob.headers), 403, "AccessDenied")
    assert_problem(client.delete(f"/storage/files/{private}", headers=g.headers), 403, "AccessDenied")
    # Listing: Bob sees Alice's protected files, not her private ones.
    seen = client.get(
        "/storage/files", headers=bob.headers, params={"accessLevel": "protected", "identityId": alice.identity_id}
    )
    assert protected in [i["key"] for i in seen.json()["items"]]
    hidden = client.get(
        "/storage/files", headers=bob.headers, params={"accessLevel": "private", "identityId": alice.identity_id}
    )
    assert_problem(hidden, 403, "AccessDenied")


def test_post_form_upload_processed_ready(client: httpx.Client, server: Server, alice: Caller) -> None:
    data = png(40, 40, seed=5)
    r = initiate(
        client, alice, accessLevel="protected", name="form.png", contentType="image/png", size=len(data), mode="post"
    )
    grant = r.json()
    assert set(grant["post"]["fields"]) >= {"key", "policy", "x-amz-signature", "Content-Type"}
    sent = post_form(grant, data)
    assert sent.status_code == 204, sent.text
    done = complete(client, alice, grant["uploadId"])
    assert done.status_code == 200, done.text
    record = done.json()
    assert record["key"] == f"protected/{alice.identity_id}/form.png"
    # A second POST with the same form never changes the file. updown's data plane refuses it (the
    # intent has been used); an S3 store takes a POST policy until it expires, but the bytes land
    # at the intent's staging key only, and nothing publishes them again.
    other = bytearray(data)
    other[-20] ^= 0xFF
    again = post_form(grant, bytes(other))
    if own_data_plane(server):
        assert again.status_code == 403
    assert complete(client, alice, grant["uploadId"]).json()["etag"] == record["etag"]
    now = client.get(f"/storage/files/{record['key']}", headers=alice.headers).json()
    assert (now["etag"], now["size"]) == (record["etag"], len(data))
    url = client.post(f"/storage/files/{record['key']}/url", headers=alice.headers).json()["url"]
    assert httpx.get(url).content == data


def own_data_plane(server: Server) -> bool:
    """Whether presigned URLs point at updown's own ``/s3`` data plane (embedded, local disk), which
    also refuses a used intent and adds the inert headers; else they point at an S3 store."""
    return not os.environ.get(CLUSTER_ENV) and server.env.get("UPDOWN_STORAGE__BACKEND", "local") == "local"


def test_post_form_longer_than_declared_refused_nothing_stored(client: httpx.Client, alice: Caller) -> None:
    data = png(seed=6)
    grant = initiate(
        client, alice, accessLevel="private", contentType="image/png", size=len(data) - 1, mode="post"
    ).json()
    assert post_form(grant, data).status_code == 400
    assert client.get(f"/storage/uploads/{grant['uploadId']}", headers=alice.headers).json()["status"] == "pending"
    assert_problem(complete(client, alice, grant["uploadId"]), 409, "UploadNotReady")


# --- lies, forbidden types, bombs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "data", "words"),
    [
        ("image/png", b"this is plain text, not an image at all", "PNG"),
        ("image/jpeg", png(seed=7), "JPEG"),
        ("text/plain", b"<!DOCTYPE html><html><script>alert(1)</script></html>", "HTML"),
        ("application/pdf", b"\x7fELF\x02\x01\x01" + b"\x00" * 64, "xecutable"),
    ],
)
def test_lie_about_type_rejected_with_reason_and_bytes_gone(
    client: httpx.Client, server: Server, alice: Caller, declared: str, data: bytes, words: str
) -> None:
    grant = initiate(client, alice, accessLevel="private", contentType=declared, size=len(data)).json()
    assert put_bytes(grant, data).status_code == 200
    body = assert_problem(complete(client, alice, grant["uploadId"]), 422, "UploadRejected")
    assert words.lower() in body["detail"].lower(), body
    state = client.get(f"/storage/uploads/{grant['uploadId']}", headers=alice.headers).json()
    assert state["status"] == "rejected"
    assert state["reason"] == body["detail"]
    assert_problem(client.get(f"/storage/files/{grant['key']}", headers=alice.headers), 404, "NoSuchKey")
    # Neither the staged bytes nor the file's key hold anything.
    assert not list((server.data_dir / "objects").rglob(f"*{grant['uploadId']}*"))


def test_decompression_bomb_rejected(client: httpx.Client, alice: Caller) -> None:
    bomb = png(8, 8, declared=(60_000, 60_000))  # 3.6 gigapixels declared in a few hundred bytes
    grant = initiate(client, alice, accessLevel="private", contentType="image/png", size=len(bomb)).json()
    assert put_bytes(grant, bomb).status_code == 200
    body = assert_problem(complete(client, alice, grant["uploadId"]), 422, "UploadRejected")
    assert "pixel" in body["detail"].lower()


def test_quota_free_by_default_and_size_lie_cut_off(client: httpx.Client, alice: Caller) -> None:
    data = png(seed=8)
    grant = initiate(client, alice, accessLevel="private", contentType="image/png", size=len(data)).json()
    # Sending more than declared while claiming the declared length: the server reads only that.
    sent = httpx.put(grant["put"]["url"], content=data + b"extra", headers=_plain(grant["put"]["headers"]))
    assert sent.status_code in (400, 403)
    assert client.get(f"/storage/uploads/{grant['uploadId']}", headers=alice.headers).json()["status"] == "pending"


# --- reads: URLs, delete, copy -------------------------------------------------------------------


def test_url_download_attachment_with_safe_filename(client: httpx.Client, alice: Caller) -> None:
    record = upload(client, alice, png(seed=9), accessLevel="private", name='naïve "photo".png')
    r = client.post(
        f"/storage/files/{record['key']}/url", headers=alice.headers, json={"download": True, "expiresIn": 60}
    )
    assert r.status_code == 200, r.text
    got = httpx.get(r.json()["url"])
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''na%C3%AFve%20%22photo%22.png" in disposition
    assert_problem(
        client.post(f"/storage/files/{record['key']}/url", headers=alice.headers, json={"expiresIn": 700_000}),
        400,
        "InvalidRequest",
    )


def test_delete_removes_object_variants_and_row(client: httpx.Client, server: Server, alice: Caller) -> None:
    record = upload(client, alice, png(seed=10), accessLevel="private", name="gone.png")
    url = client.post(f"/storage/files/{record['key']}/url", headers=alice.headers).json()["url"]
    assert client.delete(f"/storage/files/{record['key']}", headers=alice.headers).status_code == 204
    assert_problem(client.get(f"/storage/files/{record['key']}", headers=alice.headers), 404, "NoSuchKey")
    assert httpx.get(url).status_code == 404
    assert_problem(client.delete(f"/storage/files/{record['key']}", headers=alice.headers), 404, "NoSuchKey")


def test_copy_needs_read_on_source_and_write_on_destination(client: httpx.Client, alice: Caller, bob: Caller) -> None:
    src = upload(client, alice, png(seed=11), accessLevel="protected", name="orig.png")["key"]
    mine = f"private/{bob.identity_id}/copied.png"
    r = client.post("/storage/copy", headers=bob.headers, json={"source": src, "destination": mine})
    assert r.status_code == 201, r.text
    assert r.json()["identityId"] == bob.identity_id
    theirs = f"private/{alice.identity_id}/planted.png"
    assert_problem(
        client.post("/storage/copy", headers=bob.headers, json={"source": src, "destination": theirs}),
        403,
        "AccessDenied",
    )
    private = upload(client, alice, png(seed=12), accessLevel="private", name="secret.png")["key"]
    assert_problem(
        client.post("/storage/copy", headers=bob.headers, json={"source": private, "destination": mine}),
        403,
        "AccessDenied",
    )
