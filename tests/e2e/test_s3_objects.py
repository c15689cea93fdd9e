"""The S3 API's object verbs against a real `updown serve`, on both storage backends: CopyObject,
DeleteObjects, Content-MD5 and x-amz-checksum-* on PUT, conditional writes and deletes, aws-chunked
(streaming) bodies, non-ASCII metadata; with service credentials and with signed-in users'
temporary credentials (own ``private/`` allowed, another user's denied, per-key errors)."""

from __future__ import annotations

import base64
import hashlib
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.e2e.files_helpers import Caller
from tests.e2e.s3_helpers import (
    BACKENDS,
    BUCKET,
    REGION,
    Creds,
    error_code,
    md5_hex,
    s3_client,
    serve,
    service_creds,
    user_creds,
)
from tests.e2e.userpool_helpers import bearer
from tests.support.processes import Server
from updown.core import awschunked
from updown.core.checksums import checksum
from updown.core.sigv4 import Credentials, Signer, object_url


@pytest.fixture(scope="module", params=BACKENDS)
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp(f"s3objects-{request.param}")
    with serve(root, request.param) as server:
        yield server


@pytest.fixture(scope="module")
def svc(srv: Server) -> Any:
    return s3_client(srv, service_creds(srv))


@pytest.fixture(scope="module")
def alice(srv: Server) -> tuple[Caller, Creds, Any]:
    caller, creds = user_creds(srv)
    return caller, creds, s3_client(srv, creds)


@pytest.fixture(scope="module")
def bob(srv: Server) -> tuple[Caller, Creds, Any]:
    caller, creds = user_creds(srv)
    return caller, creds, s3_client(srv, creds)


