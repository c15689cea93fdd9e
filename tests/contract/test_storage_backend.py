"""The storage contract: every test here runs on every backend (local disk, S3 via moto)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import unicodedata
from collections.abc import AsyncIterator

import pytest

from tests.contract.bodies import chunks, failing_body, read_all
from tests.contract.conftest import PART_SIZE
from updown.errors import (
    EntityTooLarge,
    IncompleteBody,
    InvalidArgument,
    InvalidKey,
    InvalidRange,
    NoSuchKey,
)
from updown.storage.base import DEFAULT_CONTENT_TYPE, StorageBackend

pytestmark = pytest.mark.anyio

BODY = bytes(range(256)) * 4  # 1 KiB, every byte value
BIG = os.urandom(2 * PART_SIZE + 12345)  # several parts / write batches


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


async def keys_of(backend: StorageBackend, prefix: str = "") -> list[str]:
    page = await backend.list(prefix)
    return [item.key for item in page.items]


async def test_put_roundtrip_keeps_bytes_type_and_metadata(backend: StorageBackend) -> None:
    info = await backend.put(
        "public/a.bin",
        chunks(BODY[:100], BODY[100:]),
        content_type="image/png",
        metadata={"Title": "Hello", "photo-id": "42"},
    )
    assert (info.key, info.size, info.etag) == ("public/a.bin", len(BODY), md5(BODY))
    assert info.content_type == "image/png"
    assert dict(info.metadata) == {"title": "Hello", "photo-id": "42"}
    head = await backend.head("public/a.bin")
    assert (head.key, head.size, head.etag, head.content_type) == (info.key, info.size, info.etag, "image/png")
    assert dict(head.metadata) == {"title": "Hello", "photo-id": "42"}
    assert abs(head.last_modified - info.last_modified) < 5
    async with await backend.get("public/a.bin") as stream:
        assert stream.info.etag == md5(BODY)
        assert stream.byte_range is None
        assert stream.length == len(BODY)
        assert b"".join([c async for c in stream]) == BODY


async def test_put_without_content_type_stores_octet_stream(backend: StorageBackend) -> None:
    await backend.put("k", chunks(b"x"))
    assert (await backend.head("k")).content_type == DEFAULT_CONTENT_TYPE


async def test_put_empty_body_stores_empty_object(backend: StorageBackend) -> None:
    info = await backend.put("empty", chunks(), content_length=0)
    assert (info.size, info.etag) == (0, md5(b""))
    assert await read_all(backend, "empty") == b""


async def test_put_body_of_several_parts_roundtrips_with_consistent_etag(backend: StorageBackend) -> None:
    info = await backend.put("big", chunks(*[BIG[i : i + 65536] for i in range(0, len(BIG), 65536)]))
    assert info.size == len(BIG)
    assert (await backend.head("big")).etag == info.etag
    assert [item.etag for item in (await backend.list("big")).items] == [info.etag]
    assert await read_all(backend, "big") == BIG


async def test_put_replaces_bytes_and_metadata_together(backend: StorageBackend) -> None:
    await backend.put("k", chunks(b"old"), content_type="text/plain", metadata={"v": "1"})
    await backend.put("k", chunks(b"newer"), content_type="image/jpeg", metadata={"w": "2"})
    head = await backend.head("k")
    assert (head.size, head.etag, head.content_type, dict(head.metadata)) == (
        5,
        md5(b"newer"),
        "image/jpeg",
        {"w": "2"},
    )
    assert await read_all(backend, "k") == b"newer"


@pytest.mark.parametrize(
    ("byte_range", "expected"),
    [
        ((0, 9), BODY[:10]),
        ((100, 199), BODY[100:200]),
        ((1000, None), BODY[1000:]),
        ((-24, None), BODY[-24:]),
        ((1000, 5000), BODY[1000:]),
        ((0, 0), BODY[:1]),
    ],
)
async def test_get_range_yields_exactly_those_bytes(
    backend: StorageBackend,
    byte_range: tuple[int, int | None],
    expected: bytes,
) -> None:
    await backend.put("r", chunks(BODY))
    async with await backend.get("r", byte_range=byte_range) as stream:
        data = b"".join([c async for c in stream])
        assert stream.info.size == len(BODY)
        assert stream.byte_range is not None
        first, last = stream.byte_range
        assert (last - first + 1, stream.length) == (len(expected), len(expected))
        assert BODY[first : last + 1] == expected
    assert data == expected


async def test_get_range_past_the_end_raises_invalid_range(backend: StorageBackend) -> None:
    await backend.put("r", chunks(BODY))
    with pytest.raises(InvalidRange):
        await backend.get("r", byte_range=(len(BODY), None))


async def test_get_range_ending_before_start_raises_invalid_argument(backend: StorageBackend) -> None:
    await backend.put("r", chunks(BODY))
    with pytest.raises(InvalidArgument):
        await backend.get("r", byte_range=(10, 5))


async def test_get_head_missing_key_raise_no_such_key(backend: StorageBackend) -> None:
    with pytest.raises(NoSuchKey):
        await backend.head("nope")
    with pytest.raises(NoSuchKey):
        await backend.get("nope")
    with pytest.raises(NoSuchKey):
        await backend.copy("nope", "dst")


async def test_delete_removes_object_and_is_idempotent(backend: StorageBackend) -> None:
    await backend.put("d/x", chunks(b"1"))
    await backend.put("d/y", chunks(b"2"))
    await backend.delete("d/x")
    with pytest.raises(NoSuchKey):
        await backend.head("d/x")
    await backend.delete("d/x")
    await backend.delete("never/was")
    assert await keys_of(backend) == ["d/y"]


async def test_list_pages_through_prefix_in_byte_order(backend: StorageBackend) -> None:
    keys = ["p/a", "p/a/b", "p/a-c", "p/a0", "p/b/c/d", "p/B", "p/é", "p/z", "q/other", "p/~", "p/a/b/c"]
    for key in keys:
        await backend.put(key, chunks(key.encode()))
    expected = sorted((k for k in keys if k.startswith("p/")), key=lambda k: k.encode())
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = await backend.list("p/", limit=3, continuation_token=token)
        pages += 1
        assert len(page.items) <= 3
        seen.extend(item.key for item in page.items)
        token = page.next_token
        if token is None:
            break
    assert seen == expected
    assert pages == 4
    sizes = {item.key: item.size for item in (await backend.list("p/a")).items}
    assert sizes == {"p/a": 3, "p/a/b": 5, "p/a-c": 5, "p/a0": 4, "p/a/b/c": 7}


async def test_list_prefix_inside_a_segment_filters(backend: StorageBackend) -> None:
    for key in ["photos/2024-01.jpg", "photos/2024/x.jpg", "photos/2023.jpg", "photo"]:
        await backend.put(key, chunks(b"x"))
    assert await keys_of(backend, "photos/2024") == ["photos/2024-01.jpg", "photos/2024/x.jpg"]
    assert await keys_of(backend, "nothing/") == []
    assert await keys_of(backend, "photo") == ["photo", "photos/2023.jpg", "photos/2024-01.jpg", "photos/2024/x.jpg"]


async def test_list_bad_limit_raises_invalid_argument(backend: StorageBackend) -> None:
    with pytest.raises(InvalidArgument):
        await backend.list("", limit=0)
    with pytest.raises(InvalidArgument):
        await backend.list("", limit=1001)


async def test_copy_without_metadata_keeps_source_metadata(backend: StorageBackend) -> None:
    await backend.put("src", chunks(BODY), content_type="image/gif", metadata={"a": "1"})
    info = await backend.copy("src", "dst/copy")
    assert (info.key, info.size, info.etag, info.content_type) == ("dst/copy", len(BODY), md5(BODY), "image/gif")
    head = await backend.head("dst/copy")
    assert (head.content_type, dict(head.metadata), head.etag) == ("image/gif", {"a": "1"}, md5(BODY))
    assert await read_all(backend, "dst/copy") == BODY
    assert await read_all(backend, "src") == BODY


async def test_copy_with_metadata_replaces_it_and_keeps_type(backend: StorageBackend) -> None:
    await backend.put("src", chunks(BODY), content_type="image/gif", metadata={"a": "1"})
    info = await backend.copy("src", "dst", metadata={"B": "2"})
    assert dict(info.metadata) == {"b": "2"}
    head = await backend.head("dst")
    assert (head.content_type, dict(head.metadata)) == ("image/gif", {"b": "2"})
    assert dict((await backend.head("src")).metadata) == {"a": "1"}


async def test_copy_then_replace_source_leaves_copy_unchanged(backend: StorageBackend) -> None:
    await backend.put("src", chunks(b"first"))
    await backend.copy("src", "dst")
    await backend.put("src", chunks(b"second"))
    await backend.delete("src")
    assert await read_all(backend, "dst") == b"first"


async def test_put_short_body_raises_incomplete_and_keeps_previous(backend: StorageBackend) -> None:
    await backend.put("k", chunks(b"previous"), metadata={"v": "1"})
    with pytest.raises(IncompleteBody):
        await backend.put("k", chunks(b"abc"), content_length=10, metadata={"v": "2"})
    head = await backend.head("k")
    assert (head.etag, dict(head.metadata)) == (md5(b"previous"), {"v": "1"})
    assert await read_all(backend, "k") == b"previous"


async def test_put_long_body_raises_incomplete_and_keeps_previous(backend: StorageBackend) -> None:
    await backend.put("k", chunks(b"previous"))
    with pytest.raises(IncompleteBody):
        await backend.put("k", chunks(b"abc", b"defgh"), content_length=4)
    assert await read_all(backend, "k") == b"previous"


async def test_put_short_multipart_body_keeps_previous(backend: StorageBackend) -> None:
    await backend.put("k", chunks(b"previous"))
    with pytest.raises(IncompleteBody):
        await backend.put("k", chunks(BIG), content_length=len(BIG) + 1)
    assert await read_all(backend, "k") == b"previous"


async def test_put_over_max_size_raises_and_stores_nothing(backend: StorageBackend) -> None:
    with pytest.raises(EntityTooLarge):
        await backend.put("k", chunks(b"12345", b"6"), max_size=5)
    with pytest.raises(EntityTooLarge):
        await backend.put("k", chunks(b"1"), content_length=6, max_size=5)
    with pytest.raises(EntityTooLarge):
        await backend.put("k", chunks(BIG), max_size=len(BIG) - 1)
    with pytest.raises(NoSuchKey):
        await backend.head("k")
    assert await keys_of(backend) == []


async def test_put_exactly_max_size_is_stored(backend: StorageBackend) -> None:
    info = await backend.put("k", chunks(b"12345"), content_length=5, max_size=5)
    assert info.size == 5


@pytest.mark.parametrize("body", [b"abc", BIG], ids=["small", "multipart"])
async def test_put_body_failing_midway_keeps_previous(backend: StorageBackend, body: bytes) -> None:
    await backend.put("k", chunks(b"previous"), metadata={"v": "1"})
    with pytest.raises(ConnectionResetError):
        await backend.put("k", failing_body(body), metadata={"v": "2"})
    head = await backend.head("k")
    assert (head.etag, dict(head.metadata)) == (md5(b"previous"), {"v": "1"})
    assert await keys_of(backend) == ["k"]


async def test_put_cancelled_midway_keeps_previous(backend: StorageBackend) -> None:
    await backend.put("k", chunks(b"previous"))
    started = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield BIG
        started.set()
        await asyncio.Event().wait()  # a client that stops sending

    task = asyncio.create_task(backend.put("k", stalled()))
    await asyncio.wait_for(started.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await read_all(backend, "k") == b"previous"


@pytest.mark.parametrize(
    "key",
    [
        "public/with space.txt",
        "public/ünïcödé/日本語.txt",
        "public/a+b=c~d.txt",
        "public/100%25 literal%.txt",
        "public/UPPER/lower/MiXeD.TXT",
        "public/.hidden",
        "public/trailing.",
        "public/quote'\"and!#$&()*,;@[]^`{|}",
        "public/" + "long-" * 150,
        "public/" + "日" * 60 + "/" + "本" * 60,
        "public/a//b",  # S3 keys may have empty segments
        "public/folder/",  # a folder marker
    ],
)
async def test_put_unusual_but_valid_key_roundtrips(backend: StorageBackend, key: str) -> None:
    info = await backend.put(key, chunks(key.encode()))
    assert info.key == key
    assert (await backend.head(key)).key == key
    assert await read_all(backend, key) == key.encode()
    assert await keys_of(backend, "public/") == [key]
    await backend.delete(key)
    assert await keys_of(backend) == []


async def test_put_non_nfc_key_is_stored_under_its_nfc_form(backend: StorageBackend) -> None:
    decomposed = unicodedata.normalize("NFD", "public/café.txt")
    info = await backend.put(decomposed, chunks(b"x"))
    assert info.key == "public/café.txt"
    assert (await backend.head("public/café.txt")).size == 1
    assert (await backend.head(decomposed)).key == "public/café.txt"
    assert await keys_of(backend) == ["public/café.txt"]


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/abs",
        "a/../b",
        "..",
        "a/./b",
        "a\\b",
        "a\x00b",
        "a\nb",
        "a\x7fb",
        "a\x85b",
        "a/%2e%2e/b",
        "x" * 1025,
        "é" * 513,
    ],
)
async def test_put_invalid_key_raises_invalid_key_and_writes_nothing(backend: StorageBackend, key: str) -> None:
    with pytest.raises(InvalidKey):
        await backend.put(key, chunks(b"x"))
    with pytest.raises(InvalidKey):
        await backend.head(key)
    assert await keys_of(backend) == []


@pytest.mark.parametrize(
    "metadata",
    [
        {"bad name": "v"},
        {"n": "line\nbreak"},
        {"n": "c1\u0085control"},
        {"n": "x" * 2100},
        {"n": "\u00e9" * 1024},  # 2048 bytes of UTF-8 with the name: over S3's 2 KiB
        {"A": "1", "a": "2"},
    ],
)
async def test_put_bad_metadata_raises_invalid_argument(backend: StorageBackend, metadata: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument):
        await backend.put("k", chunks(b"x"), metadata=metadata)
    assert await keys_of(backend) == []


async def test_put_and_copy_keep_non_ascii_metadata_as_given(backend: StorageBackend) -> None:
    # S3 keeps non-ASCII user metadata as the Unicode text given (it travels RFC 2047 encoded).
    metadata = {"title": "Grüße, 世界", "plain": "ascii"}
    info = await backend.put("k", chunks(b"x"), metadata=metadata)
    assert dict(info.metadata) == metadata
    assert dict((await backend.head("k")).metadata) == metadata
    copied = await backend.copy("k", "k2", metadata={"note": "café"}, content_type="text/plain")
    assert (dict(copied.metadata), copied.content_type) == ({"note": "café"}, "text/plain")
    head = await backend.head("k2")
    assert (dict(head.metadata), head.content_type) == ({"note": "café"}, "text/plain")


async def test_check_reachable_store_returns(backend: StorageBackend) -> None:
    await backend.check()


async def test_sweep_temp_with_nothing_pending_removes_nothing(backend: StorageBackend) -> None:
    await backend.put("k", chunks(b"x"))
    assert await backend.sweep_temp(0) == 0
    assert await read_all(backend, "k") == b"x"


async def test_get_stream_closed_half_read_can_be_read_again(backend: StorageBackend) -> None:
    await backend.put("big", chunks(BIG))
    async with await backend.get("big") as stream:
        async for _ in stream:
            break
    await stream.aclose()
    assert await read_all(backend, "big") == BIG


async def test_keys_with_empty_segments_are_distinct_and_list_in_order(backend: StorageBackend) -> None:
    keys = ["p/a", "p/a/", "p/a//b", "p/a/b", "p/a/b/"]
    for key in keys:
        await backend.put(key, chunks(key.encode()))
    assert await keys_of(backend, "p/") == keys
    for key in keys:
        assert await read_all(backend, key) == key.encode()
    await backend.delete("p/a//b")
    assert await keys_of(backend, "p/") == ["p/a", "p/a/", "p/a/b", "p/a/b/"]
    assert await read_all(backend, "p/a/b") == b"p/a/b"


async def test_put_stores_headers_and_copy_keeps_or_replaces_them(backend: StorageBackend) -> None:
    headers = {
        "Cache-Control": "max-age=60",
        "content-disposition": 'attachment; filename="a.txt"',
        "content-encoding": "gzip",
        "content-language": "de",
        "expires": "Wed, 21 Oct 2037 07:28:00 GMT",
    }
    expected = {k.lower(): v for k, v in headers.items()}
    info = await backend.put("h", chunks(b"x"), content_type="text/plain", headers=headers)
    assert dict(info.headers) == expected
    assert dict((await backend.head("h")).headers) == expected
    async with await backend.get("h") as stream:
        assert dict(stream.info.headers) == expected
    kept = await backend.copy("h", "h2")
    assert dict(kept.headers) == expected
    assert dict((await backend.head("h2")).headers) == expected
    replaced = await backend.copy("h", "h3", metadata={}, headers={"cache-control": "no-store"})
    assert dict(replaced.headers) == {"cache-control": "no-store"}
    assert dict((await backend.head("h3")).headers) == {"cache-control": "no-store"}
    assert dict((await backend.head("h3")).metadata) == {}
    plain = await backend.put("p", chunks(b"x"))
    assert dict(plain.headers) == {}
    assert dict((await backend.head("p")).headers) == {}


@pytest.mark.parametrize("headers", [{"x-other": "1"}, {"cache-control": "a\nb"}, {"expires": "x" * 1025}])
async def test_put_bad_headers_raise_invalid_argument(backend: StorageBackend, headers: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument):
        await backend.put("k", chunks(b"x"), headers=headers)
    assert await keys_of(backend) == []
