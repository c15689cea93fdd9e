"""The procrastinate job queue (``queue.backend = "procrastinate"``): procrastinate's tables on the
same PostgreSQL, its worker (LISTEN/NOTIFY wake-ups, heartbeats, graceful shutdown), our registry.

Enqueueing goes through procrastinate's own SQL function ``procrastinate_defer_jobs_v1`` on the
caller's SQLAlchemy session, so the job commits or rolls back with the state change that calls
for it (procrastinate's connectors hold connections of their own; a job deferred through them
could run for a change that then rolls back, or be lost when the process dies between the two
commits). ``dedupe`` becomes the job's ``queueing_lock`` (``kind:dedupe``); procrastinate keeps
that unique among waiting jobs only, so an insert first looks for the lock in any status, which
makes dedupe last as long as the job row, as in the database queue.

procrastinate keeps no error text: each failed try's error is kept in ``updown_job_errors``
(deleted with its job). Jobs of a worker whose heartbeat stopped (kill -9) are retried, or failed
when that was their last try, by every live worker every ``queue.stalled_worker_timeout / 3`` s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import anyio
from procrastinate import App, JobContext, PsycopgConnector
from procrastinate import jobs as pjobs
from procrastinate import retry as pretry
from procrastinate import worker as pworker
from procrastinate.schema import SchemaManager
from sqlalchemy import Row, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from updown.db.engine import Database
from updown.errors import ConfigError
from updown.processing.queue import (
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    JobDefinition,
    JobInfo,
    JobWorker,
    Queue,
    Registry,
    RetryPolicy,
    WorkerOptions,
    WorkerStats,
    describe_error,
    run_definition,
)
from updown.processing.stopping import Stopping

log = logging.getLogger("updown.worker")

QUEUE_NAME: Final = "updown"
# Any constant works; it only has to be the same in every process that migrates (not db/migrate's).
_PG_LOCK_ID: Final = 0x7570_6471
_TO_OURS: Final = {"todo": QUEUED, "doing": RUNNING, "succeeded": DONE, "failed": FAILED}
_TO_THEIRS: Final = {ours: theirs for theirs, ours in _TO_OURS.items()}
_ERRORS_TABLE: Final = """
CREATE TABLE IF NOT EXISTS updown_job_errors (
    job_id bigint PRIMARY KEY REFERENCES procrastinate_jobs(id) ON DELETE CASCADE,
    error text NOT NULL,
    at timestamp with time zone NOT NULL DEFAULT now()
)"""
_SELECT: Final = """
SELECT j.id, j.task_name, j.queueing_lock, j.status::text AS status, j.attempts, j.args, e.error,
       (SELECT max(ev.at) FROM procrastinate_events ev WHERE ev.job_id = j.id) AS updated_at
  FROM procrastinate_jobs j LEFT JOIN updown_job_errors e ON e.job_id = j.id
