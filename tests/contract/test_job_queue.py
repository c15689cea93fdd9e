"""The job-queue contract: the same behaviour tests on every queue backend — the database queue on
SQLite and on PostgreSQL, procrastinate on PostgreSQL (a fresh PostgreSQL database per run, a
fresh schema per test). Real workers, real time (short backoffs), real processes for kill -9.

Run as a script (``python -m tests.contract.test_job_queue BACKEND URL LOG``), this module is the
worker process that the kill -9 test starts and kills.
"""

from __future__ import annotations

import itertools
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import PG_ENV, postgres_database
from updown.clock import SystemClock
from updown.db.engine import Database
from updown.errors import ConfigError
from updown.processing.jobs import JobQueue
from updown.processing.queue import JobWorker, Queue, Registry, RetryPolicy, WorkerOptions

LEASE = 2.0  # database queue: a killed worker's job is taken again after this
STALLED = 2.0  # procrastinate: a worker without a heartbeat for this long is dead
FAST = RetryPolicy(max_attempts=3, first_delay=0.3)
ROOT = Path(__file__).resolve().parents[2]


def _params() -> list[Any]:
    params: list[Any] = ["database-sqlite"]
    if os.environ.get(PG_ENV):
        params += [
            pytest.param("database-postgresql", marks=pytest.mark.postgres),
            pytest.param("procrastinate", marks=pytest.mark.postgres),
        ]
    return params


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run of the module, dropped after."""
    with postgres_database("jobs") as url:
        yield url


@contextmanager
def _schema(url: str) -> Iterator[str]:
    schema = f"t_{secrets.token_hex(6)}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def build_queue(backend: str, db: Database) -> Queue:
    if backend == "procrastinate":
        from updown.processing.queue_procrastinate import ProcrastinateQueue

        queue: Queue = ProcrastinateQueue(db, stalled_worker_timeout=STALLED)
    else:
        db.migrate()
        queue = JobQueue(db, SystemClock(), lease=LEASE, max_attempts=FAST.max_attempts)
    queue.migrate()
    return queue


@dataclass
class Backend:
    name: str
    url: str
    db: Database
    queue: Queue

    def worker(self, registry: Registry, *, concurrency: int = 1, shutdown_timeout: float = 10.0) -> JobWorker:
        return self.queue.worker(
            registry, WorkerOptions(concurrency=concurrency, poll_interval=0.05, shutdown_timeout=shutdown_timeout)
        )

    def enqueue(self, kind: str, dedupe: str, payload: Mapping[str, Any] | None = None) -> bool:
        with self.db.session() as s:
            return self.queue.enqueue(s, kind, dedupe, payload or {})


@pytest.fixture(params=_params())
def jobq(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    name = str(request.param)
    if name == "database-sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
        db = Database(url)
        yield Backend(name, url, db, build_queue(name, db))
        db.dispose()
        return
    with _schema(request.getfixturevalue("pg_database")) as url:
        db = Database(url)
        try:
            yield Backend(name, url, db, build_queue(name, db))
        finally:
            db.dispose()


class Calls:
    """What handlers saw, across the worker's threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[str, dict[str, Any], float]] = []

    def add(self, kind: str, payload: Mapping[str, Any]) -> None:
        with self.lock:
            self.seen.append((kind, dict(payload), time.monotonic()))

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for k, p, _ in self.seen if k == kind]

    def times(self, kind: str) -> list[float]:
        with self.lock:
            return [t for k, _, t in self.seen if k == kind]


def wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def running(worker: JobWorker) -> Iterator[JobWorker]:
    worker.start_thread()
    try:
        yield worker
    finally:
        worker.stop(timeout=30)


def registry(calls: Calls, **extra: Callable[[Mapping[str, Any]], Any]) -> Registry:
    reg = Registry()

    async def ok(payload: Mapping[str, Any]) -> None:
        calls.add("ok", payload)

    reg.register("ok", ok, FAST)
    for kind, handler in extra.items():
        reg.register(kind, handler, FAST)
    return reg


# --------------------------------------------------------------------------- delivery


def test_queue_every_job_runs_and_ends_done(jobq: Backend) -> None:
    calls = Calls()
    for n in range(5):
        assert jobq.enqueue("ok", str(n), {"n": n}) is True
    ran = anyio.run(jobq.worker(registry(calls)).drain)
    assert ran == 5
    assert sorted(p["n"] for p in calls.of("ok")) == [0, 1, 2, 3, 4]
    assert jobq.queue.counts() == {"done": 5}
    job = jobq.queue.get("ok", "3")
    assert job is not None
    assert (job.kind, job.dedupe, job.status, job.attempts, job.last_error, dict(job.payload)) == (
        "ok",
        "3",
        "done",
        1,
        None,
        {"n": 3},
    )


