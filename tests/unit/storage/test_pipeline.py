"""The hash-beside-write pipeline: same digest and bytes as a plain loop, bounded queues, errors surface."""

from __future__ import annotations

import asyncio
import hashlib
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from updown.storage.pipeline import HashWritePipeline

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@given(chunks=st.lists(st.binary(max_size=5000), max_size=40))
@settings(max_examples=50, deadline=None)
def test_pipeline_digest_and_bytes_match_plain_loop(chunks: list[bytes]) -> None:
    async def go() -> tuple[str, bytes]:
        out = bytearray()
        p = HashWritePipeline(out.extend, limit=4096)
        for c in chunks:
            await p.feed(c)
        return await p.close(), bytes(out)

    digest, written = asyncio.run(go())
    assert written == b"".join(chunks)
    assert digest == hashlib.md5(b"".join(chunks), usedforsecurity=False).hexdigest()


async def test_pipeline_backpressure_bounds_queued_bytes() -> None:
    gate = threading.Event()
    peak = 0
    written = 0

    def slow_write(data: bytes) -> None:
        nonlocal written
        gate.wait()
        written += len(data)

    p = HashWritePipeline(slow_write, limit=10_000)
    fed = 0

    async def producer() -> None:
        nonlocal fed, peak
        for _ in range(100):
            await p.feed(b"x" * 1000)
            fed += 1000
            peak = max(peak, fed - written)

    task = asyncio.create_task(producer())
    await asyncio.sleep(0.2)
    assert not task.done()  # the writer is stuck, so the producer must be waiting for room
    assert fed <= 11_000
    gate.set()
    await task
    await p.close()
    assert written == 100_000


async def test_pipeline_write_error_surfaces_to_producer() -> None:
    def failing(data: bytes) -> None:
        raise OSError("disk full")

    p = HashWritePipeline(failing, limit=1000)

    async def feed_all() -> None:
        for _ in range(1000):
            await p.feed(b"y" * 500)
        await p.close()

    with pytest.raises(OSError, match="disk full"):
        await feed_all()
    p.abort()


async def test_pipeline_abort_stops_threads() -> None:
    p = HashWritePipeline(lambda data: None)
    await p.feed(b"z" * 100)
    p.abort()
    assert all(not t.is_alive() for t in p._threads)