"""


def libpq_url(sqlalchemy_url: str) -> str:
    """The database URL as psycopg/libpq take it (no ``+psycopg`` driver part)."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class ProcrastinateQueue(Queue):
    """Queued work in procrastinate's tables; the worker is procrastinate's."""

    backend = "procrastinate"

    def __init__(self, db: Database, *, stalled_worker_timeout: float) -> None:
        if db.dialect != "postgresql":
            raise ConfigError(
                "queue.backend = 'procrastinate' needs PostgreSQL (database.url = postgresql+psycopg://…)"
            )
        self.db = db
        self.stalled_worker_timeout = stalled_worker_timeout

    # -- schema --------------------------------------------------------------------------------

    def migrate(self) -> None:
        """procrastinate's schema (once: it is not re-runnable) and our error table, under a lock so
        processes starting together create them once."""
        with self.db.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
            if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
                # The schema is many statements with $$-quoted bodies: psycopg runs it as one
                # simple query when given no parameters.
                conn.connection.driver_connection.execute(SchemaManager.get_schema())  # type: ignore[union-attr]
            conn.execute(text(_ERRORS_TABLE))

    # -- enqueue -------------------------------------------------------------------------------

    def enqueue(self, s: Session, kind: str, dedupe: str, payload: Mapping[str, Any]) -> bool:
        lock = f"{kind}:{dedupe}"
        taken = s.execute(text("SELECT 1 FROM procrastinate_jobs WHERE queueing_lock = :lock LIMIT 1"), {"lock": lock})
        if taken.first() is not None:
            return False
        try:
            # A savepoint: a racing insert of the same lock (the unique index over waiting jobs)
            # fails only this statement, not the caller's transaction.
            with s.begin_nested():
                s.execute(
                    text(
                        "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, NULL::text, :lock,"
                        " CAST(:args AS jsonb), NULL::timestamptz)::procrastinate_job_to_defer_v1])"
                    ),
                    {"queue": QUEUE_NAME, "task": kind, "lock": lock, "args": json.dumps(dict(payload))},
                )
        except IntegrityError:
            return False
        return True

    def known(self, s: Session, kind: str, dedupes: Sequence[str]) -> set[str]:
        if not dedupes:
            return set()
        prefix = f"{kind}:"
        rows = s.execute(
            text("SELECT queueing_lock FROM procrastinate_jobs WHERE queueing_lock = ANY(:locks)"),
            {"locks": [prefix + d for d in dedupes]},
        )
        return {lock[len(prefix) :] for (lock,) in rows}

    # -- inspection and administration -------------------------------------------------------

    def get(self, kind: str, dedupe: str) -> JobInfo | None:
        with self.db.session() as s:
            row = s.execute(
                text(_SELECT + " WHERE j.queueing_lock = :lock ORDER BY j.id DESC LIMIT 1"),
                {"lock": f"{kind}:{dedupe}"},
            ).first()
        return None if row is None else _info(row)

    def jobs(self, status: str | None = None, *, limit: int = 100) -> list[JobInfo]:
        where = "" if status is None else " WHERE j.status = CAST(:status AS procrastinate_job_status)"
        with self.db.session() as s:
            rows = s.execute(
                text(_SELECT + where + " ORDER BY j.id DESC LIMIT :limit"),
                {"status": _TO_THEIRS.get(status or "", status), "limit": limit},
            ).all()
        return [_info(row) for row in rows]

    def counts(self) -> dict[str, int]:
        with self.db.session() as s:
            rows = s.execute(text("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status")).all()
        return {_TO_OURS.get(status, status): int(n) for status, n in rows}

    def retry(self, ids: Iterable[int] | None = None) -> int:
        with self.db.session() as s:
            if ids is None:
                failed = list(s.scalars(text("SELECT id FROM procrastinate_jobs WHERE status = 'failed'")))
            else:
                failed = list(
                    s.scalars(
                        text("SELECT id FROM procrastinate_jobs WHERE status = 'failed' AND id = ANY(:ids)"),
                        {"ids": list(ids)},
                    )
                )
            for job_id in failed:
                s.execute(
                    text("SELECT procrastinate_retry_job_v2(:id, now(), NULL, NULL, NULL)"),
                    {"id": job_id},
                )
        return len(failed)

    def purge(self, statuses: Sequence[str], older_than: float) -> int:
        theirs = [_TO_THEIRS[s] for s in statuses if s in _TO_THEIRS]
        with self.db.session() as s:
            gone = s.execute(
                text(
                    "DELETE FROM procrastinate_jobs j WHERE j.status::text = ANY(:statuses) AND NOT EXISTS ("
                    " SELECT 1 FROM procrastinate_events ev WHERE ev.job_id = j.id"
                    " AND ev.at >= now() - make_interval(secs => :age))"
                ),
                {"statuses": theirs, "age": float(older_than)},
            )
            return int(gone.rowcount or 0)  # type: ignore[attr-defined]

    def record_error(self, job_id: int, error: str) -> None:
        with self.db.session() as s:
            s.execute(
                text(
                    "INSERT INTO updown_job_errors (job_id, error) VALUES (:id, :error)"
                    " ON CONFLICT (job_id) DO UPDATE SET error = excluded.error, at = now()"
                ),
                {"id": job_id, "error": error},
            )

    def worker(self, registry: Registry, options: WorkerOptions) -> JobWorker:
        return ProcrastinateWorker(self, registry, options)


def _info(row: Row[Any]) -> JobInfo:
    status = _TO_OURS.get(row.status, row.status)
    attempts = int(row.attempts) + (1 if status == RUNNING else 0)  # procrastinate counts finished tries
    lock = row.queueing_lock or ""
    return JobInfo(
        id=int(row.id),
        kind=row.task_name,
        dedupe=lock[len(row.task_name) + 1 :] if lock.startswith(f"{row.task_name}:") else lock,
        status=status,
        attempts=attempts,
        last_error=None if status == DONE else row.error,
        payload=row.args,
        updated_at=row.updated_at.timestamp() if row.updated_at is not None else None,
    )


