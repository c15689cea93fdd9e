"""Hash beside the write: a body is MD5-hashed and written by two threads at once, with bounded memory.

The event loop only hands chunks over (no copies: the same ``bytes`` go to both threads), so the
upload runs at the speed of the slower of MD5 and the disk, not their sum, and the loop stays free
to receive the next chunks. At most ``limit`` bytes wait in either thread; past that the producer
awaits room, which is how backpressure reaches the client's TCP window.
"""

from __future__ import annotations

import asyncio
import hashlib
import queue
import threading
from collections.abc import Callable

_STOP: bytes = b""  # the sentinel: real chunks are never empty (empty ones are not fed)


class HashWritePipeline:
    """Feeds chunks to an MD5 thread and a writer thread; ``close()`` returns the hex digest."""

    def __init__(self, write: Callable[[bytes], None], *, limit: int = 4 * 1024 * 1024) -> None:
        self._loop = asyncio.get_running_loop()
        self._write = write
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._limit = limit
        self._lock = threading.Lock()
        self._pending = [0, 0]  # bytes queued for [hash, write]
        self._room = asyncio.Event()
        self._room.set()
        self._error: BaseException | None = None
        self._queues: tuple[queue.SimpleQueue[bytes], queue.SimpleQueue[bytes]] = (
            queue.SimpleQueue(),
            queue.SimpleQueue(),
        )
        self._threads = (
            threading.Thread(target=self._run, args=(0, self._md5.update), daemon=True, name="updown-md5"),
            threading.Thread(target=self._run, args=(1, write), daemon=True, name="updown-write"),
        )
        for t in self._threads:
            t.start()
        self._closed = False

    async def feed(self, chunk: bytes) -> None:
        """Queues one chunk for both threads; waits while either has ``limit`` bytes queued.

        Raises:
            OSError (or whatever the writer raised): the write failed; stop feeding.
        """
        if self._error is not None:
            raise self._error
        if not chunk:
            return
        size = len(chunk)
        with self._lock:
            self._pending[0] += size
            self._pending[1] += size
            full = max(self._pending) > self._limit
            if full:
                self._room.clear()
        self._queues[0].put(chunk)
        self._queues[1].put(chunk)
        if full:
            await self._room.wait()
            if self._error is not None:
                raise self._error

    async def close(self) -> str:
        """Waits for both threads to finish; returns the MD5 hex digest of everything fed."""
        self._stop()
        await asyncio.to_thread(self._join)
        if self._error is not None:
            raise self._error
        return self._md5.hexdigest()

    def abort(self) -> None:
        """Stops both threads and waits for them (at most ``limit`` bytes of work): for error paths."""
        self._stop()
        self._join()

    def _stop(self) -> None:
        if not self._closed:
            self._closed = True
            for q in self._queues:
                q.put(_STOP)

    def _join(self) -> None:
        for t in self._threads:
            t.join()

    def _run(self, which: int, work: Callable[[bytes], object]) -> None:
        q = self._queues[which]
        failed = False
        while (chunk := q.get()) is not _STOP:
            if not failed:
                try:
                    work(chunk)
                except BaseException as exc:  # handed to the producer, which raises it
                    failed = True
                    self._error = exc
            with self._lock:
                self._pending[which] -= len(chunk)
                wake = failed or max(self._pending) <= self._limit // 2
            if wake and not self._room.is_set():
                self._loop.call_soon_threadsafe(self._room.set)
