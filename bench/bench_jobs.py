"""Jobs per second through procrastinate (on PostgreSQL) beside the embedded database queue (the
``jobs`` table on SQLite, what `updown serve` runs by default), with the database queue on
PostgreSQL as a third column.

Two workloads, each the median of 3 runs (quick: 1) on a fresh queue, a worker of concurrency 2
in this process (one event loop in a thread, as embedded mode runs it):

* ``noop``: 500 jobs (quick: 200) whose handler does nothing: the queue's own cost per job
  (claim, finish, the wake-up of an idle worker);
* ``image``: 200 jobs (quick: 60) that each verify a 640×480 JPEG and write its 256 px WebP
  thumbnail (``images.verify_and_thumbnail`` in a thread, as the pipeline calls it): the share of
  the queue in a small real job.

Jobs are queued first, in one transaction, and the clock runs from the worker's start to the last
job's end. PostgreSQL is ``$UPDOWN_TEST_DATABASE_URL`` (else postgres@127.0.0.1:5432); a fresh
database is created for the run and dropped after; without PostgreSQL only the SQLite column runs.
"""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.common import Row
from updown.clock import SystemClock
from updown.db.engine import Database
from updown.processing import images
from updown.processing.jobs import JobQueue
from updown.processing.queue import Queue, Registry, RetryPolicy, WorkerOptions

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CONCURRENCY = 2


@contextmanager
def _pg_database(prefix: str = "bench_jobs") -> Iterator[str | None]:
    """A fresh database on the PostgreSQL of the tests (dropped after); None without one."""
    base = make_url(os.environ.get("UPDOWN_TEST_DATABASE_URL") or PG_DEFAULT)
    name = f"{prefix}_{secrets.token_hex(4)}"
    try:
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:
        yield None
        return
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _fresh_queue(backend: str, url: str) -> tuple[Database, Queue]:
    db = Database(url)
    if backend == "procrastinate":
        from updown.processing.queue_procrastinate import ProcrastinateQueue

        queue: Queue = ProcrastinateQueue(db, stalled_worker_timeout=30)
        queue.migrate()
        with db.session() as s:
            s.execute(text("TRUNCATE procrastinate_jobs, procrastinate_workers CASCADE"))
    else:
        db.migrate()
        queue = JobQueue(db, SystemClock(), lease=300, max_attempts=5)
        with db.session() as s:
            s.execute(text("DELETE FROM jobs"))
    return db, queue


def _one_run(backend: str, url: str, n: int, handler: Callable[[Mapping[str, Any]], Any]) -> float:
    """Jobs per second for ``n`` queued jobs of ``handler``."""
    db, queue = _fresh_queue(backend, url)
    finished = threading.Event()
    count = [0]
    lock = threading.Lock()

    async def job(payload: Mapping[str, Any]) -> None:
        await handler(payload)
        with lock:
            count[0] += 1
            if count[0] == n:
                finished.set()

    registry = Registry()
    registry.register("bench", job, RetryPolicy())
    run_id = secrets.token_hex(4)
    with db.session() as s:
        for i in range(n):
            queue.enqueue(s, "bench", f"{run_id}:{i}", {"i": i})
    worker = queue.worker(
        registry, WorkerOptions(concurrency=CONCURRENCY, poll_interval=0.5, shutdown_timeout=5, periodic=None)
    )
    t0 = time.perf_counter()
    worker.start_thread()
    try:
        if not finished.wait(600):
            raise RuntimeError(f"{backend}: {count[0]} of {n} jobs ran in 600 s")
        elapsed = time.perf_counter() - t0
    finally:
        worker.stop(timeout=30)
        db.dispose()
    return n / elapsed


def _image_handler(folder: Path) -> Callable[[Mapping[str, Any]], Any]:
    src = folder / "small.jpg"
    Image.effect_mandelbrot((640, 480), (-2.0, -1.2, 1.0, 1.2), 64).convert("RGB").save(src, quality=85)
    limits = images.ImageLimits(max_pixels=50_000_000)

    async def process(payload: Mapping[str, Any]) -> None:
        dst = folder / f"thumb-{payload['i']}.webp"
        await anyio.to_thread.run_sync(lambda: images.verify_and_thumbnail(src, dst, longest=256, limits=limits))

    return process


async def _noop(_payload: Mapping[str, Any]) -> None:
    return None


def run(*, quick: bool = False) -> list[Row]:
    runs = 1 if quick else 3
    sizes = {"noop": 200 if quick else 500, "image": 60 if quick else 200}
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp, _pg_database() as pg:
        folder = Path(tmp)
        handlers = {"noop": _noop, "image": _image_handler(folder)}
        sqlite_url = f"sqlite:///{folder / 'jobs.db'}"
        for workload, n in sizes.items():
            handler = handlers[workload]
            results: dict[str, list[float]] = {"sqlite": [], "pg-database": [], "procrastinate": []}
            for _ in range(runs):  # the contenders take turns, run by run
                results["sqlite"].append(_one_run("database", sqlite_url, n, handler))
                if pg is not None:
                    results["pg-database"].append(_one_run("database", pg, n, handler))
                    results["procrastinate"].append(_one_run("procrastinate", pg, n, handler))
            embedded = statistics.median(results["sqlite"])
            if pg is None:
                rows.append(Row(f"jobs {workload} x{n} database queue (SQLite)", embedded, None, "jobs/s"))
                continue
            rows.append(
                Row(
                    f"jobs {workload} x{n} procrastinate (PostgreSQL)",
                    statistics.median(results["procrastinate"]),
                    embedded,
                    "jobs/s",
                    "embedded db queue (SQLite)",
                )
            )
            rows.append(
                Row(
                    f"jobs {workload} x{n} database queue (PostgreSQL)",
                    statistics.median(results["pg-database"]),
                    embedded,
                    "jobs/s",
                    "embedded db queue (SQLite)",
                )
            )
    return rows
