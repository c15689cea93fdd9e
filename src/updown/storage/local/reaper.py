"""Removing replaced and deleted version files off the request path, in one background thread."""

from __future__ import annotations

import os
import queue
import secrets
import threading
from pathlib import Path

_IDLE_SECONDS = 5.0  # the thread ends after this long with nothing to remove; the next retire starts one


class Reaper:
    """Moves a retired file into the temp directory at once and unlinks it later, in a thread.

    Freeing a big file's blocks is slow (0.9 s per GiB measured on the bench machine's ext4 with
    ``discard``) and no reason to keep a client waiting for its PUT or DELETE. The rename is
    instant and takes the file out of the object tree; if the process stops before the unlink,
    the file waits in the temp directory, where the temp sweep removes it.
    """

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self._queue: queue.Queue[Path] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def retire(self, path: Path) -> None:
        """Takes ``path`` out of its place now and removes it soon; a missing file is ignored."""
        parked = self._tmp / f"{secrets.token_hex(16)}.retired"
        try:
            os.rename(path, parked)
        except FileNotFoundError:
            return
        with self._lock:  # queued under the lock, so an idle thread cannot leave it behind
            self._queue.put(parked)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="updown-reaper")
                self._thread.start()

    def drain(self) -> None:
        """Waits until every retired file so far is removed."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            try:
                path = self._queue.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass  # left for the temp sweep
            finally:
                self._queue.task_done()
