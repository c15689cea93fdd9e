"""The temp file an upload is spooled to before its commit: O_DIRECT where the file system allows it."""

from __future__ import annotations

import errno
import mmap
import os
import threading
from pathlib import Path
from typing import Final

from updown.errors import InvalidKey, ServiceUnavailable, UpdownError

_FILE_MODE: Final = 0o600
_WRITEBACK_EVERY: Final = 16 * 1024 * 1024
# O_DIRECT: offsets and lengths must be multiples of the device's logical block size (4096 covers
# 512 too). Staging buffer: 1, 2, 4 and 8 MiB measured within noise (2 keeps RSS low).
_O_DIRECT: Final = getattr(os, "O_DIRECT", 0)
_DIRECT_BLOCK: Final = 4096
_DIRECT_STAGE: Final = 2 * 1024 * 1024


class SpoolFile:
    """A temp file being written; its lock keeps `discard` from racing a write in a thread.

    Written with ``O_DIRECT`` where the file system allows it: bytes go from an aligned staging
    buffer straight to the device, so the kernel neither copies them into the page cache nor
    writes them back later, and the final fsync has only metadata left. Measured on the 2-core
    bench machine, 1 GiB presigned PUT through `updown serve`: worker CPU 3.0-4.6 s -> 2.5 s per
    GiB, and ``python -m bench dataplane`` PUT ratio 0.48x -> 0.69-0.73x (4 runs), against
    buffered writes with ``posix_fadvise``.
    Where ``O_DIRECT`` is refused (tmpfs, some FUSE), plain buffered writes are used.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        self._stage: mmap.mmap | None = None
        try:
            self._fd = os.open(path, flags | _O_DIRECT, _FILE_MODE) if _O_DIRECT else -1
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self._fd = -1
        if self._fd >= 0:
            self._stage = mmap.mmap(-1, _DIRECT_STAGE)  # page-aligned, as O_DIRECT needs
        else:
            self._fd = os.open(path, flags, _FILE_MODE)
        self._lock = threading.Lock()
        self._open = True
        self._filled = 0  # bytes waiting in the staging buffer
        self._written = 0
        self._flushed = 0

    def write(self, data: bytes) -> None:
        with self._lock:
            if not self._open:
                return
            if self._stage is None:
                self._write_buffered(data)
                return
            view = memoryview(data)
            while view:
                n = min(len(view), _DIRECT_STAGE - self._filled)
                self._stage[self._filled : self._filled + n] = view[:n]
                self._filled += n
                view = view[n:]
                if self._filled == _DIRECT_STAGE:
                    self._write_stage(_DIRECT_STAGE)

    def _write_stage(self, size: int) -> None:
        assert self._stage is not None
        view = memoryview(self._stage)[:size]
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        finally:
            view.release()
        self._written += self._filled
        self._filled = 0

    def _write_buffered(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._written += len(data)
        if self._written - self._flushed >= _WRITEBACK_EVERY:
            # Start writeback of what is written so far and drop it from the page cache: the
            # final fsync then has little left to do, and a big upload does not fill memory
            # with dirty pages that stall every writer on the machine at once.
            os.posix_fadvise(self._fd, self._flushed, self._written - self._flushed, os.POSIX_FADV_DONTNEED)
            self._flushed = self._written

    def write_mapped(self, data: bytes) -> None:
        """:meth:`write`, with OSError turned into ours (the pipeline's thread hands it to the caller)."""
        try:
            self.write(data)
        except OSError as exc:
            raise map_os_error(exc) from exc

    def finish(self) -> None:
        """Flush to disk and close."""
        with self._lock:
            if self._filled:
                # O_DIRECT writes whole blocks: pad the tail, then cut the file back to its size.
                size = self._written + self._filled
                pad = -self._filled % _DIRECT_BLOCK
                assert self._stage is not None
                self._stage[self._filled : self._filled + pad] = bytes(pad)
                self._write_stage(self._filled + pad)
                os.ftruncate(self._fd, size)
            os.fsync(self._fd)
            self._close()

    def discard(self) -> None:
        with self._lock:
            if self._open:
                self._close()
            self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        self._open = False
        os.close(self._fd)
        if self._stage is not None:
            self._stage.close()


def map_os_error(exc: OSError) -> UpdownError:
    """File system errors as ours; no paths reach the message."""
    if exc.errno == errno.ENAMETOOLONG:
        return InvalidKey("the key is too long for this file system")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ServiceUnavailable("the storage volume is full")
    return ServiceUnavailable(f"local storage failed: {exc.strerror or type(exc).__name__}")
