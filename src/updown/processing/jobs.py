"""The job queue, in the database: work survives a crash, runs at least once, and is never lost.

A job is queued in the same transaction as the state change that calls for it. A worker claims one
with a lease (``locked_until``); a worker that dies (kill -9) leaves its lease to run out, and the
job is claimed again. Claiming is a conditional UPDATE, so two workers (threads or processes, on
SQLite or PostgreSQL) never both win. A failing job is retried with backoff, then marked
``failed`` with its last error. Handlers must be idempotent: a job can run twice.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from updown.clock import Clock
from updown.db.engine import Database
from updown.db.models.files import Job
from updown.db.upsert import insert_if_absent

# Seconds before retry n (1-based): 2, 4, 8, ... capped at ten minutes.
_BACKOFF_CAP = 600.0


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job a worker holds until ``locked_until``."""

    id: int
    kind: str
    payload: Mapping[str, Any]
    attempts: int
    locked_until: float


class JobQueue:
    """Queued work in the ``jobs`` table."""

    def __init__(self, db: Database, clock: Clock, *, lease: float, max_attempts: int) -> None:
        self.db = db
        self.clock = clock
        self.lease = lease
        self.max_attempts = max_attempts
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    @staticmethod
    def enqueue(s: Session, kind: str, dedupe: str, payload: Mapping[str, Any], *, now: float) -> bool:
        """Queues a job in the caller's transaction; False when the same ``dedupe`` is queued already."""
        return insert_if_absent(
            s,
            Job(
                kind=kind,
                dedupe=f"{kind}:{dedupe}",
                payload=dict(payload),
                status="queued",
                attempts=0,
                run_after=now,
                created_at=now,
                updated_at=now,
            ),
            unique="dedupe",
        )

    def claim(self, kinds: tuple[str, ...] | None = None) -> Claimed | None:
        """The oldest runnable job, leased to this worker; None when there is none."""
        now = self.clock.now()
        runnable = or_(
            (Job.status == "queued") & (Job.run_after <= now),
            (Job.status == "running") & (Job.locked_until < now),
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
                    .values(status="running", attempts=found.attempts + 1, locked_until=until, updated_at=now)
                ).rowcount  # type: ignore[attr-defined]
            if won:
                return Claimed(found.id, found.kind, found.payload, found.attempts + 1, until)
        return None  # pragma: no cover - lost five races in a row; the caller polls again

    def done(self, job: Claimed) -> None:
        with self.db.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job.id, Job.attempts == job.attempts)
                .values(status="done", locked_until=None, last_error=None, updated_at=self.clock.now())
            )

    def failed(self, job: Claimed, error: str) -> None:
        """Retries later with backoff, or marks the job ``failed`` after ``max_attempts``."""
        now = self.clock.now()
        final = job.attempts >= self.max_attempts
        with self.db.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job.id, Job.attempts == job.attempts)
                .values(
                    status="failed" if final else "queued",
                    run_after=now + min(_BACKOFF_CAP, 2.0**job.attempts),
                    locked_until=None,
                    last_error=error[:2000],
                    updated_at=now,
                )
            )

    def purge_done(self, older_than: float) -> int:
        """Deletes finished jobs older than ``older_than`` seconds; returns how many."""
        cutoff = self.clock.now() - older_than
        with self.db.session() as s:
            done = s.execute(delete(Job).where(Job.status == "done", Job.updated_at < cutoff))
            return int(done.rowcount or 0)  # type: ignore[attr-defined]

    def counts(self) -> dict[str, int]:
        """Jobs by status (for `updown jobs list` and tests)."""
        with self.db.session() as s:
            return {status: int(n) for status, n in s.execute(select(Job.status, func.count()).group_by(Job.status))}