def test_queue_running_worker_picks_up_new_jobs(jobq: Backend) -> None:
    calls = Calls()
    with running(jobq.worker(registry(calls), concurrency=2)):
        for n in range(4):
            jobq.enqueue("ok", str(n), {"n": n})
        wait_for(lambda: jobq.queue.counts() == {"done": 4}, what="4 jobs done")
    assert len(calls.of("ok")) == 4


# --------------------------------------------------------------------------- dedupe and transactions


def test_queue_dedupe_holds_while_the_job_row_lives(jobq: Backend) -> None:
    assert jobq.enqueue("ok", "same", {"v": 1}) is True
    assert jobq.enqueue("ok", "same", {"v": 2}) is False
    assert jobq.enqueue("ok", "other") is True  # another key
    with jobq.db.session() as s:
        assert jobq.queue.known(s, "ok", ["same", "other", "never"]) == {"same", "other"}
    calls = Calls()
    anyio.run(jobq.worker(registry(calls)).drain)
    assert [p for p in calls.of("ok") if p] == [{"v": 1}]
    assert jobq.enqueue("ok", "same") is False  # finished work is not queued again
    assert jobq.queue.purge(["done"], older_than=0) == 2
    assert jobq.enqueue("ok", "same") is True
    assert jobq.queue.counts() == {"queued": 1}


def test_queue_enqueue_twice_in_one_transaction_gives_one_job(jobq: Backend) -> None:
    with jobq.db.session() as s:
        assert jobq.queue.enqueue(s, "ok", "d", {}) is True
        assert jobq.queue.enqueue(s, "ok", "d", {}) is False
    assert jobq.queue.counts() == {"queued": 1}


def test_queue_enqueue_racing_an_open_transaction_is_a_no_op(jobq: Backend) -> None:
    first = jobq.db.sessions()
    answers: list[bool] = []
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with jobq.db.session() as s:
                answers.append(jobq.queue.enqueue(s, "ok", "42", {"by": "second"}))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    try:
        assert jobq.queue.enqueue(first, "ok", "42", {"by": "first"}) is True
        racer = threading.Thread(target=second)
        racer.start()
        racer.join(0.3)
        first.commit()
    finally:
        first.close()
    racer.join(30)
    assert errors == []
    assert answers == [False]
    job = jobq.queue.get("ok", "42")
    assert job is not None
    assert dict(job.payload) == {"by": "first"}


def test_queue_enqueue_rolls_back_with_its_transaction(jobq: Backend) -> None:
    def state_change_that_fails() -> None:
        with jobq.db.session() as s:
            assert jobq.queue.enqueue(s, "ok", "d", {"n": 1}) is True
            raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError, match="the state change failed"):
        state_change_that_fails()
    assert jobq.queue.counts() == {}
    assert jobq.queue.get("ok", "d") is None
    calls = Calls()
    assert anyio.run(jobq.worker(registry(calls)).drain) == 0
    assert calls.of("ok") == []
    assert jobq.enqueue("ok", "d") is True  # the dedupe key was never taken


# --------------------------------------------------------------------------- retries, dead letters


def test_queue_failing_job_retries_with_backoff_then_fails_for_good(jobq: Backend) -> None:
    calls = Calls()

    async def broken(payload: Mapping[str, Any]) -> None:
        calls.add("broken", payload)
        raise ValueError(f"try {len(calls.of('broken'))} broke")

    with running(jobq.worker(registry(calls, broken=broken))):
        jobq.enqueue("broken", "b")
        wait_for(lambda: (j := jobq.queue.get("broken", "b")) is not None and j.status == "failed", what="failed")
    times = calls.times("broken")
    assert len(times) == FAST.max_attempts
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.3 * 0.9
    assert gaps[1] >= 0.6 * 0.9  # the wait doubles
    job = jobq.queue.get("broken", "b")
    assert job is not None
    assert (job.status, job.attempts) == ("failed", FAST.max_attempts)
    assert job.last_error == "ValueError: try 3 broke"
    assert [j.id for j in jobq.queue.jobs("failed")] == [job.id]
    assert jobq.queue.counts() == {"failed": 1}


def test_queue_failed_job_runs_again_when_retried(jobq: Backend) -> None:
    calls = Calls()
    healed = threading.Event()

    async def flaky(payload: Mapping[str, Any]) -> None:
        calls.add("flaky", payload)
        if not healed.is_set():
            raise RuntimeError("not yet")

    reg = Registry()
    reg.register("flaky", flaky, RetryPolicy(max_attempts=1))
    jobq.enqueue("flaky", "f1")
    jobq.enqueue("flaky", "f2")
    anyio.run(jobq.worker(reg).drain)
    assert jobq.queue.counts() == {"failed": 2}
    first = jobq.queue.get("flaky", "f1")
    assert first is not None
    assert first.last_error == "RuntimeError: not yet"

    healed.set()
    assert jobq.queue.retry([first.id]) == 1
    assert jobq.queue.retry([first.id]) == 0  # queued already, not failed
    anyio.run(jobq.worker(reg).drain)
    assert jobq.queue.counts() == {"done": 1, "failed": 1}
    assert jobq.queue.retry(None) == 1  # every failed one
    anyio.run(jobq.worker(reg).drain)
    assert jobq.queue.counts() == {"done": 2}
    assert len(calls.of("flaky")) == 4
    assert jobq.queue.purge(["failed"], older_than=0) == 0
    assert jobq.queue.purge(["done"], older_than=3600) == 0  # younger than the cutoff
    assert jobq.queue.purge(["done", "failed"], older_than=0) == 2