class _Retry(pretry.BaseRetryStrategy):
    """Our retry policy in procrastinate's terms (its ``attempts`` counts the tries before this one)."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def get_retry_decision(self, *, exception: BaseException, job: pjobs.Job) -> pretry.RetryDecision | None:
        wait = self.policy.delay(job.attempts + 1)
        if wait is None:
            return None
        if isinstance(exception, asyncio.CancelledError):
            wait = 0.0  # stopped by a shutdown: back to the queue at once
        return pretry.RetryDecision(retry_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait))


class ProcrastinateWorker:
    """procrastinate's worker over our registry, with the periodic work and stalled-job recovery."""

    def __init__(self, queue: ProcrastinateQueue, registry: Registry, options: WorkerOptions) -> None:
        self.queue = queue
        self.registry = registry
        self.options = options
        self.stats = WorkerStats()
        self._stop = Stopping()
        self._thread: threading.Thread | None = None
        self._worker: pworker.Worker | None = None
        self.ran = 0

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _app(self) -> App:
        app = App(
            connector=PsycopgConnector(
                conninfo=libpq_url(self.queue.db.url),
                min_size=1,
                max_size=self.options.concurrency + 3,  # jobs, LISTEN, heartbeat, recovery
            )
        )
        for definition in self.registry:
            app.task(name=definition.kind, queue=QUEUE_NAME, pass_context=True, retry=_Retry(definition.retry))(
                self._task(definition)
            )
        return app

    def _task(self, definition: JobDefinition) -> Any:
        async def task(context: JobContext, **payload: Any) -> None:
            self.ran += 1
            try:
                await run_definition(definition, definition.kind, payload, self.stats)
            except Exception as exc:
                log.exception("job %s (%s) failed", context.job.id, definition.kind)
                assert context.job.id is not None
                await anyio.to_thread.run_sync(self.queue.record_error, context.job.id, describe_error(exc))
                raise

        return task

    def _procrastinate_worker(self, app: App, *, wait: bool) -> pworker.Worker:
        timeout = self.queue.stalled_worker_timeout
        return pworker.Worker(
            app,
            queues=[QUEUE_NAME],
            name="updown",
            concurrency=self.options.concurrency,
            wait=wait,
            fetch_job_polling_interval=max(self.options.poll_interval, 1.0),
            shutdown_graceful_timeout=self.options.shutdown_timeout,
            install_signal_handlers=False,  # `updown worker` handles signals; embedded runs in a thread
            update_heartbeat_interval=max(timeout / 3, 0.5),
            stalled_worker_timeout=timeout,
        )

    async def run(self) -> None:
        self._stop.attach()
        app = self._app()
        async with app.open_async():
            self._worker = self._procrastinate_worker(app, wait=True)
            if self._stop.is_set():
                return
            side = [
                asyncio.create_task(self._periodic()),
                asyncio.create_task(self._recover(app)),
                asyncio.create_task(self._watch_stop(self._worker)),
            ]
            try:
                await self._worker.run()  # type: ignore[no-untyped-call]
            finally:
                for task in side:
                    task.cancel()
                await asyncio.gather(*side, return_exceptions=True)

    async def drain(self) -> int:
        app = self._app()
        before = self.ran
        async with app.open_async():
            await self.recover_stalled(app)
            await self._procrastinate_worker(app, wait=False).run()  # type: ignore[no-untyped-call]
        return self.ran - before

    async def _watch_stop(self, worker: pworker.Worker) -> None:
        # procrastinate's run() forgets a stop() that came before it started: ask again from here.
        await self._stop.wait()
        worker.stop()  # type: ignore[no-untyped-call]

    async def _periodic(self) -> None:
        while self.options.periodic is not None and not self._stop.is_set():
            try:
                await anyio.to_thread.run_sync(self.options.periodic)
            except Exception:
                log.exception("worker: periodic work failed")
            await self._stop.sleep(self.options.periodic_interval)

    async def _recover(self, app: App) -> None:
        while not self._stop.is_set():
            try:
                await self.recover_stalled(app)
            except Exception:
                log.exception("worker: retrieving stalled jobs failed")
            await self._stop.sleep(max(self.queue.stalled_worker_timeout / 3, 0.5))

    async def recover_stalled(self, app: App) -> int:
        """Jobs running on workers whose heartbeat stopped: retried, or failed after their last try."""
        manager = app.job_manager
        stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=self.queue.stalled_worker_timeout))
        for job in stalled:
            assert job.id is not None
            definition = self.registry.get(job.task_name)
            policy = definition.retry if definition is not None else RetryPolicy(max_attempts=1)
            error = "the worker running it stopped (no heartbeat)"
            await anyio.to_thread.run_sync(self.queue.record_error, job.id, error)
            final = policy.delay(job.attempts + 1) is None
            try:
                if final:
                    await manager.finish_job_by_id_async(job.id, pjobs.Status.FAILED, delete_job=False)
                else:
                    await manager.retry_job(job)
            except Exception:  # another worker recovered it first
                log.info("stalled job %s was recovered elsewhere", job.id)
                continue
            log.warning("job %s (%s): %s; %s", job.id, job.task_name, error, "failed" if final else "retried")
        await manager.prune_stalled_workers(self.queue.stalled_worker_timeout)
        return len(stalled)

    def start_thread(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self.run()), name="updown-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.stop()  # type: ignore[no-untyped-call]
        if self._thread is not None:
            self._thread.join(timeout)