def _body(s3: Any, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return data


def _exists(s3: Any, key: str) -> bool:
    try:
        s3.head_object(Bucket=BUCKET, Key=key)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code in ("404", "NoSuchKey"):
            return False
        raise
    return True


def _b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _signed(
    srv: Server,
    creds: Creds,
    method: str,
    key: str | None,
    *,
    headers: Mapping[str, str] | None = None,
    payload_hash: str = "UNSIGNED-PAYLOAD",
    query: str = "",
) -> tuple[str, dict[str, str], str]:
    """A header-signed request as an SDK makes it: (url, headers, signature)."""
    url = object_url(f"{srv.url}/s3", BUCKET, key) if key is not None else f"{srv.url}/s3/{BUCKET}"
    if query:
        url += f"?{query}"
    signer = Signer(Credentials(creds.access_key_id, creds.secret_access_key, creds.session_token), REGION)
    signed = signer.sign_headers(method, url, now=time.time(), headers=headers, payload_hash=payload_hash)
    return url, {**signed.headers, **(headers or {})}, signed.signature


def _error(r: httpx.Response) -> str:
    root = ET.fromstring(r.content)  # noqa: S314 - our own server's answer
    assert root.tag == "Error", r.content
    return root.findtext("Code") or ""


# --------------------------------------------------------------------------- CopyObject


def test_copy_object_copies_bytes_type_and_metadata(svc: Any) -> None:
    svc.put_object(
        Bucket=BUCKET, Key="public/copy/src.txt", Body=b"source", ContentType="text/plain", Metadata={"a": "1"}
    )
    answer = svc.copy_object(Bucket=BUCKET, Key="public/copy/dst.txt", CopySource=f"{BUCKET}/public/copy/src.txt")
    result = answer["CopyObjectResult"]
    assert result["ETag"] == f'"{md5_hex(b"source")}"'
    assert abs(result["LastModified"].timestamp() - time.time()) < 120
    head = svc.head_object(Bucket=BUCKET, Key="public/copy/dst.txt")
    assert head["ContentType"] == "text/plain"
    assert head["Metadata"] == {"a": "1"}
    assert _body(svc, "public/copy/dst.txt") == b"source"
    # x-amz-meta-* of a COPY-directive request are ignored, as S3 does.
    svc.copy_object(
        Bucket=BUCKET, Key="public/copy/dst2.txt", CopySource=f"{BUCKET}/public/copy/src.txt", Metadata={"b": "2"}
    )
    assert svc.head_object(Bucket=BUCKET, Key="public/copy/dst2.txt")["Metadata"] == {"a": "1"}


def test_copy_object_replace_directive_takes_type_and_metadata_from_request(svc: Any) -> None:
    svc.put_object(Bucket=BUCKET, Key="public/copy/r.txt", Body=b"r", ContentType="text/plain", Metadata={"a": "1"})
    svc.copy_object(
        Bucket=BUCKET,
        Key="public/copy/r2.bin",
        CopySource={"Bucket": BUCKET, "Key": "public/copy/r.txt"},
        MetadataDirective="REPLACE",
        ContentType="application/x-thing",
        Metadata={"b": "2"},
    )
    head = svc.head_object(Bucket=BUCKET, Key="public/copy/r2.bin")
    assert (head["ContentType"], head["Metadata"]) == ("application/x-thing", {"b": "2"})
    # Onto itself: refused unless something changes (REPLACE).
    assert error_code(
        svc.copy_object, Bucket=BUCKET, Key="public/copy/r.txt", CopySource=f"{BUCKET}/public/copy/r.txt"
    ) == ("InvalidRequest")
    svc.copy_object(
        Bucket=BUCKET,
        Key="public/copy/r.txt",
        CopySource=f"{BUCKET}/public/copy/r.txt",
        MetadataDirective="REPLACE",
        Metadata={"c": "3"},
    )
    head = svc.head_object(Bucket=BUCKET, Key="public/copy/r.txt")
    assert head["Metadata"] == {"c": "3"}
    assert _body(svc, "public/copy/r.txt") == b"r"


def test_copy_object_encoded_source_key(svc: Any) -> None:
    key = "public/copy/ünï cödé+&?.txt"
    svc.put_object(Bucket=BUCKET, Key=key, Body=b"odd")
    svc.copy_object(Bucket=BUCKET, Key="public/copy/odd.txt", CopySource={"Bucket": BUCKET, "Key": key})
    assert _body(svc, "public/copy/odd.txt") == b"odd"


def test_copy_object_source_conditions(svc: Any) -> None:
    svc.put_object(Bucket=BUCKET, Key="public/cond/src", Body=b"c")
    etag = f'"{md5_hex(b"c")}"'
    past, future = formatdate(time.time() - 86400, usegmt=True), formatdate(time.time() + 86400, usegmt=True)
    src = f"{BUCKET}/public/cond/src"
    failing: list[dict[str, str]] = [
        {"CopySourceIfMatch": '"0000"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfModifiedSince": future},
        {"CopySourceIfUnmodifiedSince": past},
        {"CopySourceIfNoneMatch": etag, "CopySourceIfModifiedSince": past},
    ]
    for kw in failing:
        assert error_code(svc.copy_object, Bucket=BUCKET, Key="public/cond/dst", CopySource=src, **kw) == (
            "PreconditionFailed"
        ), kw
    assert not _exists(svc, "public/cond/dst")
    # If-Match holding wins over If-Unmodified-Since failing, as in S3.
    svc.copy_object(
        Bucket=BUCKET, Key="public/cond/dst", CopySource=src, CopySourceIfMatch=etag, CopySourceIfUnmodifiedSince=past
    )
    svc.copy_object(Bucket=BUCKET, Key="public/cond/dst2", CopySource=src, CopySourceIfNoneMatch='"0000"')
    assert _body(svc, "public/cond/dst2") == b"c"


def test_copy_object_refusals(svc: Any, srv: Server) -> None:
    assert error_code(svc.copy_object, Bucket=BUCKET, Key="public/x", CopySource=f"{BUCKET}/public/none") == "NoSuchKey"
    assert error_code(svc.copy_object, Bucket=BUCKET, Key="public/x", CopySource="other/public/a") == "NoSuchBucket"
    svc.put_object(Bucket=BUCKET, Key="public/ver", Body=b"v")
    assert (
        error_code(
            svc.copy_object,
            Bucket=BUCKET,
            Key="public/x",
            CopySource={"Bucket": BUCKET, "Key": "public/ver", "VersionId": "abc"},
        )
        == "InvalidArgument"
    )
    # A copy never lands an upload intent's staging key.
    assert error_code(svc.copy_object, Bucket=BUCKET, Key="_uploads/abc", CopySource=f"{BUCKET}/public/ver") == (
        "AccessDenied"
    )
    assert (
        error_code(
            svc.copy_object, Bucket=BUCKET, Key="public/x", CopySource=f"{BUCKET}/public/ver", MetadataDirective="MOVE"
        )
        == "InvalidArgument"
    )


def test_copy_object_temporary_credentials_own_private_only(
    srv: Server, svc: Any, alice: tuple[Caller, Creds, Any], bob: tuple[Caller, Creds, Any]
) -> None:
    a_caller, a_creds, a = alice
    _, b_creds, b = bob
    mine = f"private/{a_creds.identity_id}"
    a.put_object(Bucket=BUCKET, Key=f"{mine}/orig.txt", Body=b"alice's", ContentType="text/plain")
    a.copy_object(Bucket=BUCKET, Key=f"{mine}/copy.txt", CopySource=f"{BUCKET}/{mine}/orig.txt")
    assert _body(a, f"{mine}/copy.txt") == b"alice's"
    # The copy is recorded as a direct PUT is: the file API lists it as alice's.
    with httpx.Client(base_url=srv.url, timeout=30) as client:
        r = client.get(f"/storage/files/{mine}/copy.txt", headers=bearer(a_caller.token))
        assert r.status_code == 200, r.text
        record = r.json()
    assert (record["key"], record["identityId"], record["size"]) == (f"{mine}/copy.txt", a_creds.identity_id, 7)
    # Into another identity's private/, or out of it: denied.
    theirs = f"private/{b_creds.identity_id}"
    b.put_object(Bucket=BUCKET, Key=f"{theirs}/secret.txt", Body=b"bob's")
    assert error_code(
        a.copy_object, Bucket=BUCKET, Key=f"{theirs}/planted.txt", CopySource=f"{BUCKET}/{mine}/orig.txt"
    ) == ("AccessDenied")
    assert error_code(
        a.copy_object, Bucket=BUCKET, Key=f"{mine}/stolen.txt", CopySource=f"{BUCKET}/{theirs}/secret.txt"
    ) == ("AccessDenied")
    missing = error_code(a.copy_object, Bucket=BUCKET, Key=f"{mine}/stolen.txt", CopySource=f"{BUCKET}/{theirs}/none")
    assert missing == "AccessDenied"  # the same answer whether or not the source exists
    assert not _exists(svc, f"{theirs}/planted.txt")
    assert not _exists(svc, f"{mine}/stolen.txt")
    # Variants are processing's, not a user's to plant.
    assert error_code(
        a.copy_object, Bucket=BUCKET, Key=f"{mine}/_variants/thumbnail/x.webp", CopySource=f"{BUCKET}/{mine}/orig.txt"
    ) == ("AccessDenied")
    assert (
        error_code(a.put_object, Bucket=BUCKET, Key=f"{mine}/_variants/thumbnail/y.webp", Body=b"x") == "AccessDenied"
    )


def test_copy_object_public_owner_rule(alice: tuple[Caller, Creds, Any], bob: tuple[Caller, Creds, Any]) -> None:
    _, _, a = alice
    _, _, b = bob
    a.put_object(Bucket=BUCKET, Key="public/owned/alice.txt", Body=b"alice's")
    b.put_object(Bucket=BUCKET, Key="public/owned/bob.txt", Body=b"bob's")
    # Bob may copy alice's public object to a new key (he owns the copy), not over hers.
    b.copy_object(Bucket=BUCKET, Key="public/owned/bobs-copy.txt", CopySource=f"{BUCKET}/public/owned/alice.txt")
    assert error_code(
        b.copy_object, Bucket=BUCKET, Key="public/owned/alice.txt", CopySource=f"{BUCKET}/public/owned/bob.txt"
    ) == ("AccessDenied")
    assert _body(a, "public/owned/alice.txt") == b"alice's"
    # The copy is bob's: he can replace it, alice cannot delete it.
    b.put_object(Bucket=BUCKET, Key="public/owned/bobs-copy.txt", Body=b"bob v2")
    assert error_code(a.delete_object, Bucket=BUCKET, Key="public/owned/bobs-copy.txt") == "AccessDenied"


# --------------------------------------------------------------------------- DeleteObjects


def test_delete_objects_verbose_and_quiet(svc: Any) -> None:
    for name in ("a", "b", "c"):
        svc.put_object(Bucket=BUCKET, Key=f"public/del/{name}", Body=name.encode())
    answer = svc.delete_objects(
        Bucket=BUCKET,
        Delete={"Objects": [{"Key": "public/del/a"}, {"Key": "public/del/b"}, {"Key": "public/del/missing"}]},
    )
    assert sorted(d["Key"] for d in answer["Deleted"]) == ["public/del/a", "public/del/b", "public/del/missing"]
    assert "Errors" not in answer
    assert not _exists(svc, "public/del/a")
    assert not _exists(svc, "public/del/b")
    quiet = svc.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "public/del/c"}], "Quiet": True})
    assert "Deleted" not in quiet
    assert "Errors" not in quiet
    assert not _exists(svc, "public/del/c")


