"""The S3 multipart API against a real `updown serve`, on the local backend and on S3 (moto):
create, parts, part copies, list parts, complete (S3's validation and ETag), abort, list uploads —
with the service credentials and with a signed-in user's temporary credentials (own ``private/``
allowed, another user's denied), the intents' staging keys out of reach, and cleanup reclaiming
what is left open."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from boto3.s3.transfer import TransferConfig

from tests.e2e.files_helpers import Caller, initiate
from tests.e2e.s3_helpers import (
    BACKENDS,
    BUCKET,
    MIB,
    Creds,
    error_code,
    guest_creds,
    md5_hex,
    multipart_etag,
    payload,
    s3_client,
    serve,
    service_creds,
    signed,
    texts,
    user_creds,
    xml_of,
)
from tests.e2e.userpool_helpers import bearer
from tests.support.processes import Server

pytestmark = pytest.mark.e2e

PART = 5 * MIB


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp(f"s3-multipart-{request.param}"), request.param) as srv:
        yield srv


@pytest.fixture(scope="module")
def service(server: Server) -> Any:
    return s3_client(server, service_creds(server))


@pytest.fixture(scope="module")
def alice(server: Server) -> tuple[Caller, Creds]:
    return user_creds(server)


@pytest.fixture(scope="module")
def bob(server: Server) -> tuple[Caller, Creds]:
    return user_creds(server)


def _create(s3: Any, key: str, **extra: Any) -> str:
    upload_id: str = s3.create_multipart_upload(Bucket=BUCKET, Key=key, **extra)["UploadId"]
    return upload_id


def _part(s3: Any, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
    answer = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
    return {"PartNumber": number, "ETag": answer["ETag"]}


def _complete(s3: Any, key: str, upload_id: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    done: dict[str, Any] = s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    return done


def _uploads(s3: Any, prefix: str) -> list[tuple[str, str]]:
    answer = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return [(u["Key"], u["UploadId"]) for u in answer.get("Uploads", [])]


# --------------------------------------------------------------------------- whole flows


@pytest.mark.parametrize("who", ["service", "user"])
def test_s3_multipart_upload_file_20_mib_round_trips_and_is_recorded(
    server: Server, service: Any, alice: tuple[Caller, Creds], who: str, tmp_path: Path
) -> None:
    caller, creds = alice
    s3 = service if who == "service" else s3_client(server, creds)
    key = f"public/mp/{who}.bin" if who == "service" else f"private/{creds.identity_id}/mp/big.bin"
    data = payload(20 * MIB, f"upload-file-{who}")
    source = tmp_path / "up.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4)
    s3.upload_file(str(source), BUCKET, key, Config=config)

    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == multipart_etag(data[: 8 * MIB], data[8 * MIB : 16 * MIB], data[16 * MIB :])
    back = tmp_path / "down.bin"
    s3.download_file(BUCKET, key, str(back), Config=config)
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(data).digest()
    # Recorded as a direct PUT is: a file row with the multipart ETag, owned by the writer.
    with httpx.Client(base_url=server.url, timeout=30) as c:
        record = c.get(f"/storage/files/{key}", headers=bearer(caller.token))
    assert record.status_code == 200, record.text
    assert record.json()["etag"] == head["ETag"].strip('"')
    assert record.json()["size"] == len(data)
    if who == "user":
        assert record.json()["identityId"] == creds.identity_id
    assert _uploads(service, key) == []


def test_s3_multipart_step_by_step_keeps_type_metadata_and_lists_parts(service: Any) -> None:
    key = "public/mp/steps.txt"
    upload_id = _create(service, key, ContentType="text/plain; charset=utf-8", Metadata={"title": "Steps"})
    assert _uploads(service, "public/mp/steps") == [(key, upload_id)]
    first, second, third = payload(PART, "s1"), payload(PART + 1, "s2"), b"the end\n"
    parts = [_part(service, key, upload_id, 1, first), _part(service, key, upload_id, 2, second)]
    assert parts[0]["ETag"] == f'"{md5_hex(first)}"'
    parts.append(_part(service, key, upload_id, 3, third))
    # A re-sent part replaces the earlier one.
    parts[2] = _part(service, key, upload_id, 3, third)

    listed = service.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [
        (1, parts[0]["ETag"], PART),
        (2, parts[1]["ETag"], PART + 1),
        (3, parts[2]["ETag"], len(third)),
    ]
    assert listed["IsTruncated"] is False
    page = service.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id, MaxParts=2)
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2]
    assert page["IsTruncated"] is True
    assert page["NextPartNumberMarker"] == 2
    rest = service.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumberMarker=2)
    assert [p["PartNumber"] for p in rest["Parts"]] == [3]
    paged = [
        p["PartNumber"]
        for pg in service.get_paginator("list_parts").paginate(
            Bucket=BUCKET, Key=key, UploadId=upload_id, PaginationConfig={"PageSize": 1}
        )
        for p in pg.get("Parts", [])
    ]
    assert paged == [1, 2, 3]

    done = _complete(service, key, upload_id, parts)
    assert done["ETag"] == multipart_etag(first, second, third)
    assert done["Key"] == key
    assert done["Bucket"] == BUCKET
    assert done["Location"].endswith(f"/{BUCKET}/public/mp/steps.txt")
    got = service.get_object(Bucket=BUCKET, Key=key)
    assert got["ContentType"] == "text/plain; charset=utf-8"
    assert got["Metadata"] == {"title": "Steps"}
    assert got["Body"].read() == first + second + third
    # The upload is closed: its id answers NoSuchUpload from now on.
    assert error_code(service.list_parts, Bucket=BUCKET, Key=key, UploadId=upload_id) == "NoSuchUpload"
    assert error_code(_complete, service, key, upload_id, parts) == "NoSuchUpload"


def test_s3_multipart_completion_is_validated_as_s3_does(service: Any) -> None:
    key = "public/mp/invalid.bin"
    upload_id = _create(service, key)
    small = [_part(service, key, upload_id, 1, b"a" * 1000), _part(service, key, upload_id, 2, b"b" * 1000)]
    assert error_code(_complete, service, key, upload_id, small) == "EntityTooSmall"
    big = _part(service, key, upload_id, 1, payload(PART, "v1"))
    last = _part(service, key, upload_id, 2, b"tail")
    assert error_code(_complete, service, key, upload_id, [last, big]) == "InvalidPartOrder"
    assert error_code(_complete, service, key, upload_id, [big, big]) == "InvalidPartOrder"
    wrong = {"PartNumber": 2, "ETag": f'"{md5_hex(b"something else")}"'}
    assert error_code(_complete, service, key, upload_id, [big, wrong]) == "InvalidPart"
    missing = {"PartNumber": 3, "ETag": last["ETag"]}
    assert error_code(_complete, service, key, upload_id, [big, missing]) == "InvalidPart"
    # Nothing was stored by any of these, and the upload is still open.
    assert error_code(service.head_object, Bucket=BUCKET, Key=key) == "404"
    done = _complete(service, key, upload_id, [big, last])
    assert done["ETag"] == multipart_etag(payload(PART, "v1"), b"tail")


def test_s3_multipart_unknown_upload_is_no_such_upload_everywhere(server: Server, service: Any) -> None:
    key = "public/mp/none.bin"
    bogus = "0" * 32
    assert error_code(service.upload_part, Bucket=BUCKET, Key=key, UploadId=bogus, PartNumber=1, Body=b"x") == (
        "NoSuchUpload"
    )
    assert error_code(service.list_parts, Bucket=BUCKET, Key=key, UploadId=bogus) == "NoSuchUpload"
    assert error_code(service.abort_multipart_upload, Bucket=BUCKET, Key=key, UploadId=bogus) == "NoSuchUpload"
    parts = [{"PartNumber": 1, "ETag": f'"{md5_hex(b"x")}"'}]
    assert error_code(_complete, service, key, bogus, parts) == "NoSuchUpload"
    if server.env.get("UPDOWN_STORAGE__BACKEND") != "s3":  # moto, unlike S3, ignores the key of an upload id
        other = _create(service, "public/mp/other.bin")
        assert error_code(service.list_parts, Bucket=BUCKET, Key=key, UploadId=other) == "NoSuchUpload"
        assert error_code(_part, service, key, other, 1, b"x") == "NoSuchUpload"
        service.abort_multipart_upload(Bucket=BUCKET, Key="public/mp/other.bin", UploadId=other)


def test_s3_multipart_abort_drops_parts_and_list_uploads_pages(service: Any) -> None:
    keys = ["public/lu/a.bin", "public/lu/b.bin", "public/lu/b.bin", "public/lu/sub/c.bin", "public/lu/sub/d.bin"]
    ids = [_create(service, k) for k in keys]
    _part(service, keys[0], ids[0], 1, b"part")
    listed = _uploads(service, "public/lu/")
    assert sorted(listed) == sorted(zip(keys, ids, strict=True))
    assert [k for k, _ in listed] == sorted(keys)
    # Two uploads of one key: initiation order, then paging by key and upload id markers.
    seen: list[tuple[str, str]] = []
    marker: dict[str, str] = {}
    while True:
        page = service.list_multipart_uploads(Bucket=BUCKET, Prefix="public/lu/", MaxUploads=2, **marker)
        seen += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        if not page["IsTruncated"]:
            break
        marker = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
    assert seen == listed
    after_a = service.list_multipart_uploads(Bucket=BUCKET, Prefix="public/lu/", KeyMarker="public/lu/a.bin")
    assert [u["Key"] for u in after_a["Uploads"]] == sorted(keys)[1:]
    rolled = service.list_multipart_uploads(Bucket=BUCKET, Prefix="public/lu/", Delimiter="/")
    assert [u["Key"] for u in rolled["Uploads"]] == ["public/lu/a.bin", "public/lu/b.bin", "public/lu/b.bin"]
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["public/lu/sub/"]

    answer = service.abort_multipart_upload(Bucket=BUCKET, Key=keys[0], UploadId=ids[0])
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert (keys[0], ids[0]) not in _uploads(service, "public/lu/")
    assert error_code(service.list_parts, Bucket=BUCKET, Key=keys[0], UploadId=ids[0]) == "NoSuchUpload"
    assert error_code(_part, service, keys[0], ids[0], 2, b"late") == "NoSuchUpload"
    for key, upload_id in zip(keys[1:], ids[1:], strict=True):
        service.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id)
    assert _uploads(service, "public/lu/") == []


def test_s3_multipart_upload_part_copy_ranges_and_conditions(service: Any) -> None:
    source = payload(PART + 3 * MIB, "copy-source")
    service.put_object(Bucket=BUCKET, Key="public/mp/src.bin", Body=source)
    etag = service.head_object(Bucket=BUCKET, Key="public/mp/src.bin")["ETag"]
    key = "public/mp/copied.bin"
    upload_id = _create(service, key, ContentType="application/x-test")
    src = {"Bucket": BUCKET, "Key": "public/mp/src.bin"}
    first = service.upload_part_copy(
        Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=1, CopySource=src, CopySourceRange=f"bytes=0-{PART - 1}"
    )
    assert first["CopyPartResult"]["ETag"] == f'"{md5_hex(source[:PART])}"'
    whole = service.upload_part_copy(
        Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=2, CopySource=src, CopySourceIfMatch=etag
    )
    tail = service.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=3, Body=b"!")
    parts = [
        {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": whole["CopyPartResult"]["ETag"]},
        {"PartNumber": 3, "ETag": tail["ETag"]},
    ]
    # Refusals: a failed condition, a range past the source, a malformed range, a missing source.
    assert (
        error_code(
            service.upload_part_copy,
            Bucket=BUCKET,
            Key=key,
            UploadId=upload_id,
            PartNumber=4,
            CopySource=src,
            CopySourceIfNoneMatch=etag,
        )
        == "PreconditionFailed"
    )
    for bad in (f"bytes=0-{len(source)}", "bytes=5-1", "bytes=0-", "items=0-1"):
        assert (
            error_code(
                service.upload_part_copy,
                Bucket=BUCKET,
                Key=key,
                UploadId=upload_id,
                PartNumber=4,
                CopySource=src,
                CopySourceRange=bad,
            )
            == "InvalidArgument"
        ), bad
    missing = {"Bucket": BUCKET, "Key": "public/mp/never.bin"}
    assert (
        error_code(
            service.upload_part_copy, Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=4, CopySource=missing
        )
        == "NoSuchKey"
    )
    done = _complete(service, key, upload_id, parts)
    assert done["ETag"] == multipart_etag(source[:PART], source, b"!")
    got = service.get_object(Bucket=BUCKET, Key=key)
    assert got["ContentType"] == "application/x-test"
    assert got["Body"].read() == source[:PART] + source + b"!"


# --------------------------------------------------------------------------- who may


def test_s3_multipart_temporary_credentials_own_private_only(
    server: Server, alice: tuple[Caller, Creds], bob: tuple[Caller, Creds]
) -> None:
    _, a = alice
    _, b = bob
    s3a, s3b = s3_client(server, a), s3_client(server, b)
    mine = f"private/{a.identity_id}/mp/own.bin"
    upload_id = _create(s3a, mine)
    parts = [_part(s3a, mine, upload_id, 1, payload(PART, "own")), _part(s3a, mine, upload_id, 2, b"end")]
    assert [p["PartNumber"] for p in s3a.list_parts(Bucket=BUCKET, Key=mine, UploadId=upload_id)["Parts"]] == [1, 2]
    assert _uploads(s3a, f"private/{a.identity_id}/") == [(mine, upload_id)]
    # Bob, knowing the id, can do nothing with Alice's upload, nor open one in her space.
    assert error_code(_part, s3b, mine, upload_id, 3, b"x") == "AccessDenied"
    assert error_code(s3b.list_parts, Bucket=BUCKET, Key=mine, UploadId=upload_id) == "AccessDenied"
    assert error_code(s3b.abort_multipart_upload, Bucket=BUCKET, Key=mine, UploadId=upload_id) == "AccessDenied"
    assert error_code(_complete, s3b, mine, upload_id, parts) == "AccessDenied"
    assert error_code(_create, s3b, f"private/{a.identity_id}/mp/theirs.bin") == "AccessDenied"
    assert error_code(s3b.list_multipart_uploads, Bucket=BUCKET, Prefix=f"private/{a.identity_id}/") == ("AccessDenied")
    # Nobody but the service lists the whole bucket's uploads, nor public/ ones (their ids).
    assert error_code(s3a.list_multipart_uploads, Bucket=BUCKET) == "AccessDenied"
    assert error_code(s3a.list_multipart_uploads, Bucket=BUCKET, Prefix="public/") == "AccessDenied"
    done = _complete(s3a, mine, upload_id, parts)
    assert done["ETag"] == multipart_etag(payload(PART, "own"), b"end")
    assert s3a.get_object(Bucket=BUCKET, Key=mine)["Body"].read() == payload(PART, "own") + b"end"
    assert error_code(s3b.get_object, Bucket=BUCKET, Key=mine) == "AccessDenied"


def test_s3_multipart_temporary_credentials_public_keeps_the_owner_rule(
    server: Server, alice: tuple[Caller, Creds], bob: tuple[Caller, Creds]
) -> None:
    _, a = alice
    _, b = bob
    s3a, s3b = s3_client(server, a), s3_client(server, b)
    key = f"public/mp/owned-{a.identity_id[-8:]}.bin"
    upload_id = _create(s3a, key)
    s3a.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": [_part(s3a, key, upload_id, 1, b"a")]}
    )
    # Bob may not replace Alice's public object by a multipart upload either.
    assert error_code(_create, s3b, key) == "AccessDenied"
    # Alice may, and may abort her own upload.
    again = _create(s3a, key)
    s3a.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=again)
    assert s3a.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"a"


def test_s3_multipart_guest_cannot_upload(server: Server) -> None:
    _, g = guest_creds(server)
    s3g = s3_client(server, g)
    assert error_code(_create, s3g, "public/mp/guest.bin") == "AccessDenied"
    assert error_code(_create, s3g, f"private/{g.identity_id}/mp/guest.bin") == "AccessDenied"


def test_s3_multipart_staging_keys_only_through_their_intent(
    server: Server, service: Any, alice: tuple[Caller, Creds]
) -> None:
    caller, _ = alice
    staged = "_uploads/" + "ab" * 16
    assert error_code(_create, service, staged) == "AccessDenied"
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = initiate(
            c,
            caller,
            accessLevel="private",
            name="mp-intent.bin",
            contentType="image/png",
            size=6 * MIB,
            mode="multipart",
        )
    assert r.status_code == 201, r.text
    grant = r.json()
    staging = f"_uploads/{grant['uploadId']}"
    multipart_id = grant["multipart"]["parts"][0]["url"].split("uploadId=")[1].split("&")[0]
    # The intent's upload is not listed, and no S3 call but its part URLs reaches it.
    assert all(not k.startswith("_uploads/") for k, _ in _uploads(service, ""))
    assert error_code(service.list_parts, Bucket=BUCKET, Key=staging, UploadId=multipart_id) == "AccessDenied"
    assert error_code(service.abort_multipart_upload, Bucket=BUCKET, Key=staging, UploadId=multipart_id) == (
        "AccessDenied"
    )
    parts = [{"PartNumber": 1, "ETag": f'"{md5_hex(b"x")}"'}]
    assert error_code(_complete, service, staging, multipart_id, parts) == "AccessDenied"
    src = {"Bucket": BUCKET, "Key": "public/mp/steps.txt"}
    assert (
        error_code(
            service.upload_part_copy, Bucket=BUCKET, Key=staging, UploadId=multipart_id, PartNumber=1, CopySource=src
        )
        == "AccessDenied"
    )
    # The presigned part URL still works (the intent's own way in).
    sent = httpx.put(grant["multipart"]["parts"][0]["url"], content=b"\x89PNG" + b"0" * 100, timeout=30)
    assert sent.status_code == 200, sent.text


def test_s3_multipart_malformed_complete_body_is_malformed_xml(server: Server, service: Any) -> None:
    key = "public/mp/xml.bin"
    upload_id = _create(service, key)
    part = _part(service, key, upload_id, 1, b"x")
    bodies = [
        b"not xml",
        b"<Other/>",
        b"<CompleteMultipartUpload></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><CompleteMultipartUpload/>',
    ]

    creds = service_creds(server)
    for body in bodies:
        r = signed(server, creds, "POST", key, f"uploadId={upload_id}", body, {"content-type": "application/xml"})
        assert r.status_code == 400, (body, r.text)
        assert b"<Code>MalformedXML</Code>" in r.content, r.text
    good = f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{part['ETag']}</ETag></Part></CompleteMultipartUpload>"
    r = signed(server, creds, "POST", key, f"uploadId={upload_id}", good.encode(), {"content-type": "application/xml"})
    assert r.status_code == 200, r.text
    assert texts(xml_of(r), "ETag") == [multipart_etag(b"x")]


# --------------------------------------------------------------------------- cleanup


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_s3_multipart_left_open_is_reclaimed_by_cleanup(tmp_path: Path, backend: str) -> None:
    bucket = "sweep"
    with serve(tmp_path, backend, {"UPDOWN_UPLOADS__MULTIPART_EXPIRES": "1"}, bucket=bucket) as srv:
        s3 = s3_client(srv, service_creds(srv))
        key = "public/mp/abandoned.bin"
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=payload(PART, "abandoned"))

        def open_uploads() -> list[str]:
            return [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]

        if backend == "local":  # moto reports every upload as initiated in 2010: always past any age
            done = srv.cli("cleanup", "--older-than", "1h")
            assert done.returncode == 0, done.stderr
            assert open_uploads() == [upload_id]  # younger than the multipart lifetime: kept
            time.sleep(1.5)
        done = srv.cli("cleanup", "--older-than", "1s")
        assert done.returncode == 0, done.stderr
        assert open_uploads() == []
        assert error_code(s3.list_parts, Bucket=bucket, Key=key, UploadId=upload_id) == "NoSuchUpload"
