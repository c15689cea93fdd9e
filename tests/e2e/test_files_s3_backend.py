"""The files e2e on the S3 backend: `updown serve` with `storage.backend = "s3"` against a moto S3
server. Presigned targets point at the S3 service itself, `complete` HEADs the object there,
multipart parts go to the store's own multipart API, and processing, reads, copy, delete and the
CDN run unchanged.

The flows shared with the local backend are the same test functions, collected here a second time
with this module's `server`. Left out: the ones that check what only our data plane enforces
(signature binding of type, length and policy; moto does not verify signatures) and the ones that
look into the local backend's directories.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from tests.e2e.files_helpers import Caller, complete, initiate, png, post_form, put_bytes, user
from tests.e2e.s3_helpers import moto_backend_env

# The shared flows, collected again against this module's server.
from tests.e2e.test_cdn import (  # noqa: F401
    owner,
    published,
    test_cdn_never_reaches_outside_public,
    test_cdn_overwrite_serves_new_bytes_under_new_etag,
    test_cdn_pending_upload_never_served,
    test_cdn_serves_ready_public_file_with_validators,
    test_cdn_thumbnail_immutable,
)
from tests.e2e.test_files_rules import (  # noqa: F401
    test_gps_stripped_from_jpeg_other_exif_kept,
    test_listing_pages_with_cursor_in_stable_order,
)
from tests.e2e.test_files_uploads import (  # noqa: F401
    alice,
    bob,
    test_access_levels_between_two_users_and_a_guest,
    test_copy_needs_read_on_source_and_write_on_destination,
    test_decompression_bomb_rejected,
    test_initiate_bad_input_4xx_with_code,
    test_initiate_needs_a_caller_and_the_policy,
    test_post_form_upload_processed_ready,
    test_put_upload_processed_ready_with_thumbnail,
    test_url_download_attachment_with_safe_filename,
    test_url_not_an_image_served_as_verified_type_and_attachment,
)
from tests.support.processes import Server, clean_env

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

BUCKET = "files"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        moto.stop()


@pytest.fixture(scope="module")
def s3(moto_endpoint: str) -> S3Client:
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 1}),
    )
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, s3: S3Client) -> Iterator[Server]:
    """`updown serve` whose objects live in the moto bucket."""
    root = tmp_path_factory.mktemp("serve-s3")
    env = clean_env(moto_backend_env(moto_endpoint, BUCKET))
    srv = Server(data_dir=root / "data", env=env).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def carol(server: Server) -> Caller:
    with httpx.Client(base_url=server.url) as c:
        return user(c, server)


def _wait_ready(client: httpx.Client, caller: Caller, upload_id: str) -> dict[str, object]:
    state: dict[str, object] = {}
    for _ in range(200):
        state = client.get(f"/storage/uploads/{upload_id}", headers=caller.headers).json()
        if state["status"] in ("ready", "rejected"):
            return state
        time.sleep(0.05)
    return state


def test_presigned_put_targets_the_s3_service_and_lands_there(
    client: httpx.Client, carol: Caller, moto_endpoint: str, s3: S3Client
) -> None:
    data = png(120, 80, seed=31)
    grant = initiate(
        client, carol, accessLevel="protected", name="s3/direct.png", contentType="image/png", size=len(data)
    )
    assert grant.status_code == 201, grant.text
    body = grant.json()
    target = urlsplit(body["put"]["url"])
    assert f"{target.scheme}://{target.netloc}" == moto_endpoint
    assert target.path.startswith(f"/{BUCKET}/_uploads/")
    assert put_bytes(body, data).status_code == 200
    record = complete(client, carol, body["uploadId"])
    assert record.status_code in (200, 202), record.text
    head = s3.head_object(Bucket=BUCKET, Key=f"protected/{carol.identity_id}/s3/direct.png")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


def test_multipart_parts_go_to_the_stores_api_resume_and_complete(
    client: httpx.Client, carol: Caller, s3: S3Client
) -> None:
    # Three parts of 5 MiB, 5 MiB and 1 MiB: a zip, so processing verifies the type and is done.
    size = 11 * MIB
    data = b"PK\x03\x04" + hashlib.shake_256(b"s3-multipart").digest(size - 4)
    r = initiate(
        client,
        carol,
        accessLevel="private",
        name="big.zip",
        contentType="application/zip",
        size=size,
        mode="multipart",
        partSize=5 * MIB,
    )
    assert r.status_code == 201, r.text
    grant = r.json()
    part_size = grant["multipart"]["partSize"]
    assert part_size == 5 * MIB
    parts = grant["multipart"]["parts"]
    assert [p["partNumber"] for p in parts] == [1, 2, 3]
    assert all("uploadId=" in p["url"] and "partNumber=" in p["url"] for p in parts)
    chunks = [data[i : i + part_size] for i in range(0, size, part_size)]
    etags = {}
    # Parts 1 and 3 first; the intent then lists them, as a client resuming after a crash sees.
    for n in (1, 3):
        sent = httpx.put(parts[n - 1]["url"], content=chunks[n - 1], timeout=60)
        assert sent.status_code == 200, sent.text
        etags[n] = sent.headers["etag"].strip('"')
    state = client.get(f"/storage/uploads/{grant['uploadId']}", headers=carol.headers).json()
    assert state["status"] == "pending"
    assert [(p["partNumber"], p["size"]) for p in state["parts"]] == [(1, part_size), (3, MIB)]
    sent = httpx.put(parts[1]["url"], content=chunks[1], timeout=60)
    assert sent.status_code == 200
    etags[2] = sent.headers["etag"].strip('"')
    done = complete(client, carol, grant["uploadId"], parts=[{"partNumber": n, "etag": etags[n]} for n in (1, 2, 3)])
    assert done.status_code in (200, 202), done.text
    state = _wait_ready(client, carol, grant["uploadId"])
    assert state["status"] == "ready", state
    key = f"private/{carol.identity_id}/big.zip"
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == size
    # The file was published with a server-side copy from the staging key, so its ETag is the one
    # the store gave that copy (S3 answers a copy's ETag as the MD5 of the whole object, not the
    # multipart md5-of-md5s-N); the record carries the store's ETag, whatever it is.
    record = client.get(f"/storage/files/{key}", headers=carol.headers).json()
    assert head["ETag"] == f'"{record["etag"]}"'
    url = client.post(f"/storage/files/{key}/url", headers=carol.headers).json()["url"]
    with httpx.stream("GET", url, timeout=60) as got:
        digest = hashlib.md5(usedforsecurity=False)
        for piece in got.iter_bytes():
            digest.update(piece)
    assert digest.hexdigest() == hashlib.md5(data, usedforsecurity=False).hexdigest()
    # Nothing is left at the staging key, and a second complete answers the same file.
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key=f"_uploads/{grant['uploadId']}")
    again = complete(client, carol, grant["uploadId"], parts=[{"partNumber": n, "etag": etags[n]} for n in (1, 2, 3)])
    assert again.status_code == 200
    assert again.json()["etag"] == record["etag"]


def test_rejected_upload_bytes_deleted_from_the_store(client: httpx.Client, carol: Caller, s3: S3Client) -> None:
    fake = b"<html><script>alert(1)</script></html>".ljust(200, b" ")
    r = initiate(client, carol, accessLevel="protected", name="s3/lie.png", contentType="image/png", size=len(fake))
    grant = r.json()
    assert put_bytes(grant, fake).status_code == 200
    complete(client, carol, grant["uploadId"])
    state = _wait_ready(client, carol, grant["uploadId"])
    assert state["status"] == "rejected"
    assert "html" in str(state["reason"]).lower()
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"protected/{carol.identity_id}/s3/lie")
    assert listed["KeyCount"] == 0
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key=f"_uploads/{grant['uploadId']}")


def test_put_processed_ready_with_thumbnail_read_back_from_the_store(
    client: httpx.Client, carol: Caller, s3: S3Client
) -> None:
    data = png(300, 200, seed=32)
    grant = initiate(client, carol, accessLevel="private", name="s3/cat.png", contentType="image/png", size=len(data))
    body = grant.json()
    assert put_bytes(body, data).status_code == 200
    done = complete(client, carol, body["uploadId"])
    assert done.status_code == 200, done.text
    record = done.json()
    assert (record["status"], record["width"], record["height"]) == ("ready", 300, 200)
    thumb = record["variants"]["thumbnail"]
    stored = s3.get_object(Bucket=BUCKET, Key=thumb)
    assert stored["ContentType"] == "image/webp"
    assert stored["Body"].read()[8:12] == b"WEBP"
    url = client.post(f"/storage/files/{record['key']}/url", headers=carol.headers).json()["url"]
    assert httpx.get(url).content == data


def test_used_intent_url_cannot_replace_the_recorded_file_and_cleanup_drops_the_stray(
    client: httpx.Client, server: Server, carol: Caller, s3: S3Client
) -> None:
    # The S3 service accepts a presigned URL for its whole lifetime: a second PUT lands again at
    # the staging key, but the recorded file keeps its bytes, and cleanup removes the stray.
    first = png(seed=33)
    grant = initiate(client, carol, accessLevel="private", name="s3/once.png", contentType="image/png", size=len(first))
    body = grant.json()
    assert put_bytes(body, first).status_code == 200
    done = complete(client, carol, body["uploadId"])
    assert done.status_code == 200, done.text
    other = bytearray(first)
    other[-20] ^= 0xFF
    assert put_bytes(body, bytes(other)).status_code == 200
    again = complete(client, carol, body["uploadId"])
    assert again.status_code == 200
    assert again.json()["etag"] == done.json()["etag"]
    url = client.post(f"/storage/files/{body['key']}/url", headers=carol.headers).json()["url"]
    assert httpx.get(url).content == first
    staged = f"_uploads/{body['uploadId']}"
    assert s3.head_object(Bucket=BUCKET, Key=staged)["ContentLength"] == len(first)
    out = server.cli("cleanup")
    assert re.search(r"staged blobs deleted: [1-9]", out.stdout), out.stdout
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key=staged)
    assert httpx.get(url).content == first


def test_used_post_form_lands_at_staging_only_and_cleanup_drops_it(
    client: httpx.Client, server: Server, carol: Caller, s3: S3Client
) -> None:
    # An S3 store takes a POST policy again until it expires (updown's data plane refuses it): the
    # bytes land at the intent's staging key, the recorded file keeps its own, cleanup deletes them.
    first = png(48, 32, seed=34)
    grant = initiate(
        client,
        carol,
        accessLevel="protected",
        name="s3/form.png",
        contentType="image/png",
        size=len(first),
        mode="post",
    ).json()
    assert post_form(grant, first).status_code == 204
    done = complete(client, carol, grant["uploadId"])
    assert done.status_code == 200, done.text
    record = done.json()
    staged = f"_uploads/{grant['uploadId']}"
    # complete answers once the bytes landed; the pipeline publishes them, marks the file ready,
    # then deletes the staged copy.
    assert _wait_ready(client, carol, grant["uploadId"])["status"] == "ready"
    for _ in range(200):
        try:
            s3.head_object(Bucket=BUCKET, Key=staged)
        except ClientError:
            break  # published: the staged copy is gone
        time.sleep(0.05)
    else:
        pytest.fail(f"{staged} is still in the store 10 s after the file was ready")
    other = bytearray(first)
    other[-20] ^= 0xFF
    assert post_form(grant, bytes(other)).status_code == 204
    assert s3.get_object(Bucket=BUCKET, Key=staged)["Body"].read() == bytes(other)
    stored = s3.head_object(Bucket=BUCKET, Key=record["key"])
    assert stored["ETag"] == f'"{record["etag"]}"'
    assert complete(client, carol, grant["uploadId"]).json()["etag"] == record["etag"]
    out = server.cli("cleanup")
    assert re.search(r"staged blobs deleted: [1-9]", out.stdout), out.stdout
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key=staged)
    assert client.get(f"/storage/files/{record['key']}", headers=carol.headers).json()["etag"] == record["etag"]
    url = client.post(f"/storage/files/{record['key']}/url", headers=carol.headers).json()["url"]
    assert httpx.get(url).content == first


def test_public_endpoint_url_presigned_urls_point_there_and_the_bytes_land(
    tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, s3: S3Client
) -> None:
    # The processes talk to s3.endpoint_url (127.0.0.1:port); clients get URLs for the same store
    # by the name s3.public_endpoint_url gives (localhost:port), as compose's seaweedfs:8333 and
    # localhost:8333.
    public = moto_endpoint.replace("127.0.0.1", "localhost")
    assert public != moto_endpoint
    env = clean_env(moto_backend_env(moto_endpoint, BUCKET, {"UPDOWN_S3__PUBLIC_ENDPOINT_URL": public}))
    root = tmp_path_factory.mktemp("serve-s3-public")
    with Server(data_dir=root / "data", env=env) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        dave = user(c, srv)
        data = png(64, 48, seed=41)
        grant = initiate(
            c, dave, accessLevel="protected", name="s3/public.png", contentType="image/png", size=len(data)
        )
        assert grant.status_code == 201, grant.text
        body = grant.json()
        target = urlsplit(body["put"]["url"])
        assert f"{target.scheme}://{target.netloc}" == public
        assert put_bytes(body, data).status_code == 200
        done = complete(c, dave, body["uploadId"])  # updown HEADs it at endpoint_url
        assert done.status_code in (200, 202), done.text
        key = f"protected/{dave.identity_id}/s3/public.png"
        assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == len(data)
        url = c.post(f"/storage/files/{key}/url", headers=dave.headers).json()["url"]
        assert url.startswith(f"{public}/{BUCKET}/")
        assert httpx.get(url).content == data
        big = initiate(
            c,
            dave,
            accessLevel="private",
            name="s3/big.zip",
            contentType="application/zip",
            size=11 * MIB,
            mode="multipart",
            partSize=5 * MIB,
        )
        assert big.status_code == 201, big.text
        parts = big.json()["multipart"]["parts"]
        assert len(parts) == 3
        assert all(p["url"].startswith(f"{public}/{BUCKET}/") for p in parts)
        # The UI's pages may reach the public endpoint, not the internal one.
        csp = c.get("/", headers={"accept": "text/html"}).headers["content-security-policy"]
        assert public in csp
        assert moto_endpoint not in csp