def test_delete_objects_thousand_keys_and_per_key_errors(svc: Any) -> None:
    keys = [f"public/many/{i:04d}" for i in range(1000)]
    for key in keys[:5]:
        svc.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    answer = svc.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
    assert "Errors" not in answer
    assert not _exists(svc, keys[0])
    code = error_code(svc.delete_objects, Bucket=BUCKET, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]})
    assert code == "MalformedXML"
    odd = svc.delete_objects(
        Bucket=BUCKET,
        Delete={"Objects": [{"Key": "public/../etc"}, {"Key": "_uploads/x"}, {"Key": "public/v", "VersionId": "abc"}]},
    )
    errors = {e["Key"]: e["Code"] for e in odd["Errors"]}
    assert errors == {"public/../etc": "InvalidArgument", "_uploads/x": "AccessDenied", "public/v": "NoSuchVersion"}


def test_delete_objects_needs_and_verifies_integrity_header(srv: Server, svc: Any) -> None:
    svc.put_object(Bucket=BUCKET, Key="public/md5/keep", Body=b"k")
    doc = (
        b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>public/md5/keep</Key></Object></Delete>'
    )
    creds = service_creds(srv)

    def post(headers: Mapping[str, str], body: bytes = doc) -> httpx.Response:
        sha = hashlib.sha256(body).hexdigest()
        url, all_headers, _ = _signed(srv, creds, "POST", None, headers=headers, payload_hash=sha, query="delete=")
        return httpx.post(url, content=body, headers=all_headers)

    r = post({})
    assert (r.status_code, _error(r)) == (400, "MissingContentMD5")
    r = post({"content-md5": _b64md5(b"other")})
    assert (r.status_code, _error(r)) == (400, "BadDigest")
    r = post({"content-md5": "not-base64!"})
    assert (r.status_code, _error(r)) == (400, "InvalidDigest")
    r = post({"x-amz-checksum-crc32": checksum("crc32", b"other")})
    assert (r.status_code, _error(r)) == (400, "BadDigest")
    r = post({"x-amz-checksum-crc32": "AAAA"})
    assert (r.status_code, _error(r)) == (400, "InvalidRequest")
    assert _exists(svc, "public/md5/keep")
    bad = b"<Delete><Object><Key>public/md5/keep</Key></Object>"
    r = post({"content-md5": _b64md5(bad)}, bad)
    assert (r.status_code, _error(r)) == (400, "MalformedXML")
    dtd = b'<!DOCTYPE d [<!ENTITY e "public/md5/keep">]><Delete><Object><Key>&e;</Key></Object></Delete>'
    r = post({"content-md5": _b64md5(dtd)}, dtd)
    assert (r.status_code, _error(r)) == (400, "MalformedXML")
    assert _exists(svc, "public/md5/keep")
    r = post({"x-amz-checksum-sha256": checksum("sha256", doc)})
    assert r.status_code == 200, r.text
    assert b"<Deleted><Key>public/md5/keep</Key></Deleted>" in r.content
    assert not _exists(svc, "public/md5/keep")


