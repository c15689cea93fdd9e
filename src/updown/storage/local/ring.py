"""Hash beside the write: an upload passes through one page-aligned ring that an MD5 thread and a
writer thread read at the same time, each in whole spans, with bounded memory.

Why a ring read in spans: the event loop copies each received chunk into the ring once, and each
thread then takes the GIL once per span (1 MiB or more) instead of once per chunk, which on two
cores is where a per-chunk queue lost its time (threads waiting for the GIL between chunks). The
spans are page-aligned, so the writer hands them straight to an ``O_DIRECT`` file with no staging
copy. Measured on the 2-core bench machine, 1 GiB through granian into a prototype of this ring
(16 MiB, 4 MiB spans): the loop's receiving phase took as long as the MD5 thread's hashing (2.1 s
each), where per-chunk queues added about a second to it.

Backpressure: the loop waits while the ring is full, which is how a slow disk reaches the client's
TCP window. Bodies smaller than one span never start the threads: they are hashed and written in one
worker-thread call at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mmap
import threading
from collections.abc import Callable

# Measured through `updown serve` (1 GiB PUTs against one MD5 pass, interleaved, 10 rounds, 1 MiB
# receive buffer): ring 16 MiB 0.89x median, 8 MiB 0.89x but rounds down to 0.83x, 4 MiB 0.85x;
# per-thread accounting showed the MD5 thread waiting for bytes while the writer sat out a slow
# O_DIRECT write, which a 4 MiB ring (6 ms of data) cannot cover. Pages of a ring are only
# resident once a body has filled them: a small body touches only its own bytes.
RING = 16 * 1024 * 1024
# Past BUDGET bytes of large rings in use (4 uploads at once), further uploads get SMALL_RING
# ones: an S3 client sends 10 parts at once, and 10 clients would otherwise hold 1.6 GiB.
SMALL_RING = 4 * 1024 * 1024
BUDGET = 64 * 1024 * 1024
SPAN = 1024 * 1024
_HASH, _WRITE = 0, 1


class RingPool:
    """Ring buffers handed from one upload to the next while uploads are in progress.

    A fresh anonymous map pays its page faults and zeroing again (2.2 ms per 4 MiB ring here),
    which a multipart upload of 8 MiB parts paid once per part: 0.28 s of CPU per GiB. A buffer
    given back is kept (up to ``keep`` of each size) only while another ring is in use, so an idle
    process holds none. Buffers are ``size`` long while fewer than ``budget`` bytes of those are in
    use, ``small`` long past it. A reused buffer still holds an earlier body's bytes; a ring only
    ever reads the bytes fed to it.
    """

    def __init__(self, size: int = RING, *, small: int = SMALL_RING, budget: int = BUDGET, keep: int = 4) -> None:
        self.size = size
        self.small = small
        self._budget = budget
        self._keep = keep
        self._spare: dict[int, list[mmap.mmap]] = {size: [], small: []}
        self._in_use = {size: 0, small: 0}
        self._lock = threading.Lock()

    def take(self) -> mmap.mmap:
        with self._lock:
            size = self.size if (self._in_use[self.size] + 1) * self.size <= self._budget else self.small
            self._in_use[size] += 1
            if self._spare[size]:
                return self._spare[size].pop()
        return mmap.mmap(-1, size)  # anonymous maps are page-aligned, as O_DIRECT needs

    def give(self, buffer: mmap.mmap | None, size: int) -> None:
        """Back from a ring of ``size`` bytes that is done with it (None: the ring closed it itself)."""
        with self._lock:
            self._in_use[size] -= 1
            busy = sum(self._in_use.values()) > 0
            if buffer is not None and busy and len(self._spare[size]) < self._keep:
                self._spare[size].append(buffer)
                return
            idle: list[mmap.mmap] = []
            if not busy:
                for spares in self._spare.values():
                    idle += spares
                    spares.clear()
        for spare in idle:
            spare.close()
        if buffer is not None:
            buffer.close()


class HashWriteRing:
    """Feeds chunks through a ring to an MD5 thread and a writer; ``close()`` returns the hex digest.

    ``write`` receives page-aligned memoryviews over the ring, in order, each a multiple of
    ``span`` long except the last; it must not keep them after returning.
    """

    def __init__(
        self,
        write: Callable[[memoryview], object],
        *,
        size: int = RING,
        span: int = SPAN,
        pool: RingPool | None = None,
    ) -> None:
        """``pool``: where the buffer comes from and goes back to (its buffer's size wins over ``size``)."""
        # anonymous maps are page-aligned, as O_DIRECT needs
        self._ring = mmap.mmap(-1, size) if pool is None else pool.take()
        size = len(self._ring)
        if span % mmap.PAGESIZE or size % span:
            self._ring.close()
            if pool is not None:
                pool.give(None, size)
            raise ValueError("the ring must be whole spans, and a span whole pages")
        self._loop = asyncio.get_running_loop()
        self._write = write
        self._size = size
        self._span = span
        self._pool = pool
        self._view = memoryview(self._ring)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._head = 0  # bytes fed so far
        self._pos = [0, 0]  # bytes consumed so far by [hash, write]
        self._ended = False  # no more chunks: the threads take what is left, aligned or not
        self._stopped = False  # aborted, or finished and released
        self._released = False  # the buffer is closed, or back in the pool
        self._cond = threading.Condition()
        self._room = asyncio.Event()
        self._waiting = False
        self._error: BaseException | None = None
        self._threads: tuple[threading.Thread, threading.Thread] | None = None

    async def feed(self, chunk: bytes) -> None:
        """Copies one chunk into the ring; waits while the ring is full.

        Raises:
            OSError (or whatever the writer raised): the write failed; stop feeding.
        """
        self._raise_if_failed()
        data = memoryview(chunk)
        while data:
            free = self._size - (self._head - min(self._pos))
            if free == 0:
                await self._wait_for_room()
                continue
            at = self._head % self._size
            n = min(len(data), free, self._size - at)
            self._view[at : at + n] = data[:n]
            data = data[n:]
            before = self._head
            self._head += n
            if before // self._span != self._head // self._span:
                self._wake_threads()

    async def close(self) -> str:
        """Waits until everything fed is hashed and written; returns the MD5 hex digest."""
        self._raise_if_failed()
        if self._threads is None:
            await asyncio.to_thread(self._drain_inline)
        else:
            with self._cond:
                self._ended = True
                self._cond.notify_all()
            await asyncio.to_thread(self._join)
            self._raise_if_failed()
        self._release(reuse=True)
        return self._md5.hexdigest()

    def abort(self) -> None:
        """Stops the threads and waits for them (at most one span of work each): for error paths."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._join()
        self._release()

    # ------------------------------------------------------------------ loop side

    def _wake_threads(self) -> None:
        if self._threads is None:
            self._threads = (
                threading.Thread(target=self._run, args=(_HASH,), daemon=True, name="updown-md5"),
                threading.Thread(target=self._run, args=(_WRITE,), daemon=True, name="updown-write"),
            )
            for t in self._threads:
                t.start()
            return
        with self._cond:
            self._cond.notify_all()

    async def _wait_for_room(self) -> None:
        self._room.clear()
        with self._cond:
            self._waiting = True
        # Checked again after raising the flag: a thread that advanced before seeing it did not wake us.
        if self._size - (self._head - min(self._pos)) < self._span and self._error is None:
            await self._room.wait()
        with self._cond:
            self._waiting = False
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _drain_inline(self) -> None:
        with self._view[: self._head] as body:
            self._md5.update(body)
            if body:
                self._write(body)

    def _join(self) -> None:
        if self._threads is not None:
            for t in self._threads:
                t.join()

    def _release(self, *, reuse: bool = False) -> None:
        """``reuse``: the body went through whole, so no view of the buffer is left anywhere and
        the pool may hand it on."""
        if self._released:
            return
        self._released = True
        self._stopped = True
        self._view.release()
        if reuse and self._pool is not None:
            self._pool.give(self._ring, self._size)
            return
        # An error's traceback may still hold a view of the ring: then it is freed along with it.
        with contextlib.suppress(BufferError):
            self._ring.close()
        if self._pool is not None:
            self._pool.give(None, self._size)

    # ------------------------------------------------------------------ thread side

    def _run(self, which: int) -> None:
        work: Callable[[memoryview], object] = self._md5.update if which == _HASH else self._write
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    pos = self._pos[which]
                    ready = self._head - pos
                    if ready >= self._span or (self._ended and ready > 0):
                        break
                    if self._ended:
                        return
                    self._cond.wait()
                ended = self._ended
            at = pos % self._size
            # Whole spans while chunks still come (the writer's offsets stay block-aligned);
            # the unaligned tail only once the body has ended.
            n = min(ready if ended else ready - ready % self._span, self._size - at)
            try:
                with self._view[at : at + n] as piece:
                    work(piece)
            except BaseException as exc:  # handed to the loop, which raises it from feed or close
                self._error = exc
                self._wake_loop()
                return
            self._pos[which] = pos + n
            # Once per wait, and only when a whole span is free: waking the loop is a cross-thread
            # call (a self-pipe write and a loop iteration), and a loop woken for less than a span
            # copies a sliver and waits again. Only the consumer that is behind can free a span.
            if self._waiting and self._size - (self._head - min(self._pos)) >= self._span:
                with self._cond:
                    wake, self._waiting = self._waiting, False
                if wake:
                    self._wake_loop()

    def _wake_loop(self) -> None:
        # The loop may be gone (a server stopping mid-upload); then nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._room.set)
