"""The S3 data plane against a real `updown serve`: presigned (ours and boto3's) PUT/GET/HEAD/DELETE,
ranges and conditionals, every refusal as S3 XML, and nothing stored by a refused or cut-off upload.

Signed with the data plane's service credentials (`s3_helpers.service_creds`: on the S3 backend,
the store's own keys) for ``server.url + "/s3"``: in the cluster run that is the nginx front, and
updown's data plane answers there on the S3 backend too. What is stored is looked at where the
backend keeps it: <data>/objects on the local disk, the store's bucket on S3.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.e2e.s3_helpers import service_creds, store_bucket, store_client
from tests.support.processes import Server, clean_env
from updown.core.postpolicy import presign_post
from updown.core.sigv4 import Credentials, Signer, object_url

REGION = "us-east-1"
SMALL_MAX = 1000
ORIGIN = "https://app.example.com"


def credentials(server: Server) -> Credentials:
    creds = service_creds(server)
    return Credentials(creds.access_key_id, creds.secret_access_key)


def presign(
    server: Server,
    method: str,
    key: str,
    *,
    headers: Mapping[str, str] | None = None,
    expires: int = 300,
    now: float | None = None,
    query: Mapping[str, str] | None = None,
    region: str = REGION,
    service: str = "s3",
    creds: Credentials | None = None,
) -> str:
    signer = Signer(creds or credentials(server), region, service)
    url = object_url(f"{server.url}/s3", "files", key)
    return signer.presign(
        method, url, expires=expires, now=time.time() if now is None else now, headers=headers, query=query
    )


def put(server: Server, key: str, body: bytes, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return httpx.put(presign(server, "PUT", key, headers=headers), content=body, headers=dict(headers or {}))


def get(server: Server, key: str, headers: Mapping[str, str] | None = None, **kw: Any) -> httpx.Response:
    return httpx.get(presign(server, "GET", key, **kw), headers=dict(headers or {}))


def quoted_md5(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


def parse_xml(data: bytes) -> ET.Element:
    return ET.fromstring(data)  # noqa: S314 - our own server's answer


def s3_error(r: httpx.Response) -> tuple[str, str]:
    assert r.headers["content-type"] == "application/xml"
    root = parse_xml(r.content)
    assert root.tag == "Error"
    return root.findtext("Code") or "", root.findtext("Message") or ""


def raw_request(
    server: Server, method: str, target: str, headers: Mapping[str, str] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """A request sent as written (http.client keeps ``..`` and escapes in the path verbatim)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=dict(headers or {}))
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


# What the workers write meanwhile for earlier uploads (on a shared cluster): staged uploads and
# the variants beside processed files. Nothing a data-plane PUT writes.
_BACKGROUND = ("_uploads/", "/_variants/")


def stored_objects(server: Server) -> set[str]:
    """Everything stored, partly written included: on the local disk every file under
    <data>/objects (temp files too); on S3 the keys in the bucket and the open multipart uploads,
    less what background work writes (``_BACKGROUND``)."""
    store = store_client(server)
    if store is None:
        return {str(p) for p in (server.data_dir / "objects").rglob("*") if p.is_file()}
    bucket = store_bucket(server)
    found: set[str] = set()
    for page in store.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found.update(o["Key"] for o in page.get("Contents", []))
    for page in store.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        found.update(f"{u['Key']} (multipart {u['UploadId']})" for u in page.get("Uploads", []))
    return {k for k in found if not any(part in k for part in _BACKGROUND)}