def test_delete_objects_temporary_credentials_per_key_errors(
    svc: Any, alice: tuple[Caller, Creds, Any], bob: tuple[Caller, Creds, Any]
) -> None:
    _, a_creds, a = alice
    _, b_creds, b = bob
    mine, theirs = f"private/{a_creds.identity_id}", f"private/{b_creds.identity_id}"
    a.put_object(Bucket=BUCKET, Key=f"{mine}/d1", Body=b"1")
    b.put_object(Bucket=BUCKET, Key=f"{theirs}/d2", Body=b"2")
    a.put_object(Bucket=BUCKET, Key="public/del-alice", Body=b"3")
    b.put_object(Bucket=BUCKET, Key="public/del-bob", Body=b"4")
    answer = a.delete_objects(
        Bucket=BUCKET,
        Delete={
            "Objects": [
                {"Key": f"{mine}/d1"},
                {"Key": f"{theirs}/d2"},
                {"Key": f"{theirs}/missing"},
                {"Key": f"{mine}/missing"},
                {"Key": "public/del-alice"},
                {"Key": "public/del-bob"},
            ]
        },
    )
    deleted = {d["Key"] for d in answer["Deleted"]}
    errors = {e["Key"]: e["Code"] for e in answer["Errors"]}
    assert deleted == {f"{mine}/d1", f"{mine}/missing", "public/del-alice"}
    assert errors == {
        f"{theirs}/d2": "AccessDenied",
        f"{theirs}/missing": "AccessDenied",
        "public/del-bob": "AccessDenied",
    }
    assert _exists(svc, f"{theirs}/d2")
    assert _exists(svc, "public/del-bob")
    assert not _exists(svc, f"{mine}/d1")


# --------------------------------------------------------------------------- PUT integrity and conditions


