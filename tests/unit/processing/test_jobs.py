"""The job queue in the database: dedupe, leases and their expiry, retries with backoff, failure
after max_attempts, purge of finished jobs and counts. Time is a FrozenClock moved by hand; runs
on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import select

from updown.clock import FrozenClock
from updown.db.engine import Database
from updown.db.models.files import Job
from updown.processing.jobs import Claimed, JobQueue

LEASE = 60.0
MAX_ATTEMPTS = 4


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_800_000_000.0)


@pytest.fixture
def queue(database: Database, clock: FrozenClock) -> JobQueue:
    return JobQueue(database, clock, lease=LEASE, max_attempts=MAX_ATTEMPTS)


def enqueue(queue: JobQueue, kind: str, dedupe: str, payload: Mapping[str, Any] | None = None) -> bool:
    with queue.db.session() as s:
        return queue.enqueue(s, kind, dedupe, payload or {})


def job_row(db: Database, job_id: int) -> Job:
    with db.session() as s:
        row = s.get(Job, job_id)
        assert row is not None
        return row


def all_rows(db: Database) -> list[Job]:
    with db.session() as s:
        return list(s.scalars(select(Job).order_by(Job.id)))


def claim(queue: JobQueue, kinds: tuple[str, ...] | None = None) -> Claimed:
    job = queue.claim(kinds)
    assert job is not None
    return job


# --------------------------------------------------------------------------- enqueue and dedupe


def test_enqueue_same_kind_and_dedupe_twice_gives_one_job(queue: JobQueue, clock: FrozenClock) -> None:
    assert enqueue(queue, "process-upload", "u1:etag-a", {"uploadId": "u1"}) is True
    clock.advance(5)
    assert enqueue(queue, "process-upload", "u1:etag-a", {"uploadId": "other"}) is False
    rows = all_rows(queue.db)
    assert len(rows) == 1
    row = rows[0]
    assert (row.kind, row.dedupe, row.payload, row.status, row.attempts) == (
        "process-upload",
        "process-upload:u1:etag-a",
        {"uploadId": "u1"},
        "queued",
        0,
    )
    assert row.run_after == row.created_at == row.updated_at == clock.now() - 5
    assert row.locked_until is None
    assert row.last_error is None


def test_enqueue_dedupe_is_per_kind_and_per_key(queue: JobQueue) -> None:
    assert enqueue(queue, "process-upload", "u1:etag-a") is True
    assert enqueue(queue, "process-upload", "u1:etag-b") is True  # same upload, new bytes: new work
    assert enqueue(queue, "cleanup", "u1:etag-a") is True
    assert queue.counts() == {"queued": 3}


def test_enqueue_is_part_of_the_callers_transaction(queue: JobQueue) -> None:
    def state_change_that_fails() -> None:
        with queue.db.session() as s:
            assert queue.enqueue(s, "k", "d", {}) is True
            raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError, match="the state change failed"):
        state_change_that_fails()
    assert queue.counts() == {}
    assert enqueue(queue, "k", "d") is True


def test_enqueue_twice_in_one_transaction_gives_one_job(queue: JobQueue) -> None:
    with queue.db.session() as s:
        assert queue.enqueue(s, "k", "d", {}) is True
        assert queue.enqueue(s, "k", "d", {}) is False
    assert queue.counts() == {"queued": 1}


def test_enqueue_of_finished_work_is_still_deduplicated_until_purged(queue: JobQueue, clock: FrozenClock) -> None:
    enqueue(queue, "k", "d")
    queue.done(claim(queue))
    assert enqueue(queue, "k", "d") is False
    clock.advance(100)
    assert queue.purge_done(older_than=50) == 1
    assert enqueue(queue, "k", "d") is True
    assert queue.counts() == {"queued": 1}


def test_enqueue_racing_an_open_transaction_waits_and_is_a_no_op(queue: JobQueue) -> None:
    # Two processes queue the same cleanup at the same moment: the second must answer False (not
    # fail on the unique key) once the first commits.
    db = queue.db
    first = db.sessions()
    answers: list[bool] = []
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with db.session() as s:
                answers.append(queue.enqueue(s, "cleanup", "42", {"by": "second"}))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    try:
        assert queue.enqueue(first, "cleanup", "42", {"by": "first"}) is True
        racer = threading.Thread(target=second)
        racer.start()
        racer.join(0.3)  # let it reach the database and wait on the first transaction's row
        first.commit()
    finally:
        first.close()
    racer.join(30)
    assert not racer.is_alive()
    assert errors == []
    assert answers == [False]
    assert [row.payload for row in all_rows(db)] == [{"by": "first"}]


# --------------------------------------------------------------------------- claim and lease


def test_claim_leases_the_job(queue: JobQueue, clock: FrozenClock) -> None:
    enqueue(queue, "process-upload", "u1:e", {"uploadId": "u1", "n": 3})
    job = claim(queue)
    assert job == Claimed(
        id=job.id,
        kind="process-upload",
        payload={"uploadId": "u1", "n": 3},
        attempts=1,
        locked_until=clock.now() + LEASE,
    )
    row = job_row(queue.db, job.id)
    assert (row.status, row.attempts, row.locked_until, row.updated_at) == (
        "running",
        1,
        clock.now() + LEASE,
        clock.now(),
    )


def test_claim_on_empty_queue_is_none(queue: JobQueue) -> None:
    assert queue.claim() is None


def test_leased_job_is_not_claimed_again_until_its_lease_runs_out(queue: JobQueue, clock: FrozenClock) -> None:
    enqueue(queue, "k", "d")
    first = claim(queue)
    other_worker = JobQueue(queue.db, clock, lease=LEASE, max_attempts=MAX_ATTEMPTS)
    assert other_worker.claim() is None
    clock.advance(LEASE)  # at locked_until exactly the lease still holds
    assert other_worker.claim() is None
    clock.advance(0.5)
    second = other_worker.claim()
    assert second is not None
    assert (second.id, second.attempts, second.locked_until) == (first.id, 2, clock.now() + LEASE)
    assert queue.claim() is None  # the new lease holds in turn


def test_worker_that_lost_its_lease_cannot_finish_or_fail_the_job(queue: JobQueue, clock: FrozenClock) -> None:
    enqueue(queue, "k", "d")
    stale = claim(queue)
    clock.advance(LEASE + 1)
    current = claim(queue)
    queue.done(stale)
    queue.failed(stale, "late")
    row = job_row(queue.db, current.id)
    assert (row.status, row.attempts, row.last_error) == ("running", 2, None)
    queue.done(current)
    row = job_row(queue.db, current.id)
    assert (row.status, row.locked_until, row.last_error) == ("done", None, None)


def test_claim_takes_oldest_first_then_by_id(queue: JobQueue, clock: FrozenClock) -> None:
    enqueue(queue, "k", "first")
    clock.advance(1)
    enqueue(queue, "k", "second")
    enqueue(queue, "k", "third")
    order = [claim(queue).id for _ in range(3)]
    assert order == sorted(order)
    assert [job_row(queue.db, i).dedupe for i in order] == ["k:first", "k:second", "k:third"]
    assert queue.claim() is None


def test_retry_waiting_for_backoff_lets_younger_jobs_run(queue: JobQueue, clock: FrozenClock) -> None:
    enqueue(queue, "k", "old")
    queue.failed(claim(queue), "boom")  # runs again in 2 s
    clock.advance(1)
    enqueue(queue, "k", "young")
    assert job_row(queue.db, claim(queue).id).dedupe == "k:young"
    clock.advance(1)
    assert job_row(queue.db, claim(queue).id).dedupe == "k:old"


def test_claim_filters_by_kind(queue: JobQueue) -> None:
    enqueue(queue, "cleanup", "1")
    enqueue(queue, "process-upload", "u:e")
    assert queue.claim(("thumbnail",)) is None
    assert queue.claim(()) is None
    assert claim(queue, ("process-upload",)).kind == "process-upload"
    assert queue.claim(("process-upload",)) is None
    assert claim(queue, ("process-upload", "cleanup")).kind == "cleanup"


def test_done_finishes_the_job(queue: JobQueue, clock: FrozenClock) -> None:
    enqueue(queue, "k", "d")
    job = claim(queue)
    queue.failed(job, "first try failed")
    clock.advance(10)
    job = claim(queue)
    clock.advance(3)
    queue.done(job)
    row = job_row(queue.db, job.id)
    assert (row.status, row.attempts, row.locked_until, row.last_error, row.updated_at) == (
        "done",
        2,
        None,
        None,
        clock.now(),
    )
    clock.advance(10_000)
    assert queue.claim() is None


def test_concurrent_workers_never_claim_the_same_job(queue: JobQueue, clock: FrozenClock) -> None:
    with queue.db.session() as s:
        for n in range(40):
            queue.enqueue(s, "k", str(n), {"n": n})
    claimed: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        mine = JobQueue(queue.db, clock, lease=LEASE, max_attempts=MAX_ATTEMPTS)
        try:
            while (job := mine.claim()) is not None:
                with lock:
                    claimed.append(job.id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(claimed) == 40
    assert len(set(claimed)) == 40
    assert queue.counts() == {"running": 40}


# --------------------------------------------------------------------------- failure, backoff, dead jobs


def test_failure_retries_with_growing_backoff_then_fails_for_good(queue: JobQueue, clock: FrozenClock) -> None:
    enqueue(queue, "k", "d")
    waits = []
    for attempt in range(1, MAX_ATTEMPTS):
        job = claim(queue)
        assert job.attempts == attempt
        queue.failed(job, f"error {attempt}")
        row = job_row(queue.db, job.id)
        assert (row.status, row.locked_until, row.last_error) == ("queued", None, f"error {attempt}")
        wait = row.run_after - clock.now()
        waits.append(wait)
        clock.advance(wait - 0.5)
        assert queue.claim() is None  # still backing off
        clock.advance(0.5)  # run_after itself is runnable
    assert waits == [2.0, 4.0, 8.0]

    last = claim(queue)
    assert last.attempts == MAX_ATTEMPTS
    queue.failed(last, "error 4")
    row = job_row(queue.db, last.id)
    assert (row.status, row.attempts, row.locked_until, row.last_error) == ("failed", MAX_ATTEMPTS, None, "error 4")
    clock.advance(86_400)
    assert queue.claim() is None
    assert queue.counts() == {"failed": 1}


def test_max_attempts_one_fails_at_first_error(database: Database, clock: FrozenClock) -> None:
    queue = JobQueue(database, clock, lease=LEASE, max_attempts=1)
    enqueue(queue, "k", "d")
    job = claim(queue)
    queue.failed(job, "no retries")
    assert job_row(database, job.id).status == "failed"


def test_backoff_is_capped_at_ten_minutes(database: Database, clock: FrozenClock) -> None:
    queue = JobQueue(database, clock, lease=LEASE, max_attempts=20)
    enqueue(queue, "k", "d")
    waits = []
    for _ in range(11):
        job = claim(queue)
        queue.failed(job, "again")
        row = job_row(database, job.id)
        waits.append(row.run_after - clock.now())
        clock.advance(row.run_after - clock.now())
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 600.0, 600.0]
    assert job_row(database, job.id).status == "queued"


def test_last_error_is_cut_to_2000_characters(queue: JobQueue) -> None:
    enqueue(queue, "k", "d")
    job = claim(queue)
    queue.failed(job, "x" * 1999 + "yz" + "w" * 5000)
    assert job_row(queue.db, job.id).last_error == "x" * 1999 + "y"


def test_lease_that_runs_out_counts_as_an_attempt(queue: JobQueue, clock: FrozenClock) -> None:
    # A worker killed mid-job: the job comes back after the lease, with its attempt counted.
    enqueue(queue, "k", "d")
    for attempt in (1, 2, 3):
        job = claim(queue)
        assert job.attempts == attempt
        clock.advance(LEASE + 1)
    job = claim(queue)
    queue.failed(job, "crashed once more, then failed")
    row = job_row(queue.db, job.id)
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)


# --------------------------------------------------------------------------- purge and counts


def test_purge_removes_only_done_jobs_older_than_the_cutoff(database: Database, clock: FrozenClock) -> None:
    queue = JobQueue(database, clock, lease=LEASE, max_attempts=1)  # one failure is final
    for name in ("done", "failed", "running", "queued"):
        enqueue(queue, "k", name)
    done, failed, _running = claim(queue), claim(queue), claim(queue)
    queue.done(done)
    queue.failed(failed, "dead")
    clock.advance(1000)
    enqueue(queue, "young", "done")
    queue.done(claim(queue, ("young",)))
    clock.advance(10)

    assert queue.purge_done(older_than=500) == 1
    assert {row.dedupe: row.status for row in all_rows(database)} == {
        "k:failed": "failed",
        "k:running": "running",
        "k:queued": "queued",
        "young:done": "done",
    }
    assert queue.purge_done(older_than=500) == 0
    assert queue.purge_done(older_than=5) == 1
    assert queue.counts() == {"failed": 1, "running": 1, "queued": 1}


def test_purge_cutoff_is_strict(queue: JobQueue, clock: FrozenClock) -> None:
    enqueue(queue, "k", "d")
    queue.done(claim(queue))
    clock.advance(100)
    assert queue.purge_done(older_than=100) == 0  # updated exactly 100 s ago: kept
    clock.advance(0.01)
    assert queue.purge_done(older_than=100) == 1
    assert queue.counts() == {}


def test_counts_by_status(queue: JobQueue, clock: FrozenClock) -> None:
    assert queue.counts() == {}
    for n in range(6):
        enqueue(queue, "k", str(n))
    assert queue.counts() == {"queued": 6}
    queue.done(claim(queue))
    final = JobQueue(queue.db, clock, lease=LEASE, max_attempts=1)
    final.failed(claim(final), "dead")
    claim(queue)
    queue.failed(claim(queue), "retry later")
    assert queue.counts() == {"queued": 3, "running": 1, "done": 1, "failed": 1}
