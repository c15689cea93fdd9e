"""What every job queue shares: the job definitions (kind → handler, retry policy), the ``Queue``
interface both backends implement, how a job's state is told, and the worker's counters.

Two backends implement :class:`Queue`: ``processing.jobs.JobQueue`` (the ``jobs`` table, SQLite
or PostgreSQL) and ``processing.queue_procrastinate.ProcrastinateQueue`` (procrastinate's tables
on PostgreSQL). Both queue a job in the caller's SQLAlchemy transaction, so a job exists exactly
when the state change that calls for it commits; both deduplicate on ``(kind, dedupe)`` for as
long as the job's row is kept; both run a job at least once, so handlers are idempotent.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.orm import Session

log = logging.getLogger("updown.worker")

Handler = Callable[[Mapping[str, Any]], Awaitable[None]]

# Statuses as `updown jobs` and `GET /storage/uploads/{id}` tell them, whatever the backend.
QUEUED: Final = "queued"
RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"
STATUSES: Final = (QUEUED, RUNNING, DONE, FAILED)
ERROR_LIMIT: Final = 2000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` tries in all; try n+1 waits ``min(cap, first_delay * 2**(n-1))`` seconds
    after try n failed (2, 4, 8 … seconds, at most ten minutes)."""

    max_attempts: int = 5
    first_delay: float = 2.0
    cap: float = 600.0

    def delay(self, attempt: int) -> float | None:
        """Seconds before the next try after failed try ``attempt`` (1-based); None: failed for good."""
        if attempt >= self.max_attempts:
            return None
        return min(self.cap, self.first_delay * 2.0 ** (attempt - 1))


@dataclass(frozen=True, slots=True)
class JobDefinition:
    kind: str
    handler: Handler
    retry: RetryPolicy


class Registry:
    """The one list of job kinds, their handlers and retry policies; every backend runs from it."""

    def __init__(self) -> None:
        self._jobs: dict[str, JobDefinition] = {}

    def register(self, kind: str, handler: Handler, retry: RetryPolicy) -> None:
        if kind in self._jobs:
            raise ValueError(f"job kind {kind!r} is registered already")
        self._jobs[kind] = JobDefinition(kind, handler, retry)

    def get(self, kind: str) -> JobDefinition | None:
        return self._jobs.get(kind)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._jobs)

    def __iter__(self) -> Any:
        return iter(self._jobs.values())


@dataclass(frozen=True, slots=True)
class JobInfo:
    """One job as `updown jobs list` and the upload state tell it."""

    id: int
    kind: str
    dedupe: str
    status: str  # queued | running | done | failed (procrastinate's cancelled/aborted pass through)
    attempts: int
    last_error: str | None
    payload: Mapping[str, Any]
    updated_at: float | None

    @property
    def error_type(self) -> str | None:
        """The last error's exception type alone (``Type: message`` → ``Type``): what an API
        client may see; the message can name servers and paths, so only operators read it."""
        if not self.last_error:
            return None
        return self.last_error.split(":", 1)[0].strip()[:100] or None


class Queue(ABC):
    """Queued work. Enqueue in the caller's transaction; everything else opens its own."""

    backend: str

    @abstractmethod
    def enqueue(self, s: Session, kind: str, dedupe: str, payload: Mapping[str, Any]) -> bool:
        """Queues a job in the caller's transaction ``s``.

        Returns:
            False (and queues nothing) when a job of ``kind`` with ``dedupe`` exists already, in any
            status, until it is purged.
        """

    @abstractmethod
    def known(self, s: Session, kind: str, dedupes: Sequence[str]) -> set[str]:
        """Which of ``dedupes`` have a job of ``kind`` (one query, for reconcile's pages)."""

    @abstractmethod
    def get(self, kind: str, dedupe: str) -> JobInfo | None:
        """The job of ``kind`` queued with ``dedupe``, or None."""

    @abstractmethod
    def jobs(self, status: str | None = None, *, limit: int = 100) -> list[JobInfo]:
        """Jobs, newest first, of one status or all."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Jobs by status."""

    @abstractmethod
    def retry(self, ids: Iterable[int] | None = None) -> int:
        """Queues failed jobs again (``ids``, or every failed job when None); returns how many.
        A retried job gets one more try; its attempts count on."""

    @abstractmethod
    def purge(self, statuses: Sequence[str], older_than: float) -> int:
        """Deletes jobs in ``statuses`` (done, failed) unchanged for more than ``older_than``
        seconds; returns how many."""

    def purge_done(self, older_than: float) -> int:
        return self.purge((DONE,), older_than)

    def migrate(self) -> None:  # noqa: B027 - most backends have nothing of their own to create
        """Creates what the backend needs beyond the Alembic schema (idempotent)."""

    @abstractmethod
    def worker(self, registry: Registry, options: WorkerOptions) -> JobWorker:
        """A worker that runs this queue's jobs with ``registry``'s handlers."""


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    concurrency: int
    poll_interval: float
    shutdown_timeout: float
    periodic: Callable[[], None] | None = None
    periodic_interval: float = 5.0


class JobWorker(Protocol):
    """What `updown serve` (embedded) and `updown worker` drive, whatever the backend."""

    stats: WorkerStats

    async def run(self) -> None:
        """Runs jobs until :meth:`stop`; then waits up to the shutdown timeout for the jobs in
        hand and returns the others to the queue."""

    async def drain(self) -> int:
        """Runs jobs until none is runnable; returns how many ran."""

    def start_thread(self) -> None:
        """Runs :meth:`run` in a daemon thread with its own event loop (embedded mode)."""

    def stop(self, timeout: float = 10.0) -> None:
        """Asks the worker to stop (from any thread); joins its thread for up to ``timeout``."""

    @property
    def stopping(self) -> bool: ...


class WorkerStats:
    """The worker's Prometheus counters, in a registry of its own (served by `updown worker
    --health-port`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.done = Counter("updown_worker_jobs_done", "Jobs finished.", ["kind"], registry=self.registry)
        self.failed = Counter(
            "updown_worker_jobs_failed", "Job tries that raised (retried or failed).", ["kind"], registry=self.registry
        )
        self.running = Gauge("updown_worker_jobs_running", "Jobs running now.", registry=self.registry)
        self.seconds = Counter(
            "updown_worker_job_seconds", "Seconds spent in job handlers.", ["kind"], registry=self.registry
        )
        self.in_hand = 0


async def run_definition(
    definition: JobDefinition | None, kind: str, payload: Mapping[str, Any], stats: WorkerStats
) -> None:
    """Runs one try of a job through its handler, counted; raises what the handler raises."""
    if definition is None:
        raise LookupError(f"no handler for job kind {kind!r}")
    stats.running.inc()
    stats.in_hand += 1
    started = time.monotonic()
    try:
        await definition.handler(payload)
    except Exception:  # a cancelled try (the worker stopping) is returned, not failed
        stats.failed.labels(kind).inc()
        raise
    else:
        stats.done.labels(kind).inc()
    finally:
        stats.running.dec()
        stats.in_hand -= 1
        stats.seconds.labels(kind).inc(time.monotonic() - started)


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT]