def test_put_content_md5_verified(svc: Any) -> None:
    svc.put_object(Bucket=BUCKET, Key="public/md5/ok", Body=b"right", ContentMD5=_b64md5(b"right"))
    assert _body(svc, "public/md5/ok") == b"right"
    assert error_code(
        svc.put_object, Bucket=BUCKET, Key="public/md5/bad", Body=b"right", ContentMD5=_b64md5(b"wrong")
    ) == ("BadDigest")
    assert not _exists(svc, "public/md5/bad")
    # A wrong digest never replaces what is there.
    assert error_code(
        svc.put_object, Bucket=BUCKET, Key="public/md5/ok", Body=b"other", ContentMD5=_b64md5(b"wrong")
    ) == ("BadDigest")
    assert _body(svc, "public/md5/ok") == b"right"
    assert (
        error_code(svc.put_object, Bucket=BUCKET, Key="public/md5/bad", Body=b"x", ContentMD5="AAAA") == "InvalidDigest"
    )


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA1", "SHA256"])
def test_put_checksum_header_verified_and_returned(svc: Any, srv: Server, algorithm: str) -> None:
    data = b"checksummed " * 1000
    answer = svc.put_object(Bucket=BUCKET, Key=f"public/sum/{algorithm}", Body=data, ChecksumAlgorithm=algorithm)
    assert answer[f"Checksum{algorithm}"] == checksum(algorithm.lower(), data)
    creds = service_creds(srv)
    headers = {f"x-amz-checksum-{algorithm.lower()}": checksum(algorithm.lower(), b"something else")}
    url, all_headers, _ = _signed(srv, creds, "PUT", f"public/sum/{algorithm}", headers=headers)
    r = httpx.put(url, content=b"tampered", headers=all_headers)
    assert (r.status_code, _error(r)) == (400, "BadDigest")
    assert _body(svc, f"public/sum/{algorithm}") == data


