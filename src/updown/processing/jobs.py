"""The database job queue (``queue.backend = "database"``): the ``jobs`` table, on SQLite or
PostgreSQL. Work survives a crash, runs at least once, and is never lost.

A job is queued in the same transaction as the state change that calls for it. A worker claims one
with a lease (``locked_until``); a worker that dies (kill -9) leaves its lease to run out, and the
job is claimed again. Claiming is a conditional UPDATE, so two workers (threads or processes, on
SQLite or PostgreSQL) never both win. A failing job is retried with its kind's backoff, then marked
``failed`` with its last error. Handlers must be idempotent: a job can run twice.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from updown.clock import Clock
from updown.db.engine import Database
from updown.db.models.files import Job
from updown.db.upsert import insert_if_absent
from updown.processing.queue import (
    DONE,
    ERROR_LIMIT,
    FAILED,
    QUEUED,
    RUNNING,
    JobInfo,
    JobWorker,
    Queue,
    Registry,
    RetryPolicy,
    WorkerOptions,
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job a worker holds until ``locked_until``."""

    id: int
    kind: str
    payload: Mapping[str, Any]
    attempts: int
    locked_until: float


class JobQueue(Queue):
    """Queued work in the ``jobs`` table."""

    backend = "database"

    def __init__(self, db: Database, clock: Clock, *, lease: float, max_attempts: int) -> None:
        self.db = db
        self.clock = clock
        self.lease = lease
        self.max_attempts = max_attempts
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    def enqueue(self, s: Session, kind: str, dedupe: str, payload: Mapping[str, Any]) -> bool:
        now = self.clock.now()
        return insert_if_absent(
            s,
            Job(
                kind=kind,
                dedupe=f"{kind}:{dedupe}",
                payload=dict(payload),
                status=QUEUED,
                attempts=0,
                run_after=now,
                created_at=now,
                updated_at=now,
            ),
            unique="dedupe",
        )

    def known(self, s: Session, kind: str, dedupes: Sequence[str]) -> set[str]:
        if not dedupes:
            return set()
        prefix = f"{kind}:"
        wanted = [prefix + d for d in dedupes]
        return {d[len(prefix) :] for d in s.scalars(select(Job.dedupe).where(Job.dedupe.in_(wanted)))}

    def claim(self, kinds: tuple[str, ...] | None = None) -> Claimed | None:
        """The oldest runnable job, leased to this worker; None when there is none."""
        now = self.clock.now()
        runnable = or_(
            (Job.status == QUEUED) & (Job.run_after <= now),
            (Job.status == RUNNING) & (Job.locked_until < now),
        )
        for _ in range(5):
            with self.db.session() as s:
                query = select(Job.id, Job.kind, Job.payload, Job.attempts).where(runnable)
                if kinds is not None:
                    query = query.where(Job.kind.in_(kinds))
                found = s.execute(query.order_by(Job.run_after, Job.id).limit(1)).one_or_none()
                if found is None:
                    return None
                until = now + self.lease
                won = s.execute(
                    update(Job)
                    .where(Job.id == found.id, Job.attempts == found.attempts, runnable)
                    .values(status=RUNNING, attempts=found.attempts + 1, locked_until=until, updated_at=now)
                ).rowcount  # type: ignore[attr-defined]
            if won:
                return Claimed(found.id, found.kind, found.payload, found.attempts + 1, until)
        return None  # pragma: no cover - lost five races in a row; the caller polls again

    def done(self, job: Claimed) -> None:
        with self.db.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job.id, Job.attempts == job.attempts)
                .values(status=DONE, locked_until=None, last_error=None, updated_at=self.clock.now())
            )

    def failed(self, job: Claimed, error: str, retry: RetryPolicy | None = None) -> None:
        """Retries later with ``retry``'s backoff (default: this queue's ``max_attempts``), or marks
        the job ``failed`` when that was its last try."""
        now = self.clock.now()
        wait = (retry or RetryPolicy(max_attempts=self.max_attempts)).delay(job.attempts)
        with self.db.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job.id, Job.attempts == job.attempts)
                .values(
                    status=FAILED if wait is None else QUEUED,
                    run_after=now + (wait or 0.0),
                    locked_until=None,
                    last_error=error[:ERROR_LIMIT],
                    updated_at=now,
                )
            )

    def release(self, job: Claimed) -> None:
        """Returns a job its worker stopped before it finished to the queue, runnable at once (the
        try counts: a job that always outlasts the shutdown timeout still ends up failed)."""
        now = self.clock.now()
        with self.db.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job.id, Job.attempts == job.attempts, Job.status == RUNNING)
                .values(status=QUEUED, run_after=now, locked_until=None, updated_at=now)
            )

    # -- inspection and administration -------------------------------------------------------

    def get(self, kind: str, dedupe: str) -> JobInfo | None:
        with self.db.session() as s:
            row = s.scalars(select(Job).where(Job.dedupe == f"{kind}:{dedupe}")).one_or_none()
            return None if row is None else _info(row)

    def jobs(self, status: str | None = None, *, limit: int = 100) -> list[JobInfo]:
        with self.db.session() as s:
            query = select(Job).order_by(Job.id.desc()).limit(limit)
            if status is not None:
                query = query.where(Job.status == status)
            return [_info(row) for row in s.scalars(query)]

    def counts(self) -> dict[str, int]:
        with self.db.session() as s:
            return {status: int(n) for status, n in s.execute(select(Job.status, func.count()).group_by(Job.status))}

    def retry(self, ids: Iterable[int] | None = None) -> int:
        now = self.clock.now()
        query = update(Job).where(Job.status == FAILED)
        if ids is not None:
            query = query.where(Job.id.in_(list(ids)))
        with self.db.session() as s:
            moved = s.execute(query.values(status=QUEUED, run_after=now, locked_until=None, updated_at=now))
            return int(moved.rowcount or 0)  # type: ignore[attr-defined]

    def purge(self, statuses: Sequence[str], older_than: float) -> int:
        cutoff = self.clock.now() - older_than
        with self.db.session() as s:
            gone = s.execute(delete(Job).where(Job.status.in_(list(statuses)), Job.updated_at < cutoff))
            return int(gone.rowcount or 0)  # type: ignore[attr-defined]

    def worker(self, registry: Registry, options: WorkerOptions) -> JobWorker:
        from updown.processing.worker import Worker

        return Worker(self, registry, options)


def _info(row: Job) -> JobInfo:
    return JobInfo(
        id=row.id,
        kind=row.kind,
        dedupe=row.dedupe[len(row.kind) + 1 :],
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        payload=row.payload,
        updated_at=row.updated_at,
    )
