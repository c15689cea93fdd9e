"""The hash-beside-write ring: same digest and bytes as a plain loop, aligned spans, bounded memory,
errors surface, abort stops the threads."""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import mmap
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from updown.storage.local.ring import HashWriteRing

pytestmark = pytest.mark.anyio

PAGE = mmap.PAGESIZE


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@given(chunks=st.lists(st.binary(max_size=3 * PAGE), max_size=40), ring_pages=st.sampled_from([1, 2, 4]))
@settings(max_examples=60, deadline=None)
def test_ring_digest_and_bytes_match_plain_loop(chunks: list[bytes], ring_pages: int) -> None:
    async def go() -> tuple[str, bytes]:
        out = bytearray()
        p = HashWriteRing(out.extend, size=ring_pages * PAGE, span=PAGE)
        for c in chunks:
            await p.feed(c)
        return await p.close(), bytes(out)

    digest, written = asyncio.run(go())
    assert written == b"".join(chunks)
    assert digest == hashlib.md5(b"".join(chunks), usedforsecurity=False).hexdigest()


async def test_ring_writes_whole_aligned_spans_then_the_tail() -> None:
    lengths: list[int] = []
    addresses: list[int] = []

    def write(view: memoryview) -> None:
        lengths.append(len(view))
        addresses.append(ctypes.addressof(ctypes.c_char.from_buffer(view)))

    p = HashWriteRing(write, size=4 * PAGE, span=PAGE)
    for _ in range(10):
        await p.feed(b"a" * (PAGE // 3 + 1))
    await p.close()
    assert sum(lengths) == 10 * (PAGE // 3 + 1)
    assert all(n % PAGE == 0 for n in lengths[:-1])
    assert all(a % PAGE == 0 for a in addresses)


async def test_ring_small_body_is_written_without_threads() -> None:
    out = bytearray()
    p = HashWriteRing(out.extend, size=4 * PAGE, span=PAGE)
    await p.feed(b"small")
    assert p._threads is None
    assert await p.close() == hashlib.md5(b"small", usedforsecurity=False).hexdigest()
    assert out == b"small"


async def test_ring_empty_body_writes_nothing() -> None:
    calls: list[int] = []
    p = HashWriteRing(lambda v: calls.append(len(v)), size=PAGE, span=PAGE)
    assert await p.close() == hashlib.md5(b"", usedforsecurity=False).hexdigest()
    assert calls == []


async def test_ring_backpressure_bounds_buffered_bytes() -> None:
    gate = threading.Event()
    written = 0

    def slow_write(data: memoryview) -> None:
        nonlocal written
        gate.wait()
        written += len(data)

    p = HashWriteRing(slow_write, size=4 * PAGE, span=PAGE)
    fed = 0

    async def producer() -> None:
        nonlocal fed
        for _ in range(100):
            await p.feed(b"x" * 1000)
            fed += 1000

    task = asyncio.create_task(producer())
    await asyncio.sleep(0.2)
    assert not task.done()  # the writer is stuck, so the producer must be waiting for room
    assert fed <= 4 * PAGE
    gate.set()
    await task
    await p.close()
    assert written == 100_000


async def test_ring_write_error_surfaces_to_producer() -> None:
    def failing(data: memoryview) -> None:
        raise OSError("disk full")

    p = HashWriteRing(failing, size=2 * PAGE, span=PAGE)

    async def feed_all() -> None:
        for _ in range(1000):
            await p.feed(b"y" * 500)
        await p.close()

    with pytest.raises(OSError, match="disk full"):
        await feed_all()
    p.abort()


async def test_ring_write_error_in_small_body_surfaces_from_close() -> None:
    def failing(data: memoryview) -> None:
        raise OSError("disk full")

    p = HashWriteRing(failing, size=2 * PAGE, span=PAGE)
    await p.feed(b"tiny")
    with pytest.raises(OSError, match="disk full"):
        await p.close()
    p.abort()


async def test_ring_abort_stops_threads_and_frees_the_ring() -> None:
    p = HashWriteRing(lambda data: None, size=4 * PAGE, span=PAGE)
    await p.feed(b"z" * (2 * PAGE))
    assert p._threads is not None
    p.abort()
    assert all(not t.is_alive() for t in p._threads)
    assert p._ring.closed


def test_ring_refuses_spans_that_are_not_whole_pages() -> None:
    async def make() -> None:
        HashWriteRing(lambda data: None, size=3 * 1000, span=1000)

    with pytest.raises(ValueError, match="whole pages"):
        asyncio.run(make())


def test_ring_threads_outliving_their_loop_end_quietly() -> None:
    gate = threading.Event()
    rings: list[HashWriteRing] = []

    async def fill() -> None:
        p = HashWriteRing(lambda view: gate.wait(), size=2 * PAGE, span=PAGE)
        await p.feed(b"x" * (2 * PAGE))  # the threads start; the writer blocks in the gate
        rings.append(p)

    asyncio.run(fill())  # the loop is closed from here on
    p = rings[0]
    p._waiting = True  # as if the loop were waiting for room: the writer will try to wake it
    gate.set()
    p.abort()
    assert p._threads is not None
    assert all(not t.is_alive() for t in p._threads)