def test_put_crc32c_and_crc64nvme_headers_verified(svc: Any, srv: Server) -> None:
    creds = service_creds(srv)
    for algorithm in ("crc32c", "crc64nvme"):
        data = f"{algorithm} data".encode() * 100
        url, headers, _ = _signed(
            srv,
            creds,
            "PUT",
            f"public/sum/{algorithm}",
            headers={f"x-amz-checksum-{algorithm}": checksum(algorithm, data)},
        )
        r = httpx.put(url, content=data, headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers[f"x-amz-checksum-{algorithm}"] == checksum(algorithm, data)
        r = httpx.put(url, content=data + b"!", headers=headers)
        assert (r.status_code, _error(r)) == (400, "BadDigest")
        assert _body(svc, f"public/sum/{algorithm}") == data


def test_put_if_none_match_star_and_if_match(svc: Any) -> None:
    svc.put_object(Bucket=BUCKET, Key="public/cw/new", Body=b"first", IfNoneMatch="*")
    assert error_code(svc.put_object, Bucket=BUCKET, Key="public/cw/new", Body=b"second", IfNoneMatch="*") == (
        "PreconditionFailed"
    )
    assert _body(svc, "public/cw/new") == b"first"
    etag = f'"{md5_hex(b"first")}"'
    assert error_code(svc.put_object, Bucket=BUCKET, Key="public/cw/new", Body=b"x", IfMatch='"0000"') == (
        "PreconditionFailed"
    )
    svc.put_object(Bucket=BUCKET, Key="public/cw/new", Body=b"third", IfMatch=etag)
    assert _body(svc, "public/cw/new") == b"third"
    assert error_code(svc.put_object, Bucket=BUCKET, Key="public/cw/none", Body=b"x", IfMatch=etag) == "NoSuchKey"
    assert not _exists(svc, "public/cw/none")


def test_delete_if_match(svc: Any) -> None:
    svc.put_object(Bucket=BUCKET, Key="public/cw/del", Body=b"d")
    assert error_code(svc.delete_object, Bucket=BUCKET, Key="public/cw/del", IfMatch='"0000"') == "PreconditionFailed"
    assert _exists(svc, "public/cw/del")
    svc.delete_object(Bucket=BUCKET, Key="public/cw/del", IfMatch=f'"{md5_hex(b"d")}"')
    assert not _exists(svc, "public/cw/del")


def test_conditional_write_denied_before_condition_is_told(
    svc: Any, alice: tuple[Caller, Creds, Any], bob: tuple[Caller, Creds, Any]
) -> None:
    _, b_creds, b = bob
    _, _, a = alice
    key = f"private/{b_creds.identity_id}/exists"
    b.put_object(Bucket=BUCKET, Key=key, Body=b"b")
    # AccessDenied, not 412: a caller who may not write never learns whether the key exists.
    assert error_code(a.put_object, Bucket=BUCKET, Key=key, Body=b"a", IfNoneMatch="*") == "AccessDenied"
    assert error_code(a.delete_object, Bucket=BUCKET, Key=key, IfMatch='"0000"') == "AccessDenied"


def test_non_ascii_metadata_round_trips(svc: Any, srv: Server) -> None:
    creds = service_creds(srv)
    # RFC 2047, as SDKs encode non-ASCII values, and raw UTF-8 bytes.
    encoded = "=?UTF-8?B?" + base64.b64encode("Grüße, 世界".encode()).decode() + "?="
    url, headers, _ = _signed(srv, creds, "PUT", "public/meta/utf8", headers={"x-amz-meta-title": encoded})
    assert httpx.put(url, content=b"m", headers=headers).status_code == 200
    head = svc.head_object(Bucket=BUCKET, Key="public/meta/utf8")
    served = head["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-title"]
    assert served == encoded  # served back RFC 2047 encoded, as S3 does
    url, headers, _ = _signed(srv, creds, "PUT", "public/meta/raw", headers={"x-amz-meta-place": "Zürich"})
    r = httpx.put(url, content=b"m", headers={k: v.encode() for k, v in headers.items()})
    assert r.status_code == 200, r.text
    head = svc.head_object(Bucket=BUCKET, Key="public/meta/raw")
    assert _rfc2047(head["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-place"]) == "Zürich"


def _rfc2047(value: str) -> str:
    from email.header import decode_header

    return "".join(t.decode(c or "ascii") if isinstance(t, bytes) else t for t, c in decode_header(value))


def test_put_stores_and_serves_cache_control_and_the_other_headers(svc: Any) -> None:
    expires = datetime(2037, 10, 21, 7, 28, tzinfo=UTC)
    svc.put_object(
        Bucket=BUCKET,
        Key="public/hdr/a.txt",
        Body=b"h",
        ContentType="text/plain",
        CacheControl="max-age=60",
        ContentDisposition='attachment; filename="a.txt"',
        ContentEncoding="identity",
        ContentLanguage="de",
        Expires=expires,
    )
    for answer in (
        svc.head_object(Bucket=BUCKET, Key="public/hdr/a.txt"),
        svc.get_object(Bucket=BUCKET, Key="public/hdr/a.txt"),
    ):
        assert answer["CacheControl"] == "max-age=60"
        assert answer["ContentDisposition"] == 'attachment; filename="a.txt"'
        assert answer["ContentEncoding"] == "identity"
        assert answer["ContentLanguage"] == "de"
        assert answer["ResponseMetadata"]["HTTPHeaders"]["expires"] == "Wed, 21 Oct 2037 07:28:00 GMT"
    # The signer's response-* overrides still win.
    url = svc.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "public/hdr/a.txt", "ResponseCacheControl": "no-store"}
    )
    assert httpx.get(url).headers["cache-control"] == "no-store"
    # COPY keeps them, REPLACE takes the request's.
    svc.copy_object(Bucket=BUCKET, Key="public/hdr/b.txt", CopySource=f"{BUCKET}/public/hdr/a.txt")
    assert svc.head_object(Bucket=BUCKET, Key="public/hdr/b.txt")["CacheControl"] == "max-age=60"
    svc.copy_object(
        Bucket=BUCKET,
        Key="public/hdr/c.txt",
        CopySource=f"{BUCKET}/public/hdr/a.txt",
        MetadataDirective="REPLACE",
        CacheControl="no-cache",
    )
    head = svc.head_object(Bucket=BUCKET, Key="public/hdr/c.txt")
    assert head["CacheControl"] == "no-cache"
    assert "ContentLanguage" not in head
    # A stored disposition never shows an unsafe type inline (the data plane's origin).
    svc.put_object(
        Bucket=BUCKET, Key="public/hdr/page.html", Body=b"<p>", ContentType="text/html", ContentDisposition="inline"
    )
    assert svc.head_object(Bucket=BUCKET, Key="public/hdr/page.html")["ContentDisposition"] == "attachment"


def test_keys_with_empty_segments_are_valid(svc: Any, alice: tuple[Caller, Creds, Any]) -> None:
    for key in ("public/empty//segment.txt", "public/empty/folder/"):
        svc.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
        assert _body(svc, key) == key.encode()
    listed = svc.list_objects_v2(Bucket=BUCKET, Prefix="public/empty/")
    assert [o["Key"] for o in listed["Contents"]] == ["public/empty//segment.txt", "public/empty/folder/"]
    svc.copy_object(Bucket=BUCKET, Key="public/empty//copy", CopySource=f"{BUCKET}/public/empty//segment.txt")
    assert _body(svc, "public/empty//copy") == b"public/empty//segment.txt"
    # No way around a policy through an empty segment: private//<id>/ is not private/<id>/.
    _, creds, a = alice
    assert error_code(a.put_object, Bucket=BUCKET, Key=f"private//{creds.identity_id}/x", Body=b"x") == "AccessDenied"
    a.put_object(Bucket=BUCKET, Key=f"private/{creds.identity_id}//x", Body=b"x")
    svc.delete_objects(
        Bucket=BUCKET, Delete={"Objects": [{"Key": "public/empty//segment.txt"}, {"Key": "public/empty/folder/"}]}
    )
    assert not _exists(svc, "public/empty//segment.txt")


