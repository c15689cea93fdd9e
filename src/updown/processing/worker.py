"""The database queue's worker: takes jobs from ``jobs.JobQueue`` and runs them through the job
registry, in `updown serve` (embedded mode, a background thread) or `updown worker`.

Leases decide who runs what. Stopping: no new claims; jobs in hand get ``shutdown_timeout``
seconds to finish, then they are cancelled and returned to the queue (their try counts).
"""

from __future__ import annotations

import logging
import threading

import anyio

from updown.processing.jobs import Claimed, JobQueue
from updown.processing.queue import Registry, WorkerOptions, WorkerStats, describe_error, run_definition
from updown.processing.stopping import Stopping

log = logging.getLogger("updown.worker")


class Worker:
    """Runs queued jobs of the registry's kinds, ``options.concurrency`` at a time."""

    def __init__(self, queue: JobQueue, registry: Registry, options: WorkerOptions) -> None:
        self.queue = queue
        self.registry = registry
        self.options = options
        self.stats = WorkerStats()
        self._stop = Stopping()
        self._thread: threading.Thread | None = None
        self._lanes = 0

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run_once(self) -> bool:
        """Claims and runs one job; False when there was none."""
        job = await anyio.to_thread.run_sync(self.queue.claim, self.registry.kinds)
        if job is None:
            return False
        await self._run(job)
        return True

    async def _run(self, job: Claimed) -> None:
        definition = self.registry.get(job.kind)
        try:
            await run_definition(definition, job.kind, job.payload, self.stats)
        except anyio.get_cancelled_exc_class():
            log.warning("job %s (%s) stopped by shutdown: returned to the queue", job.id, job.kind)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.queue.release, job)
            raise
        except Exception as exc:
            log.exception("job %s (%s) failed, attempt %s", job.id, job.kind, job.attempts)
            retry = definition.retry if definition is not None else None
            await anyio.to_thread.run_sync(self.queue.failed, job, describe_error(exc), retry)
        else:
            await anyio.to_thread.run_sync(self.queue.done, job)

    async def drain(self) -> int:
        """Runs jobs until none is runnable; returns how many ran (for the CLI and tests)."""
        ran = 0
        while await self.run_once():
            ran += 1
        return ran

    async def run(self) -> None:
        """Runs until :meth:`stop`, then lets jobs in hand finish for ``shutdown_timeout`` seconds."""
        lanes_done = anyio.Event()
        self._stop.attach()

        async def lane() -> None:
            self._lanes += 1
            try:
                while not self._stop.is_set():
                    try:
                        busy = await self.run_once()
                    except anyio.get_cancelled_exc_class():
                        raise
                    except Exception:  # the database went away for a moment: keep the worker alive
                        log.exception("worker: claiming a job failed")
                        busy = False
                    if not busy:
                        await self._stop.sleep(self.options.poll_interval)
            finally:
                self._lanes -= 1
                if self._lanes == 0:
                    lanes_done.set()

        async def periodic() -> None:
            while self.options.periodic is not None and not self._stop.is_set():
                try:
                    await anyio.to_thread.run_sync(self.options.periodic)
                except Exception:
                    log.exception("worker: periodic work failed")
                await self._stop.sleep(self.options.periodic_interval)

        async with anyio.create_task_group() as tg:
            for _ in range(self.options.concurrency):
                tg.start_soon(lane)
            tg.start_soon(periodic)
            await self._stop.wait()
            with anyio.move_on_after(self.options.shutdown_timeout):
                await lanes_done.wait()
            tg.cancel_scope.cancel()

    def start_thread(self) -> None:
        """Runs the worker in a daemon thread with its own event loop (embedded mode)."""
        self._thread = threading.Thread(target=lambda: anyio.run(self.run), name="updown-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
