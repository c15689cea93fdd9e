"""The worker: takes jobs from the queue and runs their handlers, in `updown serve` or `updown worker`.

Embedded mode runs one in a background thread of each server process; scale mode runs
`updown worker` processes. Either way, the queue's leases decide who runs what.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio

from updown.processing.jobs import JobQueue

log = logging.getLogger("updown.worker")

Handler = Callable[[Mapping[str, Any]], Awaitable[None]]


class Worker:
    """Runs queued jobs of the kinds it has handlers for, ``concurrency`` at a time."""

    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, Handler],
        *,
        poll_interval: float,
        concurrency: int = 1,
        periodic: Callable[[], None] | None = None,
    ) -> None:
        self.queue = queue
        self.handlers = dict(handlers)
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self.periodic = periodic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def run_once(self) -> bool:
        """Claims and runs one job; False when there was none."""
        job = await anyio.to_thread.run_sync(self.queue.claim, tuple(self.handlers))
        if job is None:
            return False
        try:
            await self.handlers[job.kind](job.payload)
        except Exception as exc:
            log.exception("job %s (%s) failed, attempt %s", job.id, job.kind, job.attempts)
            await anyio.to_thread.run_sync(self.queue.failed, job, f"{type(exc).__name__}: {exc}")
        else:
            await anyio.to_thread.run_sync(self.queue.done, job)
        return True

    async def drain(self) -> int:
        """Runs jobs until none is runnable; returns how many ran (for the CLI and tests)."""
        ran = 0
        while await self.run_once():
            ran += 1
        return ran

    async def run(self) -> None:
        """Runs until :meth:`stop`."""

        async def lane() -> None:
            while not self._stop.is_set():
                try:
                    busy = await self.run_once()
                except Exception:  # the database went away for a moment: keep the worker alive
                    log.exception("worker: claiming a job failed")
                    busy = False
                if not busy:
                    if self.periodic is not None:
                        try:
                            await anyio.to_thread.run_sync(self.periodic)
                        except Exception:
                            log.exception("worker: periodic work failed")
                    await anyio.sleep(self.poll_interval)

        async with anyio.create_task_group() as tg:
            for _ in range(self.concurrency):
                tg.start_soon(lane)

    def start_thread(self) -> None:
        """Runs the worker in a daemon thread with its own event loop (embedded mode)."""
        self._thread = threading.Thread(target=lambda: anyio.run(self.run), name="updown-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