# --------------------------------------------------------------------------- aws-chunked bodies


def _trailer_client(srv: Server, creds: Creds) -> Any:
    """boto3 sending its checksums in an aws-chunked trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER),
    as it does over HTTPS by default; here over HTTP, so the trailer is forced."""
    s3 = s3_client(srv, creds)

    def to_trailer(params: Any, context: dict[str, Any], **_: Any) -> None:
        algorithm = context.get("checksum", {}).get("request_algorithm")
        if isinstance(algorithm, dict):
            algorithm["in"] = "trailer"

    s3.meta.events.register("before-call.s3.PutObject", to_trailer)
    s3.meta.events.register("before-call.s3.UploadPart", to_trailer)
    return s3


@pytest.mark.parametrize("algorithm", [None, "CRC32", "SHA1", "SHA256"])
def test_streaming_unsigned_trailer_from_boto3(srv: Server, svc: Any, algorithm: str | None) -> None:
    s3 = _trailer_client(srv, service_creds(srv))
    sent: dict[str, str] = {}
    s3.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.update(request.headers))
    data = bytes(range(256)) * 9000  # a few MiB-sized aws-chunks
    kw = {} if algorithm is None else {"ChecksumAlgorithm": algorithm}
    answer = s3.put_object(Bucket=BUCKET, Key=f"public/stream/{algorithm}", Body=data, **kw)
    assert sent["X-Amz-Content-SHA256"] == b"STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert answer["ETag"] == f'"{md5_hex(data)}"'
    assert _body(svc, f"public/stream/{algorithm}") == data


def test_streaming_trailer_with_temporary_credentials(alice: tuple[Caller, Creds, Any], srv: Server) -> None:
    _, creds, a = alice
    s3 = _trailer_client(srv, creds)
    key = f"private/{creds.identity_id}/streamed.bin"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"mine" * 5000)
    assert _body(a, key) == b"mine" * 5000


def _chunked_put(
    srv: Server,
    key: str,
    mode: str,
    pieces: list[bytes],
    *,
    trailer: str | None = None,
    tamper: Any = None,
    creds: Creds | None = None,
    decoded_length: int | None = None,
) -> httpx.Response:
    """A hand-built aws-chunked PUT: signed chunks (and trailer) chained from the request's signature."""
    creds = creds or service_creds(srv)
    data = b"".join(pieces)
    headers = {"x-amz-decoded-content-length": str(len(data) if decoded_length is None else decoded_length)}
    trailers = None
    if trailer is not None:
        headers["x-amz-trailer"] = f"x-amz-checksum-{trailer}"
        trailers = {f"x-amz-checksum-{trailer}": checksum(trailer, data)}
    url, all_headers, signature = _signed(srv, creds, "PUT", key, headers=headers, payload_hash=mode)
    signer = None
    if mode != awschunked.STREAMING_UNSIGNED_TRAILER:
        signer = awschunked.ChunkSigner.for_request(
            creds.secret_access_key, all_headers["X-Amz-Date"], REGION, "s3", signature
        )
    body = awschunked.encode(pieces, signer=signer, trailers=trailers)
    if tamper is not None:
        body = tamper(body)
    all_headers["content-encoding"] = "aws-chunked"
    return httpx.put(url, content=body, headers=all_headers)


PIECES = [b"a" * 65536, b"b" * 8192, b"c" * 100]


@pytest.mark.parametrize(
    ("mode", "trailer"),
    [
        (awschunked.STREAMING_SIGNED, None),
        (awschunked.STREAMING_SIGNED_TRAILER, "crc32c"),
        (awschunked.STREAMING_SIGNED_TRAILER, "sha256"),
        (awschunked.STREAMING_UNSIGNED_TRAILER, "crc32c"),
        (awschunked.STREAMING_UNSIGNED_TRAILER, "crc64nvme"),
    ],
)
def test_streaming_hand_built_bodies_store_the_decoded_data(
    srv: Server, svc: Any, mode: str, trailer: str | None
) -> None:
    key = f"public/hand/{mode}-{trailer}"
    r = _chunked_put(srv, key, mode, PIECES, trailer=trailer)
    assert r.status_code == 200, r.text
    data = b"".join(PIECES)
    assert r.headers["etag"] == f'"{md5_hex(data)}"'
    assert _body(svc, key) == data


