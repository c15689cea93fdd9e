"""The storage contract for multipart uploads (the one implementation behind intents' part URLs and
the S3 API's multipart verbs), the same on every backend (local disk, S3 via moto)."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.contract.bodies import chunks, failing_body, read_all
from tests.contract.conftest import PART_SIZE
from updown.errors import EntityTooSmall, InvalidArgument, InvalidPart, InvalidPartOrder, NoSuchKey, NoSuchUpload
from updown.storage.base import StorageBackend

pytestmark = pytest.mark.anyio

FIRST = os.urandom(PART_SIZE)
SECOND = os.urandom(PART_SIZE + 17)
LAST = b"the last part may be small"


def _etag(*parts: bytes) -> str:
    joined = b"".join(hashlib.md5(p, usedforsecurity=False).digest() for p in parts)
    return f"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(parts)}"


async def test_multipart_parts_join_into_the_object_with_s3s_etag(backend: StorageBackend) -> None:
    upload_id = await backend.create_multipart("mp/obj", content_type="text/plain", metadata={"Title": "T"})
    with pytest.raises(NoSuchKey):
        await backend.head("mp/obj")
    one = await backend.put_part("mp/obj", upload_id, 1, chunks(FIRST[:1000], FIRST[1000:]))
    two = await backend.put_part("mp/obj", upload_id, 2, chunks(SECOND), content_length=len(SECOND))
    three = await backend.put_part("mp/obj", upload_id, 3, chunks(LAST))
    assert one.etag == hashlib.md5(FIRST, usedforsecurity=False).hexdigest()
    assert (one.part_number, one.size, two.size, three.size) == (1, PART_SIZE, len(SECOND), len(LAST))
    listed = await backend.list_parts("mp/obj", upload_id)
    assert [(p.part_number, p.etag, p.size) for p in listed] == [
        (1, one.etag, PART_SIZE),
        (2, two.etag, len(SECOND)),
        (3, three.etag, len(LAST)),
    ]
    info = await backend.complete_multipart("mp/obj", upload_id, [(1, f'"{one.etag}"'), (2, two.etag), (3, three.etag)])
    assert info.etag == _etag(FIRST, SECOND, LAST)
    assert info.size == len(FIRST) + len(SECOND) + len(LAST)
    head = await backend.head("mp/obj")
    assert (head.etag, head.content_type, dict(head.metadata)) == (info.etag, "text/plain", {"title": "T"})
    assert await read_all(backend, "mp/obj") == FIRST + SECOND + LAST
    with pytest.raises(NoSuchUpload):
        await backend.list_parts("mp/obj", upload_id)
    assert [u.upload_id for u in await backend.list_multipart_uploads("mp/")] == []


async def test_multipart_a_resent_part_replaces_and_a_cut_off_one_keeps_the_earlier(backend: StorageBackend) -> None:
    upload_id = await backend.create_multipart("mp/resend")
    await backend.put_part("mp/resend", upload_id, 1, chunks(b"old"))
    with pytest.raises(ConnectionResetError):
        await backend.put_part("mp/resend", upload_id, 1, failing_body(b"new, cut"))
    assert [p.etag for p in await backend.list_parts("mp/resend", upload_id)] == [
        hashlib.md5(b"old", usedforsecurity=False).hexdigest()
    ]
    again = await backend.put_part("mp/resend", upload_id, 1, chunks(b"new"))
    assert [p.etag for p in await backend.list_parts("mp/resend", upload_id)] == [again.etag]
    info = await backend.complete_multipart("mp/resend", upload_id, [(1, again.etag)])
    assert await read_all(backend, info.key) == b"new"


async def test_multipart_completion_refusals_leave_the_upload_open(backend: StorageBackend) -> None:
    upload_id = await backend.create_multipart("mp/refused")
    small = await backend.put_part("mp/refused", upload_id, 1, chunks(b"a" * 100))
    tail = await backend.put_part("mp/refused", upload_id, 2, chunks(b"b"))
    with pytest.raises(EntityTooSmall):
        await backend.complete_multipart("mp/refused", upload_id, [(1, small.etag), (2, tail.etag)])
    big = await backend.put_part("mp/refused", upload_id, 1, chunks(FIRST))
    with pytest.raises(InvalidPartOrder):
        await backend.complete_multipart("mp/refused", upload_id, [(2, tail.etag), (1, big.etag)])
    with pytest.raises(InvalidPartOrder):
        await backend.complete_multipart("mp/refused", upload_id, [(1, big.etag), (1, big.etag)])
    with pytest.raises(InvalidPart):
        await backend.complete_multipart("mp/refused", upload_id, [(1, big.etag), (2, small.etag)])
    with pytest.raises(InvalidPart):
        await backend.complete_multipart("mp/refused", upload_id, [(1, big.etag), (3, tail.etag)])
    with pytest.raises(InvalidArgument):
        await backend.complete_multipart("mp/refused", upload_id, [])
    with pytest.raises(NoSuchKey):
        await backend.head("mp/refused")
    info = await backend.complete_multipart("mp/refused", upload_id, [(1, big.etag), (2, tail.etag)])
    assert info.etag == _etag(FIRST, b"b")


async def test_multipart_abort_and_unknown_uploads(backend: StorageBackend) -> None:
    upload_id = await backend.create_multipart("mp/aborted")
    await backend.put_part("mp/aborted", upload_id, 1, chunks(b"x"))
    await backend.abort_multipart("mp/aborted", upload_id)
    for bogus in (upload_id, "0" * 32, "not-an-id"):
        with pytest.raises(NoSuchUpload):
            await backend.put_part("mp/aborted", bogus, 1, chunks(b"y"))
        with pytest.raises(NoSuchUpload):
            await backend.list_parts("mp/aborted", bogus)
        with pytest.raises(NoSuchUpload):
            await backend.abort_multipart("mp/aborted", bogus)
    with pytest.raises(InvalidArgument):
        await backend.put_part("mp/aborted", upload_id, 0, chunks(b"y"))
    with pytest.raises(NoSuchKey):
        await backend.head("mp/aborted")


async def test_multipart_uploads_listed_by_prefix_in_key_order(backend: StorageBackend) -> None:
    made = [
        ("mp/list/b", await backend.create_multipart("mp/list/b")),
        ("mp/list/a", await backend.create_multipart("mp/list/a")),
        ("mp/list/b", await backend.create_multipart("mp/list/b")),
        ("mp/other", await backend.create_multipart("mp/other")),
    ]
    listed = await backend.list_multipart_uploads("mp/list/")
    assert [u.key for u in listed] == ["mp/list/a", "mp/list/b", "mp/list/b"]
    assert sorted(u.upload_id for u in listed) == sorted(i for k, i in made if k.startswith("mp/list/"))
    assert all(u.initiated > 0 for u in listed)
    for key, upload_id in made:
        await backend.abort_multipart(key, upload_id)
    assert await backend.list_multipart_uploads("mp/") == ()
