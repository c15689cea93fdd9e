"""Bodies to put and a reader that drains a stream: shared by the storage tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

from updown.storage.base import StorageBackend


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    """A body that yields ``parts`` one by one."""
    for part in parts:
        yield part


async def read_all(backend: StorageBackend, key: str, byte_range: tuple[int, int | None] | None = None) -> bytes:
    async with await backend.get(key, byte_range=byte_range) as stream:
        return b"".join([chunk async for chunk in stream])


async def failing_body(*parts: bytes, error: BaseException | None = None) -> AsyncIterator[bytes]:
    """Yields ``parts``, then raises (a client that went away midway)."""
    for part in parts:
        yield part
    raise error if error is not None else ConnectionResetError("client went away")