def _flip(offset: int) -> Any:
    def tamper(body: bytes) -> bytes:
        at = body.index(b"\r\n") + 2 + offset
        return body[:at] + bytes([body[at] ^ 1]) + body[at + 1 :]

    return tamper


def _retrail(body: bytes) -> bytes:
    """The trailer's checksum value with one character changed (its signature no longer holds)."""
    at = body.index(b"x-amz-checksum-crc32:") + len(b"x-amz-checksum-crc32:")
    return body[:at] + (b"B" if body[at : at + 1] != b"B" else b"C") + body[at + 1 :]


def _untrail(body: bytes) -> bytes:
    """The announced trailer left out."""
    return body[: body.rindex(b"\r\n0\r\n") + 5] + b"\r\n"


def test_streaming_bad_chunk_signature_or_checksum_stores_nothing(srv: Server, svc: Any) -> None:
    key = "public/hand/refused"
    cases = [
        (awschunked.STREAMING_SIGNED, None, _flip(10), 403, "SignatureDoesNotMatch"),
        (awschunked.STREAMING_SIGNED_TRAILER, "crc32", _flip(70000), 403, "SignatureDoesNotMatch"),
        (awschunked.STREAMING_SIGNED_TRAILER, "crc32", _retrail, 403, "SignatureDoesNotMatch"),
        (awschunked.STREAMING_UNSIGNED_TRAILER, "crc32c", _flip(10), 400, "BadDigest"),
        (awschunked.STREAMING_UNSIGNED_TRAILER, "sha256", _untrail, 400, "MalformedTrailerError"),
        (awschunked.STREAMING_SIGNED, None, lambda b: b[: len(b) // 2], 400, "IncompleteBody"),
        (awschunked.STREAMING_SIGNED, None, lambda b: b.replace(b"10000;", b"zz;", 1), 400, "InvalidChunkSizeError"),
    ]
    for mode, trailer, tamper, status, code in cases:
        r = _chunked_put(srv, key, mode, PIECES, trailer=trailer, tamper=tamper)
        assert (r.status_code, _error(r)) == (status, code), (mode, trailer, r.text)
    r = _chunked_put(srv, key, awschunked.STREAMING_SIGNED, PIECES, decoded_length=10)
    assert (r.status_code, _error(r)) == (400, "IncompleteBody")
    assert not _exists(svc, key)


def test_streaming_signed_chunks_with_temporary_credentials(
    alice: tuple[Caller, Creds, Any], bob: tuple[Caller, Creds, Any], srv: Server
) -> None:
    _, a_creds, a = alice
    _, b_creds, _ = bob
    own = f"private/{a_creds.identity_id}/chunked.bin"
    r = _chunked_put(srv, own, awschunked.STREAMING_SIGNED_TRAILER, PIECES, trailer="crc32", creds=a_creds)
    assert r.status_code == 200, r.text
    assert _body(a, own) == b"".join(PIECES)
    r = _chunked_put(srv, f"private/{b_creds.identity_id}/x", awschunked.STREAMING_SIGNED, PIECES, creds=a_creds)
    assert (r.status_code, _error(r)) == (403, "AccessDenied")


def test_streaming_mode_not_offered_is_501(srv: Server) -> None:
    url, headers, _ = _signed(
        srv, service_creds(srv), "PUT", "public/hand/ecdsa", payload_hash="STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
    )
    r = httpx.put(url, content=b"0\r\n\r\n", headers=headers)
    assert (r.status_code, _error(r)) == (501, "NotImplemented")


# --------------------------------------------------------------------------- presigned expiry


@pytest.mark.parametrize("expires", ["soon", "-5", "0", "604801"])
def test_presigned_malformed_expiry_is_403(srv: Server, expires: str) -> None:
    creds = service_creds(srv)
    url = Signer(Credentials(creds.access_key_id, creds.secret_access_key), REGION).presign(
        "GET", object_url(f"{srv.url}/s3", BUCKET, "public/any"), expires=300, now=time.time()
    )
    r = httpx.get(url.replace("X-Amz-Expires=300", f"X-Amz-Expires={expires}"))
    assert (r.status_code, _error(r)) == (403, "AuthorizationQueryParametersError")


def test_crc_trailer_helpers_agree_with_zlib() -> None:
    assert checksum("crc32", b"abc") == base64.b64encode(zlib.crc32(b"abc").to_bytes(4, "big")).decode()
