"""The pieces every queue backend shares: the retry policy, the registry, a counted try, the
`[queue]` settings, the database queue's release/retry/purge and listing, and `updown worker`'s
health listener (a real socket)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from updown import settings
from updown.clock import FrozenClock
from updown.db.engine import Database
from updown.errors import ConfigError
from updown.processing.jobs import JobQueue
from updown.processing.queue import (
    Registry,
    RetryPolicy,
    WorkerOptions,
    WorkerStats,
    describe_error,
    run_definition,
)
from updown.processing.queue_health import HealthListener
from updown.processing.worker import Worker


def test_retry_policy_doubles_from_the_first_delay_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=12, first_delay=2.0, cap=600.0)
    assert [policy.delay(n) for n in range(1, 12)] == [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]
    assert policy.delay(12) is None
    assert RetryPolicy(max_attempts=1).delay(1) is None


def test_registry_refuses_a_kind_twice_and_keeps_order() -> None:
    async def handler(_payload: Mapping[str, Any]) -> None:
        return None

    reg = Registry()
    reg.register("b", handler, RetryPolicy())
    reg.register("a", handler, RetryPolicy(max_attempts=2))
    assert reg.kinds == ("b", "a")
    assert reg.get("a") is not None
    assert reg.get("a").retry.max_attempts == 2  # type: ignore[union-attr]
    assert reg.get("zz") is None
    with pytest.raises(ValueError, match="registered already"):
        reg.register("a", handler, RetryPolicy())


def test_run_definition_counts_done_failed_and_running() -> None:
    stats = WorkerStats()
    seen: list[int] = []

    async def handler(payload: Mapping[str, Any]) -> None:
        seen.append(int(stats.running._value.get()))
        if payload.get("fail"):
            raise RuntimeError("boom")

    reg = Registry()
    reg.register("k", handler, RetryPolicy())

    async def main() -> None:
        await run_definition(reg.get("k"), "k", {}, stats)
        with pytest.raises(RuntimeError, match="boom"):
            await run_definition(reg.get("k"), "k", {"fail": True}, stats)
        with pytest.raises(LookupError, match="no handler"):
            await run_definition(None, "nobody", {}, stats)

    anyio.run(main)
    assert seen == [1, 1]
    assert stats.done.labels("k")._value.get() == 1
    assert stats.failed.labels("k")._value.get() == 1
    assert stats.running._value.get() == 0
    assert stats.in_hand == 0
    assert describe_error(ValueError("x" * 5000)) == ("ValueError: " + "x" * 5000)[:2000]


def test_queue_settings_default_to_the_database_queue(tmp_path: Path) -> None:
    s = settings.load(data_dir=tmp_path, environ={})
    assert (s.queue.backend, s.queue.shutdown_timeout, s.queue.health_port) == ("database", 30.0, 0)


def test_queue_settings_refuse_procrastinate_on_sqlite(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs PostgreSQL"):
        settings.load(data_dir=tmp_path, environ={"UPDOWN_QUEUE__BACKEND": "procrastinate"})
    with pytest.raises(ConfigError, match="expected one of database, procrastinate"):
        settings.load(data_dir=tmp_path, environ={"UPDOWN_QUEUE__BACKEND": "celery"})
    with pytest.raises(ConfigError, match=r"queue\.shutdown_timeout"):
        settings.load(data_dir=tmp_path, environ={"UPDOWN_QUEUE__SHUTDOWN_TIMEOUT": "-1"})
    ok = settings.load(
        data_dir=tmp_path,
        environ={"UPDOWN_QUEUE__BACKEND": "procrastinate", "UPDOWN_DATABASE__URL": "postgresql+psycopg://h/db"},
    )
    assert ok.queue.backend == "procrastinate"


# --------------------------------------------------------------------------- the database queue


@pytest.fixture
def queue(database: Database) -> JobQueue:
    return JobQueue(database, FrozenClock(1_800_000_000.0), lease=60, max_attempts=2)


def test_database_queue_release_returns_a_running_job_with_its_try_counted(queue: JobQueue) -> None:
    with queue.db.session() as s:
        queue.enqueue(s, "k", "d", {"n": 1})
    job = queue.claim()
    assert job is not None
    queue.release(job)
    info = queue.get("k", "d")
    assert info is not None
    assert (info.status, info.attempts) == ("queued", 1)
    again = queue.claim()
    assert again is not None
    assert again.attempts == 2


def test_database_queue_retry_purge_and_listing(queue: JobQueue) -> None:
    clock = queue.clock
    assert isinstance(clock, FrozenClock)
    with queue.db.session() as s:
        for name in ("a", "b"):
            queue.enqueue(s, "k", name, {})
    for _ in range(2):  # two tries each for a and b: failed for good
        for _ in range(2):
            job = queue.claim()
            assert job is not None
            queue.failed(job, "broken")
        clock.advance(10)
    with queue.db.session() as s:
        queue.enqueue(s, "k", "c", {})
    done = queue.claim()
    assert done is not None
    queue.done(done)
    assert queue.counts() == {"failed": 2, "done": 1}
    failed = queue.jobs("failed")
    assert [j.dedupe for j in failed] == ["b", "a"]  # newest first
    assert all(j.last_error == "broken" and j.attempts == 2 for j in failed)
    assert queue.retry([failed[0].id]) == 1
    assert queue.get("k", "b").status == "queued"  # type: ignore[union-attr]
    assert queue.retry(None) == 1
    assert queue.retry(None) == 0
    clock.advance(100)
    assert queue.purge(["failed"], older_than=50) == 0
    assert queue.purge(["done", "queued"], older_than=50) == 3
    assert queue.counts() == {}


# --------------------------------------------------------------------------- the health listener


def test_health_listener_answers_healthz_metrics_and_nothing_else() -> None:
    stats = WorkerStats()
    stats.done.labels("process-upload").inc(3)
    stopping = [False]

    async def main() -> None:
        listener = HealthListener(stats, lambda: stopping[0], host="127.0.0.1", port=0)
        port = await listener.start()
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            ok = await client.get("/healthz")
            assert (ok.status_code, ok.json()) == (200, {"status": "ok", "running": 0})
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert 'updown_worker_jobs_done_total{kind="process-upload"} 3.0' in metrics.text
            assert (await client.get("/other")).status_code == 404
            assert (await client.post("/healthz")).status_code == 405
            stopping[0] = True
            assert (await client.get("/healthz?x=1")).status_code == 503
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.send(b"garbage\r\n\r\n")
        assert (await stream.receive()).startswith(b"HTTP/1.1 400 ")
        await stream.aclose()
        await listener.close()

    anyio.run(main)


@pytest.fixture
def worker(queue: JobQueue) -> Worker:
    """An idle worker: polls and periodic work 30 s apart, so only a stop can end its waits in time."""
    reg = Registry()

    async def handler(_payload: Mapping[str, Any]) -> None:
        return None

    reg.register("k", handler, RetryPolicy())
    options = WorkerOptions(
        concurrency=2, poll_interval=30.0, shutdown_timeout=5.0, periodic=lambda: None, periodic_interval=30.0
    )
    return Worker(queue, reg, options)


def test_an_idle_worker_stops_at_once_when_asked_from_another_thread(worker: Worker) -> None:
    worker.start_thread()
    time.sleep(0.3)  # the lanes are asleep in their 30 s waits
    started = time.monotonic()
    worker.stop(timeout=10)
    assert time.monotonic() - started < 2.0
    assert worker._thread is not None
    assert not worker._thread.is_alive()
    again = time.monotonic()
    worker.stop(timeout=0)  # its loop has ended: nothing to wake, and no hang
    assert time.monotonic() - again < 1.0


def test_an_idle_worker_stops_when_asked_on_its_own_loop(worker: Worker) -> None:
    # What `updown worker`'s signal handler does: stop() from a task on the loop running the worker.

    async def main() -> float:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            await anyio.sleep(0.3)
            started = time.monotonic()
            worker.stop(timeout=0)
        return time.monotonic() - started

    assert anyio.run(main) < 2.0


def test_a_worker_stopped_before_it_runs_returns_at_once(worker: Worker) -> None:
    worker.stop(timeout=0)
    started = time.monotonic()
    anyio.run(worker.run)
    assert time.monotonic() - started < 2.0
