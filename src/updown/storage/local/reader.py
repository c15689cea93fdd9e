"""Reading one version file by offset: from the page cache on the event loop, else in a thread."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Final

from updown.storage.local.spool import map_os_error

# Reads of objects: 256 KiB pieces, read on the event loop when the page cache holds them
# (preadv with RWF_NOWAIT) and in a worker thread when they must come from the disk.
READ_CHUNK: Final = 256 * 1024
RWF_NOWAIT: Final = getattr(os, "RWF_NOWAIT", 0)
# EAGAIN: not cached; EOPNOTSUPP/EINVAL: a file system or kernel without RWF_NOWAIT for reads.
_WOULD_BLOCK: Final = frozenset({errno.EAGAIN, errno.EOPNOTSUPP, errno.EINVAL})


class Reader:
    """One open version file; reads by offset, so no shared position between threads."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._open = True

    def read(self, size: int, offset: int) -> bytes:
        with self._lock:
            if not self._open:
                return b""
            return os.pread(self._fd, size, offset)

    def read_cached(self, size: int, offset: int) -> bytearray | None:
        """Reads only what the page cache already holds, without blocking: None when the bytes
        would have to come from the disk (then `read` them in a thread).

        Returns the ``bytearray`` read into: turning it into ``bytes`` would copy every piece
        again, which halved a bare granian app's download rate here (2.0 -> 1.0 GiB/s).
        """
        if not RWF_NOWAIT:
            return None
        buf = bytearray(size)
        with self._lock:
            if not self._open:
                return bytearray()
            try:
                n = os.preadv(self._fd, [buf], offset, RWF_NOWAIT)
            except OSError as exc:
                if exc.errno in _WOULD_BLOCK:
                    return None
                raise map_os_error(exc) from exc
        if n == 0:
            return None  # nothing cached here (or the end of the file): let `read` tell which
        if n < size:
            del buf[n:]
        return buf

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._open = False
                os.close(self._fd)