def test_queue_job_of_an_unknown_kind_does_not_stop_the_worker(jobq: Backend) -> None:
    calls = Calls()
    jobq.enqueue("nobody-runs-this", "x")
    jobq.enqueue("ok", "y")
    with running(jobq.worker(registry(calls))):
        wait_for(lambda: len(calls.of("ok")) == 1, what="the known job")
    assert jobq.queue.get("ok", "y").status == "done"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- stopping and crashing


def test_queue_stopping_worker_finishes_a_short_job(jobq: Backend) -> None:
    calls = Calls()
    started = threading.Event()

    async def short(payload: Mapping[str, Any]) -> None:
        started.set()
        await anyio.sleep(0.5)
        calls.add("short", payload)

    worker = jobq.worker(registry(calls, short=short), shutdown_timeout=10)
    worker.start_thread()
    jobq.enqueue("short", "s")
    assert started.wait(30)
    worker.stop(timeout=30)
    assert len(calls.of("short")) == 1
    assert jobq.queue.get("short", "s").status == "done"  # type: ignore[union-attr]


def test_queue_stopping_worker_returns_a_long_job_to_the_queue(jobq: Backend) -> None:
    calls = Calls()
    started = threading.Event()

    async def long(payload: Mapping[str, Any]) -> None:
        calls.add("long", payload)
        if len(calls.of("long")) == 1:
            started.set()
            await anyio.sleep(60)

    reg = registry(calls, long=long)
    worker = jobq.worker(reg, shutdown_timeout=0.5)
    worker.start_thread()
    jobq.enqueue("long", "l")
    assert started.wait(30)
    stopped_at = time.monotonic()
    worker.stop(timeout=30)
    assert time.monotonic() - stopped_at < 15
    job = jobq.queue.get("long", "l")
    assert job is not None
    assert job.status == "queued"
    assert anyio.run(jobq.worker(reg).drain) == 1  # another worker takes it at once
    assert jobq.queue.get("long", "l").status == "done"  # type: ignore[union-attr]


def test_queue_job_of_a_killed_worker_process_runs_again_on_another(jobq: Backend, tmp_path: Path) -> None:
    log = tmp_path / "tries.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.contract.test_job_queue", jobq.name, jobq.url, str(log)],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        jobq.enqueue("slow", "k9", {"n": 1})
        wait_for(lambda: log.exists() and log.read_text().strip() != "", what="the first try to start")
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9 mid-job
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert jobq.queue.get("slow", "k9").status == "running"  # type: ignore[union-attr]

    with running(jobq.worker(_slow_registry(log))):
        wait_for(lambda: jobq.queue.get("slow", "k9").status == "done", timeout=60, what="the retry")  # type: ignore[union-attr]
    tries = log.read_text().split()
    assert len(tries) == 2
    assert tries[0] == str(proc.pid)
    assert tries[1] == str(os.getpid())
    job = jobq.queue.get("slow", "k9")
    assert job is not None
    assert job.attempts == 2


def test_queue_procrastinate_is_refused_on_sqlite(tmp_path: Path) -> None:
    from updown.processing.queue_procrastinate import ProcrastinateQueue

    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ConfigError, match="needs PostgreSQL"):
        ProcrastinateQueue(db, stalled_worker_timeout=STALLED)
    db.dispose()


def _slow_registry(log: Path) -> Registry:
    """The first try (of the process to be killed) hangs; a later try finishes at once."""

    def record_try() -> int:
        with log.open("a") as fh:
            fh.write(f"{os.getpid()}\n")
        return len(log.read_text().split())

    async def slow(_payload: Mapping[str, Any]) -> None:
        if await anyio.to_thread.run_sync(record_try) == 1:
            await anyio.sleep(120)

    reg = Registry()
    reg.register("slow", slow, FAST)
    return reg


def _main(backend: str, url: str, log: str) -> None:
    db = Database(url)
    queue = build_queue(backend, db)
    worker = queue.worker(
        _slow_registry(Path(log)), WorkerOptions(concurrency=1, poll_interval=0.05, shutdown_timeout=1.0)
    )
    anyio.run(worker.run)


if __name__ == "__main__":
    _main(*sys.argv[1:4])
