"""Local multipart uploads: parts of the common size written straight into their ranges of the
upload's object, completion without copying them, and what must hold around that (a re-sent part
wins, a cut-off one changes nothing, a part still arriving cannot touch a completed object, a
refused or failed completion, abort and crash leftovers)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.bodies import chunks, failing_body, read_all
from updown.errors import InvalidPart, NoSuchKey, NoSuchUpload, ServiceUnavailable
from updown.storage.local import LocalBackend, parts, spool
from updown.storage.local.ring import HashWriteRing, RingPool

pytestmark = pytest.mark.anyio

# Two whole ring spans and one block: ranges take spans while the body streams, then the tail.
SIZE = 2 * 1024 * 1024 + 4096


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path / "store", min_part_size=SIZE)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def etag_of(*bodies: bytes) -> str:
    joined = md5(b"".join(hashlib.md5(b, usedforsecurity=False).digest() for b in bodies))
    return f"{joined}-{len(bodies)}"


def upload_dir(store: LocalBackend, upload_id: str) -> Path:
    return store.root / "multipart" / upload_id


def names(store: LocalBackend, upload_id: str) -> set[str]:
    return {p.name for p in upload_dir(store, upload_id).iterdir()}


def version_file(store: LocalBackend, key: str) -> Path:
    obj_dir = store.object_dir(key)
    return next(p for p in obj_dir.iterdir() if p.name != "meta")


async def put(store: LocalBackend, key: str, upload_id: str, number: int, body: bytes) -> str:
    part = await store.put_part(key, upload_id, number, chunks(body), content_length=len(body))
    return part.etag


def leftovers(store: LocalBackend) -> list[str]:
    store._reaper.drain()
    return sorted(p.name for p in (store.root / "tmp").iterdir())


async def test_local_multipart_parts_of_one_size_complete_without_a_copy(store: LocalBackend) -> None:
    bodies = [os.urandom(SIZE), os.urandom(SIZE), b"the last part is small"]
    upload_id = await store.create_multipart("mp/a", content_type="text/plain")
    obj = upload_dir(store, upload_id) / parts.OBJECT_FILE
    inode = obj.stat().st_ino
    etags = [await put(store, "mp/a", upload_id, n, b) for n, b in enumerate(bodies, 1)]
    # The first two went into their ranges; the small last part into a file of its own.
    assert names(store, upload_id) >= {f"1.{etags[0]}.{SIZE}", f"2.{etags[1]}.{SIZE}", f"3.{etags[2]}"}
    listed = await store.list_parts("mp/a", upload_id)
    assert [(p.part_number, p.etag, p.size) for p in listed] == [
        (1, etags[0], SIZE),
        (2, etags[1], SIZE),
        (3, etags[2], 22),
    ]
    info = await store.complete_multipart("mp/a", upload_id, list(enumerate(etags, 1)))
    assert (info.etag, info.size) == (etag_of(*bodies), sum(map(len, bodies)))
    # The object file became the version: same inode, cut to size; the upload is gone.
    version = version_file(store, "mp/a")
    assert (version.stat().st_ino, version.stat().st_size) == (inode, info.size)
    assert await read_all(store, "mp/a") == b"".join(bodies)
    assert not upload_dir(store, upload_id).exists()
    assert leftovers(store) == []


async def test_local_multipart_uneven_or_gapped_parts_are_copied(store: LocalBackend) -> None:
    first, bigger, last = os.urandom(SIZE), os.urandom(SIZE + 4096), os.urandom(100)
    upload_id = await store.create_multipart("mp/uneven")
    listed = [(1, await put(store, "mp/uneven", upload_id, 1, first))]
    listed.append((2, await put(store, "mp/uneven", upload_id, 2, bigger)))
    listed.append((3, await put(store, "mp/uneven", upload_id, 3, last)))
    info = await store.complete_multipart("mp/uneven", upload_id, listed)
    assert await read_all(store, "mp/uneven") == first + bigger + last
    assert info.etag == etag_of(first, bigger, last)

    # Parts 1 and 3 in their ranges, but 2 missing: the object is 1 then 3, copied.
    one, three = os.urandom(SIZE), os.urandom(SIZE)
    upload_id = await store.create_multipart("mp/gap")
    gapped = [(1, await put(store, "mp/gap", upload_id, 1, one)), (3, await put(store, "mp/gap", upload_id, 3, three))]
    assert f"3.{md5(three)}.{SIZE}" in names(store, upload_id)
    await store.complete_multipart("mp/gap", upload_id, gapped)
    assert await read_all(store, "mp/gap") == one + three
    assert leftovers(store) == []


async def test_local_multipart_a_resent_part_wins_and_is_copied_into_its_range(store: LocalBackend) -> None:
    old, new, two = os.urandom(SIZE), os.urandom(SIZE), os.urandom(SIZE)
    upload_id = await store.create_multipart("mp/resend")
    await put(store, "mp/resend", upload_id, 1, old)
    # The range is taken by the part settled there: the re-sent copy is a file of its own, and wins.
    fresh = await put(store, "mp/resend", upload_id, 1, new)
    assert f"1.{fresh}" in names(store, upload_id)
    assert not any(n.startswith(f"1.{md5(old)}") for n in names(store, upload_id))
    tail = await put(store, "mp/resend", upload_id, 2, two)
    assert [p.etag for p in await store.list_parts("mp/resend", upload_id)] == [fresh, tail]
    with pytest.raises(InvalidPart):
        await store.complete_multipart("mp/resend", upload_id, [(1, md5(old)), (2, tail)])
    await store.complete_multipart("mp/resend", upload_id, [(1, fresh), (2, tail)])
    assert await read_all(store, "mp/resend") == new + two


async def test_local_multipart_a_cut_off_part_frees_its_range_and_keeps_what_was_there(store: LocalBackend) -> None:
    body = os.urandom(SIZE)
    upload_id = await store.create_multipart("mp/cut")
    with pytest.raises(ConnectionResetError):
        await store.put_part("mp/cut", upload_id, 1, failing_body(body[: SIZE // 2]), content_length=SIZE)
    assert await store.list_parts("mp/cut", upload_id) == ()
    assert "1.claim" not in names(store, upload_id)
    # The range is free again: the next copy of part 1 goes there.
    first = await put(store, "mp/cut", upload_id, 1, body)
    assert f"1.{first}.{SIZE}" in names(store, upload_id)
    # A cut-off copy of a part settled in its range changes neither the part nor its bytes.
    with pytest.raises(ConnectionResetError):
        await store.put_part("mp/cut", upload_id, 1, failing_body(os.urandom(SIZE // 2)), content_length=SIZE)
    assert [p.etag for p in await store.list_parts("mp/cut", upload_id)] == [first]
    await store.complete_multipart("mp/cut", upload_id, [(1, first)])
    assert await read_all(store, "mp/cut") == body
    assert leftovers(store) == []


async def test_local_multipart_a_part_still_arriving_cannot_touch_the_completed_object(store: LocalBackend) -> None:
    bodies = [os.urandom(SIZE) for _ in range(2)]
    upload_id = await store.create_multipart("mp/fence")
    listed = [(n, await put(store, "mp/fence", upload_id, n, b)) for n, b in enumerate(bodies, 1)]
    halfway, go_on = asyncio.Event(), asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield os.urandom(SIZE // 2)  # a whole span of it reaches the range
        halfway.set()
        await go_on.wait()
        yield os.urandom(SIZE - SIZE // 2)

    late = asyncio.create_task(store.put_part("mp/fence", upload_id, 3, slow(), content_length=SIZE))
    await halfway.wait()
    await asyncio.sleep(0.05)  # let the ring's writer reach the range
    info = await store.complete_multipart("mp/fence", upload_id, listed)
    go_on.set()
    with pytest.raises(NoSuchUpload):
        await late
    version = version_file(store, "mp/fence")
    assert version.stat().st_size == info.size == 2 * SIZE
    assert await read_all(store, "mp/fence") == b"".join(bodies)
    assert leftovers(store) == []


async def test_local_multipart_a_refused_completion_gives_the_object_back(store: LocalBackend) -> None:
    bodies = [os.urandom(SIZE), os.urandom(SIZE)]
    upload_id = await store.create_multipart("mp/refused")
    listed = [(n, await put(store, "mp/refused", upload_id, n, b)) for n, b in enumerate(bodies, 1)]
    with pytest.raises(InvalidPart):
        await store.complete_multipart("mp/refused", upload_id, [*listed, (3, md5(b"never sent"))])
    assert (upload_dir(store, upload_id) / parts.OBJECT_FILE).exists()
    assert [p.etag for p in await store.list_parts("mp/refused", upload_id)] == [e for _, e in listed]
    with pytest.raises(NoSuchKey):
        await store.head("mp/refused")
    # Parts go on landing in their ranges, and the upload completes as before.
    three = os.urandom(5)
    listed.append((3, await put(store, "mp/refused", upload_id, 3, three)))
    await store.complete_multipart("mp/refused", upload_id, listed)
    assert await read_all(store, "mp/refused") == b"".join(bodies) + three
    assert leftovers(store) == []


async def test_local_multipart_a_failed_completion_lists_no_part_whose_bytes_went(
    store: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    ranged, own = os.urandom(SIZE), b"small"
    upload_id = await store.create_multipart("mp/failed")
    listed = [
        (1, await put(store, "mp/failed", upload_id, 1, ranged)),
        (2, await put(store, "mp/failed", upload_id, 2, own)),
    ]

    def broken(fd: int, length: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(parts.os, "ftruncate", broken)
    with pytest.raises(ServiceUnavailable):
        await store.complete_multipart("mp/failed", upload_id, listed)
    monkeypatch.undo()
    with pytest.raises(NoSuchKey):
        await store.head("mp/failed")
    # The object went with the failure, and so did the part in its range; the other is still there.
    assert [p.part_number for p in await store.list_parts("mp/failed", upload_id)] == [2]
    assert leftovers(store) == []
    # Sent again, part 1 is a file of its own, and the upload completes by copying.
    again = await put(store, "mp/failed", upload_id, 1, ranged)
    await store.complete_multipart("mp/failed", upload_id, [(1, again), listed[1]])
    assert await read_all(store, "mp/failed") == ranged + own


async def test_local_multipart_abort_and_sweep_reclaim_ranges_and_claims(store: LocalBackend) -> None:
    upload_id = await store.create_multipart("mp/abort")
    await put(store, "mp/abort", upload_id, 1, os.urandom(SIZE))
    await store.abort_multipart("mp/abort", upload_id)
    assert list((store.root / "multipart").iterdir()) == []
    with pytest.raises(NoSuchUpload):
        await put(store, "mp/abort", upload_id, 2, os.urandom(SIZE))
    assert leftovers(store) == []
    # A crash mid-part leaves a claim: never a part, and the range stays out of use; the sweep
    # takes the whole upload once it is old enough.
    upload_id = await store.create_multipart("mp/crashed")
    (upload_dir(store, upload_id) / "1.claim").touch()
    assert await store.list_parts("mp/crashed", upload_id) == ()
    etag = await put(store, "mp/crashed", upload_id, 1, b"x" * SIZE)
    assert f"1.{etag}" in names(store, upload_id)
    assert await store.sweep_temp(0) >= 1
    assert list((store.root / "multipart").iterdir()) == []


async def test_local_multipart_upload_without_an_object_file_completes_by_copying(store: LocalBackend) -> None:
    # As uploads made before ranges existed are on disk: parts only, each a file of its own.
    bodies = [os.urandom(SIZE), b"end"]
    upload_id = await store.create_multipart("mp/old")
    (upload_dir(store, upload_id) / parts.OBJECT_FILE).unlink()
    listed = [(n, await put(store, "mp/old", upload_id, n, b)) for n, b in enumerate(bodies, 1)]
    assert names(store, upload_id) >= {f"1.{listed[0][1]}", f"2.{listed[1][1]}"}
    await store.complete_multipart("mp/old", upload_id, listed)
    assert await read_all(store, "mp/old") == b"".join(bodies)


async def test_local_multipart_ranges_without_o_direct(store: LocalBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool, "_O_DIRECT", 0)
    bodies = [os.urandom(SIZE), os.urandom(SIZE)]
    upload_id = await store.create_multipart("mp/buffered")
    listed = [(n, await put(store, "mp/buffered", upload_id, n, b)) for n, b in enumerate(bodies, 1)]
    assert f"2.{listed[1][1]}.{SIZE}" in names(store, upload_id)
    await store.complete_multipart("mp/buffered", upload_id, listed)
    assert await read_all(store, "mp/buffered") == b"".join(bodies)


async def test_local_multipart_concurrent_parts_share_the_object(store: LocalBackend) -> None:
    bodies = [os.urandom(SIZE) for _ in range(6)] + [b"tail"]
    upload_id = await store.create_multipart("mp/many")
    etags = await asyncio.gather(*(put(store, "mp/many", upload_id, n, b) for n, b in enumerate(bodies, 1)))
    info = await store.complete_multipart("mp/many", upload_id, list(enumerate(etags, 1)))
    assert info.etag == etag_of(*bodies)
    assert await read_all(store, "mp/many") == b"".join(bodies)


def test_ring_pool_hands_buffers_on_while_in_use_and_frees_them_when_idle() -> None:
    size = 4096 * 4
    pool = RingPool(size, small=4096 * 2, budget=size * 2, keep=2)
    a, b = pool.take(), pool.take()
    pool.give(a, size)  # b is still in use: a is kept for the next ring
    assert pool.take() is a
    pool.give(None, size)  # a ring that closed its own buffer (an error path)
    pool.give(b, size)  # nothing in use any more: everything goes back to the kernel
    assert b.closed
    c = pool.take()
    assert c is not a
    assert c is not b
    pool.give(c, size)
    assert c.closed
    a.close()


def test_ring_pool_hands_out_small_buffers_past_its_budget() -> None:
    size, small = 4096 * 4, 4096 * 2
    pool = RingPool(size, small=small, budget=size * 2, keep=2)
    taken = [pool.take() for _ in range(4)]
    assert [len(t) for t in taken] == [size, size, small, small]
    pool.give(taken[0], size)  # room under the budget again: the next one is large, and reused
    again = pool.take()
    assert again is taken[0]
    for t in (again, *taken[1:]):
        pool.give(t, len(t))
    assert all(t.closed for t in taken)


async def test_ring_from_the_pool_takes_its_buffer_size() -> None:
    size, small = 4096 * 4, 4096 * 2
    pool = RingPool(size, small=small, budget=size)
    written: list[bytes] = []
    first = HashWriteRing(lambda v: written.append(bytes(v)), span=4096, pool=pool)
    second = HashWriteRing(lambda v: written.append(bytes(v)), span=4096, pool=pool)
    body = os.urandom(small * 3 + 5)  # several laps of the small ring
    await second.feed(body)
    assert await second.close() == hashlib.md5(body, usedforsecurity=False).hexdigest()
    assert b"".join(written) == body
    first.abort()