@pytest.fixture(scope="module")
def boto(server: Server) -> Any:
    creds = credentials(server)
    return boto3.client(
        "s3",
        endpoint_url=f"{server.url}/s3",
        region_name=REGION,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a 1000-byte object limit and one CORS origin."""
    root = tmp_path_factory.mktemp("small")
    env = clean_env({"UPDOWN_STORAGE__MAX_OBJECT_SIZE": str(SMALL_MAX), "UPDOWN_STORAGE__CORS_ORIGINS": ORIGIN})
    srv = Server(data_dir=root / "data", env=env).start()
    try:
        yield srv
    finally:
        srv.stop()


# --------------------------------------------------------------------------- round trips


def test_dataplane_put_get_head_delete_round_trip(server: Server) -> None:
    body = b"hello, data plane\n" * 1000
    headers = {"content-type": "text/plain; charset=utf-8", "x-amz-meta-title": "Hello", "x-amz-meta-n": "42"}
    r = put(server, "public/round/trip.txt", body, headers)
    assert r.status_code == 200
    assert r.headers["etag"] == quoted_md5(body)

    g = get(server, "public/round/trip.txt")
    assert g.status_code == 200
    assert g.content == body
    assert g.headers["etag"] == quoted_md5(body)
    assert g.headers["content-type"] == "text/plain; charset=utf-8"
    assert g.headers["content-length"] == str(len(body))
    assert (g.headers["x-amz-meta-title"], g.headers["x-amz-meta-n"]) == ("Hello", "42")
    assert g.headers["x-content-type-options"] == "nosniff"
    assert g.headers["content-security-policy"] == "sandbox"
    assert g.headers["content-disposition"] == "attachment"
    assert g.headers["accept-ranges"] == "bytes"
    assert g.headers["last-modified"].endswith(" GMT")

    h = httpx.head(presign(server, "HEAD", "public/round/trip.txt"))
    assert h.status_code == 200
    assert h.content == b""
    assert h.headers["content-length"] == str(len(body))
    assert h.headers["etag"] == g.headers["etag"]

    d = httpx.delete(presign(server, "DELETE", "public/round/trip.txt"))
    assert d.status_code == 204
    gone = get(server, "public/round/trip.txt")
    assert gone.status_code == 404
    assert s3_error(gone)[0] == "NoSuchKey"
    assert httpx.delete(presign(server, "DELETE", "public/round/trip.txt")).status_code == 204


def test_dataplane_large_object_full_get_streams_every_byte(server: Server) -> None:
    body = bytes(range(256)) * (12 * 4096)  # 12 MiB: several storage chunks, sent zero-copy
    assert put(server, "big/twelve.bin", body).status_code == 200
    g = get(server, "big/twelve.bin")
    assert g.status_code == 200
    assert quoted_md5(g.content) == quoted_md5(body)


def test_dataplane_concurrent_uploads_each_store_their_own_bytes(server: Server) -> None:
    # Bodies of a few ring spans each, uploaded at once to distinct keys and to one shared key:
    # every distinct key holds exactly its body, and the shared key exactly one of the bodies.
    bodies = [os.urandom(3 * 1024 * 1024 + i * 4099) for i in range(6)]

    def upload(i: int) -> tuple[int, int, str, str]:
        own = put(server, f"conc/own-{i}.bin", bodies[i])
        shared = put(server, "conc/shared.bin", bodies[i])
        return own.status_code, shared.status_code, own.headers["etag"], shared.headers["etag"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(upload, range(6)))
    for i, (own_status, shared_status, own_etag, shared_etag) in enumerate(results):
        assert (own_status, shared_status) == (200, 200)
        assert own_etag == shared_etag == quoted_md5(bodies[i])
        assert get(server, f"conc/own-{i}.bin").content == bodies[i]
    shared = get(server, "conc/shared.bin")
    assert shared.content in bodies
    assert shared.headers["etag"] == quoted_md5(shared.content)


def test_dataplane_many_writers_of_one_key_all_succeed(server: Server) -> None:
    # Small bodies at once to one key: every PUT answers 200 and the row and bytes agree, whoever
    # won (a read-then-insert of the file row made some of them fail on the database).
    bodies = [f"writer {i} ".encode() * (i + 1) for i in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda b: put(server, "conc/many.txt", b), bodies))
    assert [a.status_code for a in answers] == [200] * len(bodies), [a.text for a in answers if a.status_code != 200]
    final = get(server, "conc/many.txt")
    assert final.content in bodies
    assert final.headers["etag"] == quoted_md5(final.content)


@pytest.mark.parametrize(
    "key",
    ["public/with space.txt", "public/ünïcødé/日本.txt", "public/a+b=c~d.txt", "public/100%.txt", "public/x?y#z&w.txt"],
)
def test_dataplane_boto3_presigned_odd_keys_round_trip(server: Server, boto: Any, key: str) -> None:
    body = key.encode() * 3
    url = boto.generate_presigned_url(
        "put_object",
        Params={"Bucket": "files", "Key": key, "ContentType": "text/plain", "Metadata": {"origin": "boto"}},
        ExpiresIn=300,
    )
    r = httpx.put(url, content=body, headers={"content-type": "text/plain", "x-amz-meta-origin": "boto"})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == quoted_md5(body)
    g = httpx.get(boto.generate_presigned_url("get_object", Params={"Bucket": "files", "Key": key}, ExpiresIn=300))
    assert g.status_code == 200
    assert g.content == body
    assert (g.headers["content-type"], g.headers["x-amz-meta-origin"]) == ("text/plain", "boto")
    # Our signer makes the same URL for the same key.
    assert get(server, key).content == body


def test_dataplane_boto3_client_header_signed_calls_work(boto: Any) -> None:
    boto.put_object(Bucket="files", Key="list/a.txt", Body=b"aaa", ContentType="text/plain", Metadata={"k": "v"})
    boto.put_object(Bucket="files", Key="list/b c.txt", Body=b"bb")
    head = boto.head_object(Bucket="files", Key="list/a.txt")
    assert (head["ContentLength"], head["ContentType"], head["Metadata"]) == (3, "text/plain", {"k": "v"})
    assert head["ETag"] == quoted_md5(b"aaa")
    assert boto.get_object(Bucket="files", Key="list/b c.txt")["Body"].read() == b"bb"
    listing = boto.list_objects_v2(Bucket="files", Prefix="list/")
    assert [(o["Key"], o["Size"]) for o in listing["Contents"]] == [("list/a.txt", 3), ("list/b c.txt", 2)]
    page = boto.list_objects_v2(Bucket="files", Prefix="list/", MaxKeys=1)
    assert page["IsTruncated"] is True
    rest = boto.list_objects_v2(Bucket="files", Prefix="list/", ContinuationToken=page["NextContinuationToken"])
    assert [o["Key"] for o in rest["Contents"]] == ["list/b c.txt"]
    boto.delete_object(Bucket="files", Key="list/a.txt")
    with pytest.raises(boto.exceptions.ClientError) as info:
        boto.head_object(Bucket="files", Key="list/a.txt")
    assert info.value.response["Error"]["Code"] == "404"


def test_dataplane_header_signed_body_not_matching_signed_sha256_is_refused(server: Server) -> None:
    creds = credentials(server)
    signed = Signer(creds, REGION).sign_headers(
        "PUT",
        object_url(f"{server.url}/s3", "files", "sha/x.bin"),
        now=time.time(),
        payload_hash=hashlib.sha256(b"expected").hexdigest(),
    )
    r = httpx.put(signed.url, content=b"something else", headers=signed.headers)
    assert r.status_code == 400
    assert s3_error(r)[0] == "XAmzContentSHA256Mismatch"
    assert get(server, "sha/x.bin").status_code == 404


# --------------------------------------------------------------------------- reads: range, conditionals, headers


@pytest.fixture(scope="module")
def digits(server: Server) -> str:
    assert put(server, "read/digits.txt", b"0123456789").status_code == 200
    return "read/digits.txt"


@pytest.mark.parametrize(
    ("header", "status", "content", "content_range"),
    [
        ("bytes=2-4", 206, b"234", "bytes 2-4/10"),
        ("bytes=7-", 206, b"789", "bytes 7-9/10"),
        ("bytes=-3", 206, b"789", "bytes 7-9/10"),
        ("bytes=5-100", 206, b"56789", "bytes 5-9/10"),
        ("bytes=-100", 206, b"0123456789", "bytes 0-9/10"),
        ("bytes=4-2", 200, b"0123456789", None),
        ("bytes=0-1,3-4", 200, b"0123456789", None),
        ("items=0-1", 200, b"0123456789", None),
    ],
)
def test_dataplane_get_range_answers_part(
    server: Server, digits: str, header: str, status: int, content: bytes, content_range: str | None
) -> None:
    r = get(server, digits, {"range": header})
    assert (r.status_code, r.content, r.headers.get("content-range")) == (status, content, content_range)
    assert r.headers["content-length"] == str(len(content))


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=99-200", "bytes=-0"])
def test_dataplane_get_unsatisfiable_range_is_416_invalid_range(server: Server, digits: str, header: str) -> None:
    r = get(server, digits, {"range": header})
    assert r.status_code == 416
    assert s3_error(r)[0] == "InvalidRange"


def test_dataplane_head_range_answers_206_without_body(server: Server, digits: str) -> None:
    r = httpx.head(presign(server, "HEAD", digits), headers={"range": "bytes=1-2"})
    assert (r.status_code, r.headers["content-range"], r.headers["content-length"], r.content) == (
        206,
        "bytes 1-2/10",
        "2",
        b"",
    )


def test_dataplane_get_conditionals_answer_304_and_412(server: Server, digits: str) -> None:
    first = get(server, digits)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for headers in ({"if-none-match": etag}, {"if-none-match": f'"x", {etag}'}, {"if-modified-since": modified}):
        r = get(server, digits, headers)
        assert (r.status_code, r.content, r.headers["etag"]) == (304, b"", etag)
    assert get(server, digits, {"if-none-match": '"other"'}).status_code == 200
    assert get(server, digits, {"if-modified-since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200
    assert get(server, digits, {"if-match": etag}).status_code == 200
    failed = get(server, digits, {"if-match": '"other"'})
    assert failed.status_code == 412
    assert s3_error(failed)[0] == "PreconditionFailed"
    head = httpx.head(presign(server, "HEAD", digits), headers={"if-none-match": etag})
    assert head.status_code == 304


@pytest.mark.parametrize(
    ("ctype", "disposition"),
    [("image/png", None), ("image/jpeg", None), ("image/svg+xml", "attachment"), ("text/html", "attachment")],
)
def test_dataplane_get_only_safe_images_are_inline(server: Server, ctype: str, disposition: str | None) -> None:
    key = f"types/{ctype.replace('/', '_')}"
    assert put(server, key, b"<svg onload=alert(1)>", {"content-type": ctype}).status_code == 200
    r = get(server, key)
    assert r.headers["content-type"] == ctype
    assert r.headers.get("content-disposition") == disposition
    assert r.headers["content-security-policy"] == "sandbox"


def test_dataplane_get_signed_response_overrides_apply(server: Server, digits: str) -> None:
    query = {"response-content-disposition": 'attachment; filename="d.txt"', "response-content-type": "text/csv"}
    r = get(server, digits, query=query)
    assert r.status_code == 200
    assert (r.headers["content-disposition"], r.headers["content-type"]) == ('attachment; filename="d.txt"', "text/csv")


# --------------------------------------------------------------------------- signatures


def test_dataplane_expired_url_is_403_access_denied(server: Server, digits: str) -> None:
    r = get(server, digits, expires=60, now=time.time() - 3600)
    assert r.status_code == 403
    assert s3_error(r) == ("AccessDenied", "Request has expired")


def test_dataplane_url_dated_beyond_skew_in_future_is_refused(server: Server, digits: str) -> None:
    r = get(server, digits, now=time.time() + 3600)
    assert r.status_code == 403
    assert s3_error(r)[0] == "AccessDenied"
    assert get(server, digits, now=time.time() + 300).status_code == 200


def test_dataplane_expires_over_seven_days_is_403(server: Server, digits: str) -> None:
    # S3 answers an out-of-range (or malformed) X-Amz-Expires with 403, other malformed fields with 400.
    url = presign(server, "GET", digits).replace("X-Amz-Expires=300", "X-Amz-Expires=604801")
    r = httpx.get(url)
    assert r.status_code == 403
    assert s3_error(r)[0] == "AuthorizationQueryParametersError"
    r = httpx.get(url.replace("X-Amz-Expires=604801", "X-Amz-Expires=soon"))
    assert r.status_code == 403
    assert s3_error(r)[0] == "AuthorizationQueryParametersError"


def _tampered(server: Server, what: str) -> httpx.Response:
    headers = {"content-type": "text/plain", "x-amz-meta-a": "1"}
    url = presign(server, "PUT", "tamper/a.txt", headers=headers)
    if what == "key":
        return httpx.put(url.replace("tamper/a.txt", "tamper/b.txt"), content=b"x", headers=headers)
    if what == "method":
        return httpx.post(url, content=b"x", headers=headers)
    if what == "header":
        return httpx.put(url, content=b"x", headers={**headers, "x-amz-meta-a": "2"})
    if what == "content-type":
        return httpx.put(url, content=b"x", headers={**headers, "content-type": "text/html"})
    assert what == "expiry"
    return httpx.put(url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000"), content=b"x", headers=headers)


@pytest.mark.parametrize("what", ["key", "header", "content-type", "expiry"])
def test_dataplane_tampered_url_is_signature_does_not_match(server: Server, what: str) -> None:
    r = _tampered(server, what)
    assert r.status_code == 403
    assert s3_error(r)[0] == "SignatureDoesNotMatch"
    assert get(server, "tamper/a.txt").status_code == 404
    assert get(server, "tamper/b.txt").status_code == 404


def test_dataplane_url_used_with_other_method_is_refused(server: Server, digits: str) -> None:
    r = httpx.put(presign(server, "GET", digits), content=b"overwrite")
    assert r.status_code == 403
    assert s3_error(r)[0] == "SignatureDoesNotMatch"
    assert httpx.delete(presign(server, "GET", digits)).status_code == 403
    assert get(server, digits).content == b"0123456789"


@pytest.mark.parametrize(
    "headers",
    [{"x-amz-meta-extra": "1"}, {"content-type": "text/html"}],
    ids=["unsigned-metadata", "unsigned-content-type"],
)
def test_dataplane_unsigned_headers_on_put_are_refused(server: Server, headers: dict[str, str]) -> None:
    r = httpx.put(presign(server, "PUT", "unsigned/a.txt"), content=b"x", headers=headers)
    assert r.status_code == 403
    assert s3_error(r)[0] == "AccessDenied"
    assert get(server, "unsigned/a.txt").status_code == 404


@pytest.mark.parametrize(
    ("kw", "status", "code"),
    [
        ({"region": "eu-west-1"}, 400, "AuthorizationQueryParametersError"),
        ({"service": "iam"}, 400, "AuthorizationQueryParametersError"),
        ({"creds": Credentials("AKIDUNKNOWN0000000000", "secret")}, 403, "InvalidAccessKeyId"),
    ],
    ids=["region", "service", "unknown-key"],
)
def test_dataplane_wrong_credential_scope_is_refused(
    server: Server, digits: str, kw: dict[str, Any], status: int, code: str
) -> None:
    r = get(server, digits, **kw)
    assert r.status_code == status
    assert s3_error(r)[0] == code


def test_dataplane_missing_or_malformed_signature_fields_are_refused(server: Server, digits: str) -> None:
    anonymous = httpx.get(f"{server.url}/s3/files/{digits}")
    assert anonymous.status_code == 403
    assert s3_error(anonymous)[0] == "AccessDenied"
    url = presign(server, "GET", digits)
    for broken in (
        url.replace("&X-Amz-Date=", "&X-Amz-Datum="),
        url.replace("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-MD5"),
        url.replace("%2Faws4_request", "%2Faws5_request"),
    ):
        r = httpx.get(broken)
        assert r.status_code == 400, broken
        assert s3_error(r)[0] == "AuthorizationQueryParametersError"


def test_dataplane_other_bucket_is_404_no_such_bucket(server: Server) -> None:
    signer = Signer(credentials(server), REGION)
    url = signer.presign("GET", object_url(f"{server.url}/s3", "other", "a.txt"), expires=60, now=time.time())
    r = httpx.get(url)
    assert r.status_code == 404
    assert s3_error(r)[0] == "NoSuchBucket"


# --------------------------------------------------------------------------- bad input writes nothing


@pytest.mark.parametrize(
    "raw_key",
    [
        "public/../private/x.txt",
        "public/%2e%2e/private/x.txt",
        "public/%2E%2E/x.txt",
        "public/./x.txt",
        "public/a%5Cb.txt",
        "public/a\\b.txt",
        pytest.param(
            "public/a%00b.txt",
            marks=pytest.mark.embedded("nginx in front refuses a NUL in the path itself (its own HTML 400)"),
        ),
        "public/%252e%252e/x.txt",
        "/public/x.txt",
        "public/" + "k" * 1020,
        "public/%ff.txt",
    ],
)
def test_dataplane_bad_key_is_4xx_and_writes_nothing(server: Server, raw_key: str) -> None:
    before = stored_objects(server)
    signer = Signer(credentials(server), REGION)
    # Signed as sent, so the signature holds and only the key itself is at fault.
    url = signer.presign("PUT", f"{server.url}/s3/files/{raw_key}", expires=60, now=time.time())
    target = url.split(str(server.port), 1)[1]
    status, headers, body = raw_request(server, "PUT", target, {"content-length": "5"}, b"owned")
    assert 400 <= status < 500
    assert headers["content-type"] == "application/xml"
    root = parse_xml(body)  # well-formed, even for a key holding NUL
    assert (root.findtext("Code"), root.findtext("Key")) == ("InvalidArgument", None)
    assert stored_objects(server) == before


def test_dataplane_header_section_over_8_kib_is_refused(server: Server, digits: str) -> None:
    r = httpx.get(presign(server, "GET", digits), headers={"x-filler": "a" * 9000})
    assert r.status_code == 400
    assert s3_error(r)[0] == "RequestHeaderSectionTooLarge"
    assert httpx.get(presign(server, "GET", digits), headers={"x-filler": "a" * 7000}).status_code == 200


def test_dataplane_put_without_length_or_chunking_is_411(server: Server) -> None:
    url = presign(server, "PUT", "nolength/a.txt")
    target = url.split(str(server.port), 1)[1]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\n\r\n".encode())
        answer = _read_all(s)
    assert answer.startswith(b"HTTP/1.1 411")
    assert b"<Code>MissingContentLength</Code>" in answer


def test_dataplane_chunked_put_is_stored(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"abc"
        yield b"def"

    r = httpx.put(presign(server, "PUT", "chunked/a.txt"), content=chunks())
    assert r.status_code == 200
    assert get(server, "chunked/a.txt").content == b"abcdef"


@pytest.mark.parametrize("chunked", [False, True])
def test_dataplane_body_over_max_size_is_entity_too_large(small_server: Server, chunked: bool) -> None:
    body = b"x" * (SMALL_MAX + 1)
    key = f"max/{chunked}.bin"
    url = presign(small_server, "PUT", key)
    r = httpx.put(url, content=iter([body]) if chunked else body)
    assert r.status_code == 400
    assert s3_error(r)[0] == "EntityTooLarge"
    assert get(small_server, key).status_code == 404
    assert httpx.put(url, content=b"x" * SMALL_MAX).status_code == 200


def _read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def _cut_off_put(server: Server, key: str, declared: int, sent: int) -> None:
    """PUT declaring ``declared`` bytes, send ``sent`` of them, then close the connection."""
    target = presign(server, "PUT", key).split(str(server.port), 1)[1]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(
            f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Length: {declared}\r\n\r\n".encode()
        )
        block = b"n" * 65536
        left = sent
        while left > 0:
            s.sendall(block[: min(left, len(block))])
            left -= len(block)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(10)
        with contextlib.suppress(OSError):
            _read_all(s)


def _nothing_partial(server: Server, key: str) -> bool:
    """No partly written upload left: no temp file (local disk), no open multipart upload of
    ``key`` in the store (S3)."""
    store = store_client(server)
    if store is None:
        return not any((server.data_dir / "objects" / "tmp").iterdir())
    return not store.list_multipart_uploads(Bucket=store_bucket(server), Prefix=key).get("Uploads")


def _wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


@pytest.mark.parametrize(("declared", "sent"), [(100, 50), (64 << 20, 4 << 20)], ids=["short-body", "disconnect"])
def test_dataplane_cut_off_upload_keeps_previous_version(server: Server, declared: int, sent: int) -> None:
    key = f"cut/{declared}.bin"
    assert put(server, key, b"previous version").status_code == 200
    _cut_off_put(server, key, declared, sent)
    assert _wait_for(lambda: _nothing_partial(server, key))
    r = get(server, key)
    assert (r.status_code, r.content) == (200, b"previous version")


# --------------------------------------------------------------------------- POST form uploads


def _post_form(url: str, fields: Mapping[str, str], content: bytes, filename: str = "photo.jpg") -> httpx.Response:
    return httpx.post(url, data=dict(fields), files={"file": (filename, content, "image/jpeg")})


def test_dataplane_post_form_upload_with_our_policy(server: Server) -> None:
    signer = Signer(credentials(server), REGION)
    form = presign_post(
        signer,
        f"{server.url}/s3/files",
        "files",
        "post/ours/${filename}",
        now=time.time(),
        expires=300,
        fields={"Content-Type": "image/jpeg", "x-amz-meta-title": "From a form"},
        conditions=[
            ["content-length-range", 1, 100],
            {"Content-Type": "image/jpeg"},
            {"x-amz-meta-title": "From a form"},
        ],
    )
    r = _post_form(form.url, form.fields, b"\xff\xd8 jpeg bytes", "cat.jpg")
    assert r.status_code == 204, r.text
    assert r.headers["etag"] == quoted_md5(b"\xff\xd8 jpeg bytes")
    g = get(server, "post/ours/cat.jpg")
    assert (g.content, g.headers["content-type"], g.headers["x-amz-meta-title"]) == (
        b"\xff\xd8 jpeg bytes",
        "image/jpeg",
        "From a form",
    )


def test_dataplane_post_form_upload_with_boto3_policy_and_201(server: Server, boto: Any) -> None:
    post = boto.generate_presigned_post(
        "files",
        "post/boto/a.bin",
        Fields={"success_action_status": "201"},
        Conditions=[["content-length-range", 1, 1000], {"success_action_status": "201"}],
        ExpiresIn=300,
    )
    r = _post_form(post["url"], post["fields"], b"form body")
    assert r.status_code == 201, r.text
    root = parse_xml(r.content)
    assert (root.findtext("Key"), root.findtext("Bucket")) == ("post/boto/a.bin", "files")
    assert get(server, "post/boto/a.bin").content == b"form body"


@pytest.mark.parametrize(
    ("size", "status", "code"), [(11, 400, "EntityTooLarge"), (1, 400, "InvalidArgument")], ids=["big", "small"]
)
def test_dataplane_post_form_outside_length_range_stores_nothing(
    server: Server, boto: Any, size: int, status: int, code: str
) -> None:
    key = f"post/range/{size}.bin"
    assert put(server, key, b"previous").status_code == 200
    post = boto.generate_presigned_post("files", key, Conditions=[["content-length-range", 2, 10]], ExpiresIn=300)
    r = _post_form(post["url"], post["fields"], b"z" * size)
    assert r.status_code == status
    assert s3_error(r)[0] == code
    assert get(server, key).content == b"previous"


def test_dataplane_post_form_policy_violations_are_refused(server: Server, boto: Any) -> None:
    post = boto.generate_presigned_post(
        "files", "post/only/${filename}", Conditions=[["starts-with", "$Content-Type", "image/"]], ExpiresIn=300
    )
    fields = {**post["fields"], "Content-Type": "text/html"}
    r = _post_form(post["url"], fields, b"<script>")
    assert r.status_code == 403
    assert s3_error(r)[0] == "AccessDenied"
    forged = {**post["fields"], "key": "post/elsewhere/x", "Content-Type": "image/png"}
    assert s3_error(_post_form(post["url"], forged, b"x"))[0] == "AccessDenied"
    tampered = {**post["fields"], "x-amz-signature": "0" * 64, "Content-Type": "image/png"}
    assert s3_error(_post_form(post["url"], tampered, b"x"))[0] == "SignatureDoesNotMatch"
    assert get(server, "post/only/photo.jpg").status_code == 404


# --------------------------------------------------------------------------- CORS


def test_dataplane_cors_preflight_from_configured_origin_is_allowed(small_server: Server) -> None:
    r = httpx.options(
        f"{small_server.url}/s3/files/public/a.jpg",
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "PUT",
            "access-control-request-headers": "content-type,x-amz-meta-title",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "PUT" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "content-type,x-amz-meta-title"
    g = httpx.put(presign(small_server, "PUT", "cors/a.txt"), content=b"x", headers={"origin": ORIGIN})
    assert g.headers["access-control-allow-origin"] == ORIGIN
    assert "ETag" in g.headers["access-control-expose-headers"]


def _refused_preflight(srv: Server, origin: str) -> None:
    r = httpx.options(
        f"{srv.url}/s3/files/public/a.jpg", headers={"origin": origin, "access-control-request-method": "PUT"}
    )
    assert r.status_code == 403
    assert "access-control-allow-origin" not in r.headers
    assert s3_error(r)[0] == "AccessDenied"


def test_dataplane_cors_preflight_from_other_origin_is_refused(small_server: Server) -> None:
    _refused_preflight(small_server, "https://evil.example")


def test_dataplane_cors_preflight_without_configured_origins_is_refused(server: Server) -> None:
    _refused_preflight(server, ORIGIN)


# --------------------------------------------------------------------------- streaming memory


def _worker_pids(server: Server) -> list[int]:
    assert server.proc is not None
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.proc.pid:
            pids.append(int(stat.parent.name))
    return pids


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
@pytest.mark.embedded("measures the RSS of the one server's worker processes")
def test_dataplane_1_gib_upload_keeps_worker_rss_flat(server: Server) -> None:
    import threading

    size, block = 1 << 30, bytes(range(256)) * 4096  # 1 MiB, sent 1024 times
    get(server, "read/digits.txt")  # warm the worker up before measuring
    workers = _worker_pids(server)
    assert workers
    before = sum(_rss_kib(p) for p in workers)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(_rss_kib(p) for p in workers))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    target = presign(server, "PUT", "big/one-gib.bin").split(str(server.port), 1)[1]
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as s:
            s.sendall(
                f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n".encode()
            )
            for _ in range(size // len(block)):
                s.sendall(block)
                md5.update(block)
            answer = _read_all(s)
    finally:
        done.set()
        sampler.join()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert f'etag: "{md5.hexdigest()}"'.encode() in answer.lower()
    assert (peak - before) < 64 * 1024, f"worker RSS rose by {(peak - before) // 1024} MiB"
    assert httpx.delete(presign(server, "DELETE", "big/one-gib.bin")).status_code == 204


def test_dataplane_quoted_key_in_error_document(server: Server) -> None:
    r = get(server, "missing/ä b.txt")
    assert r.status_code == 404
    root = parse_xml(r.content)
    assert root.findtext("Key") == "missing/ä b.txt"
