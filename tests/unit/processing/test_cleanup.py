"""Cleanup without a server: the local backend on tmp_path, a migrated database, a FrozenClock.

Expired ``pending`` intents (their staged bytes and multipart parts go), staged leftovers, orphan
blobs (old ones only), rows without blobs (reported, kept), temp files, guests and old jobs; and
the dry run, which reports the same and changes nothing. Storage stamps objects with the real
time, so the clock starts at the real time and moving it ages every object at once."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.contract.bodies import chunks
from updown.clock import FrozenClock
from updown.db.engine import Database
from updown.db.models.files import FileRecord, FileVariant, Job, Upload
from updown.files.uploads import staging_key
from updown.processing.cleanup import Cleanup, Report
from updown.processing.jobs import JobQueue
from updown.storage.local import LocalBackend

pytestmark = pytest.mark.anyio

DAY = 86_400.0
OLDER_THAN = 3600.0
IDENTITY = "eu-west-1:0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class World:
    db: Database
    store: LocalBackend
    clock: FrozenClock
    jobs: JobQueue
    cleanup: Cleanup
    guest_calls: list[float] = field(default_factory=list)


@pytest.fixture
def w(database: Database, tmp_path: Path) -> World:
    clock = FrozenClock(time.time())
    store = LocalBackend(tmp_path / "store")
    jobs = JobQueue(database, clock, lease=60, max_attempts=3)
    calls: list[float] = []

    def expire_guests() -> int:
        calls.append(clock.now())
        return 3

    cleanup = Cleanup(database, store, jobs, clock, expire_guests=expire_guests, multipart_lifetime=DAY)
    return World(database, store, clock, jobs, cleanup, calls)


async def put(store: LocalBackend, key: str, data: bytes = b"bytes") -> None:
    await store.put(key, chunks(data), content_length=len(data))


def age_everything(w: World, seconds: float) -> None:
    """Moves the clock so that every object stored so far is at least ``seconds`` old."""
    w.clock.t = max(w.clock.t, time.time()) + seconds


async def keys(store: LocalBackend, prefix: str = "") -> list[str]:
    return [item.key for item in (await store.list(prefix)).items]


def add_upload(
    w: World,
    *,
    status: str = "pending",
    expires_in: float = 600.0,
    multipart_id: str | None = None,
    upload_id: str | None = None,
) -> str:
    upload_id = upload_id or secrets.token_hex(16)
    now = w.clock.now()
    with w.db.session() as s:
        s.add(
            Upload(
                id=upload_id,
                key=f"protected/{IDENTITY}/{upload_id}.bin",
                staging_key=staging_key(upload_id),
                access_level="protected",
                identity_id=IDENTITY,
                user_sub=None,
                mode="put" if multipart_id is None else "multipart",
                content_type="application/octet-stream",
                size=5,
                metadata_={},
                cache_control=None,
                multipart_id=multipart_id,
                status=status,
                reason=None,
                etag=None,
                received=None,
                created_at=now,
                expires_at=now + expires_in,
                updated_at=now,
            )
        )
    return upload_id


def upload_row(w: World, upload_id: str) -> Upload:
    with w.db.session() as s:
        row = s.get(Upload, upload_id)
        assert row is not None
        return row


def add_file(w: World, key: str) -> None:
    now = w.clock.now()
    with w.db.session() as s:
        s.add(
            FileRecord(
                key=key,
                access_level=key.split("/", 1)[0],
                identity_id=None,
                size=5,
                content_type="application/octet-stream",
                etag="0" * 32,
                metadata_={},
                cache_control=None,
                width=None,
                height=None,
                upload_id=None,
                status="ready",
                created_at=now,
                updated_at=now,
            )
        )


def add_variant(w: World, file_key: str, key: str) -> None:
    with w.db.session() as s:
        s.add(
            FileVariant(
                key=key,
                file_key=file_key,
                name="thumbnail",
                content_type="image/webp",
                size=5,
                etag="1" * 32,
                width=1,
                height=1,
            )
        )


# --------------------------------------------------------------------------- expired intents


async def test_expired_pending_intent_becomes_expired_and_loses_its_staged_bytes(w: World) -> None:
    expired = add_upload(w, expires_in=-1)
    at_expiry = add_upload(w, expires_in=0)  # expires_at == now: expired
    alive = add_upload(w, expires_in=60)
    for upload_id in (expired, at_expiry, alive):
        await put(w.store, staging_key(upload_id))

    report = await w.cleanup.run(older_than=OLDER_THAN)

    assert sorted(report.expired_uploads) == sorted([expired, at_expiry])
    for upload_id in (expired, at_expiry):
        row = upload_row(w, upload_id)
        assert (row.status, row.reason, row.updated_at) == (
            "expired",
            "the upload was not completed in time",
            w.clock.now(),
        )
    assert upload_row(w, alive).status == "pending"
    assert await keys(w.store, "_uploads/") == [staging_key(alive)]
    assert report.staged_deleted == []  # the expired ones went with their intents


async def test_intent_expires_once_the_clock_passes_it(w: World) -> None:
    upload_id = add_upload(w, expires_in=60)
    await put(w.store, staging_key(upload_id))
    assert (await w.cleanup.run(older_than=OLDER_THAN)).expired_uploads == []
    w.clock.advance(60)
    assert (await w.cleanup.run(older_than=OLDER_THAN)).expired_uploads == [upload_id]
    assert upload_row(w, upload_id).status == "expired"
    assert await keys(w.store, "_uploads/") == []
    # A second run has nothing more to do.
    assert (await w.cleanup.run(older_than=OLDER_THAN)).expired_uploads == []


async def test_expired_intent_without_bytes_is_expired(w: World) -> None:
    upload_id = add_upload(w, expires_in=-5)
    report = await w.cleanup.run(older_than=OLDER_THAN)
    assert report.expired_uploads == [upload_id]
    assert upload_row(w, upload_id).status == "expired"


@pytest.mark.parametrize("status", ["uploaded", "processing", "ready", "rejected", "expired"])
async def test_only_pending_intents_expire(w: World, status: str) -> None:
    upload_id = add_upload(w, status=status, expires_in=-100)
    report = await w.cleanup.run(older_than=OLDER_THAN)
    assert report.expired_uploads == []
    row = upload_row(w, upload_id)
    assert (row.status, row.reason) == (status, None)


async def test_expired_multipart_intent_aborts_its_multipart_upload(w: World) -> None:
    upload_id = secrets.token_hex(16)
    staged = staging_key(upload_id)
    multipart_id = await w.store.create_multipart(staged, content_type="application/octet-stream")
    await w.store.put_part(staged, multipart_id, 1, chunks(b"part one"), content_length=8)
    other = await w.store.create_multipart("_uploads/" + "f" * 32)
    assert len(await w.store.list_multipart_uploads()) == 2
    add_upload(w, upload_id=upload_id, multipart_id=multipart_id, expires_in=-1)

    report = await w.cleanup.run(older_than=OLDER_THAN)

    assert report.expired_uploads == [upload_id]
    remaining = await w.store.list_multipart_uploads()
    assert [u.upload_id for u in remaining] == [other]
    assert upload_row(w, upload_id).status == "expired"


async def test_expired_multipart_intent_whose_upload_is_gone_still_expires(w: World) -> None:
    upload_id = secrets.token_hex(16)
    staged = staging_key(upload_id)
    multipart_id = await w.store.create_multipart(staged)
    await w.store.abort_multipart(staged, multipart_id)
    add_upload(w, upload_id=upload_id, multipart_id=multipart_id, expires_in=-1)
    report = await w.cleanup.run(older_than=OLDER_THAN)
    assert report.expired_uploads == [upload_id]
    assert upload_row(w, upload_id).status == "expired"


# --------------------------------------------------------------------------- staged leftovers


async def test_staged_bytes_of_closed_intents_are_deleted_and_of_open_ones_kept(w: World) -> None:
    by_status = {
        status: add_upload(w, status=status, expires_in=600) for status in ("pending", "uploaded", "processing")
    }
    by_status |= {status: add_upload(w, status=status, expires_in=-600) for status in ("ready", "rejected", "expired")}
    for upload_id in by_status.values():
        await put(w.store, staging_key(upload_id))

    report = await w.cleanup.run(older_than=OLDER_THAN)

    closed = sorted(staging_key(by_status[s]) for s in ("ready", "rejected", "expired"))
    assert sorted(report.staged_deleted) == closed
    assert report.expired_uploads == []
    assert sorted(await keys(w.store, "_uploads/")) == sorted(
        staging_key(by_status[s]) for s in ("pending", "uploaded", "processing")
    )


async def test_staged_bytes_of_no_intent_are_deleted_only_once_old(w: World) -> None:
    stray = staging_key(secrets.token_hex(16))  # an id with no row
    odd = "_uploads/not-an-upload-id"
    await put(w.store, stray)
    await put(w.store, odd)

    young = await w.cleanup.run(older_than=OLDER_THAN)
    assert young.staged_deleted == []
    modified = [(await w.store.head(key)).last_modified for key in (stray, odd)]
    w.clock.t = min(modified) + OLDER_THAN - 0.01  # both a little younger than the cutoff
    assert (await w.cleanup.run(older_than=OLDER_THAN)).staged_deleted == []
    assert sorted(await keys(w.store, "_uploads/")) == sorted([stray, odd])

    w.clock.t = max(modified) + OLDER_THAN  # exactly as old as the cutoff: deleted
    old = await w.cleanup.run(older_than=OLDER_THAN)
    assert sorted(old.staged_deleted) == sorted([stray, odd])
    assert await keys(w.store, "_uploads/") == []


# --------------------------------------------------------------------------- orphans and missing blobs


async def test_orphan_blobs_are_deleted_once_older_than_the_cutoff(w: World) -> None:
    kept_file = "public/kept.txt"
    kept_variant = "public/_variants/thumbnail/abc.webp"
    orphans = ["public/orphan.txt", f"protected/{IDENTITY}/orphan.bin", f"private/{IDENTITY}/deep/orphan.bin"]
    orphan_variant = "public/_variants/thumbnail/def.webp"
    outside = ["other/not-a-level.txt", "publicity/x.txt"]
    add_file(w, kept_file)
    add_variant(w, kept_file, kept_variant)
    for key in [kept_file, kept_variant, *orphans, orphan_variant, *outside]:
        await put(w.store, key)

    young = await w.cleanup.run(older_than=OLDER_THAN)
    assert young.orphan_blobs == []
    assert young.missing_blobs == []

    age_everything(w, OLDER_THAN + 1)
    old = await w.cleanup.run(older_than=OLDER_THAN)
    assert sorted(old.orphan_blobs) == sorted([*orphans, orphan_variant])
    assert sorted(await keys(w.store)) == sorted([kept_file, kept_variant, *outside])
    assert old.missing_blobs == []


async def test_blob_exactly_at_the_cutoff_is_kept(w: World) -> None:
    await put(w.store, "public/orphan.txt")
    modified = (await w.store.head("public/orphan.txt")).last_modified
    w.clock.t = modified + OLDER_THAN  # cutoff == last_modified
    assert (await w.cleanup.run(older_than=OLDER_THAN)).orphan_blobs == []
    w.clock.t += 0.01
    assert (await w.cleanup.run(older_than=OLDER_THAN)).orphan_blobs == ["public/orphan.txt"]


async def test_rows_without_blobs_are_reported_never_removed(w: World) -> None:
    add_file(w, "public/present.txt")
    add_file(w, "public/gone.txt")
    add_file(w, f"protected/{IDENTITY}/gone.bin")
    add_variant(w, "public/present.txt", "public/_variants/thumbnail/gone.webp")
    await put(w.store, "public/present.txt")
    age_everything(w, DAY)

    report = await w.cleanup.run(older_than=OLDER_THAN)

    assert report.missing_blobs == sorted(
        ["public/gone.txt", f"protected/{IDENTITY}/gone.bin", "public/_variants/thumbnail/gone.webp"]
    )
    assert report.orphan_blobs == []
    with w.db.session() as s:
        assert len(list(s.scalars(select(FileRecord.key)))) == 3
        assert len(list(s.scalars(select(FileVariant.key)))) == 1


async def test_many_orphans_across_batches(w: World) -> None:
    # More than one batch of 500 keys for the known-keys query.
    for n in range(510):
        await put(w.store, f"public/batch/{n:04d}", b"")
    add_file(w, "public/batch/0007")
    add_file(w, "public/batch/0501")
    age_everything(w, OLDER_THAN + 1)
    report = await w.cleanup.run(older_than=OLDER_THAN, dry_run=True)
    assert len(report.orphan_blobs) == 508
    assert "public/batch/0007" not in report.orphan_blobs
    assert "public/batch/0501" not in report.orphan_blobs
    assert "public/batch/0509" in report.orphan_blobs


# --------------------------------------------------------------------------- temp files, guests, jobs


async def test_temp_files_are_swept_no_younger_than_the_multipart_lifetime(w: World) -> None:
    tmp = w.store.root / "tmp"
    stale, recent = tmp / "stale.data", tmp / "recent.data"
    stale.write_bytes(b"left by a crash")
    recent.write_bytes(b"maybe a multipart part in flight")
    now = time.time()
    os.utime(stale, (now - DAY - 60, now - DAY - 60))
    os.utime(recent, (now - 2 * OLDER_THAN, now - 2 * OLDER_THAN))  # older than older_than, younger than a day

    report = await w.cleanup.run(older_than=OLDER_THAN)

    assert report.temp_files == 1
    assert not stale.exists()
    assert recent.exists()


async def test_guests_expire_and_old_finished_jobs_are_purged(w: World) -> None:
    with w.db.session() as s:
        for name in ("old", "young", "failed"):
            w.jobs.enqueue(s, "k", name, {})
    old = w.jobs.claim()
    failed = w.jobs.claim()
    assert old is not None
    assert failed is not None
    w.jobs.done(old)
    w.clock.advance(8 * DAY)
    young = w.jobs.claim()
    assert young is not None
    w.jobs.done(young)
    w.jobs.failed(failed, "boom")  # updated now, status queued: never purged anyway

    report = await w.cleanup.run(older_than=OLDER_THAN)

    assert report.guests == 3
    assert w.guest_calls == [w.clock.now()]
    assert report.jobs == 1
    with w.db.session() as s:
        assert sorted(s.scalars(select(Job.dedupe))) == ["k:failed", "k:young"]


# --------------------------------------------------------------------------- dry run and report


async def test_dry_run_reports_and_changes_nothing(w: World) -> None:
    expired = add_upload(w, expires_in=-1)
    await put(w.store, staging_key(expired))
    closed = add_upload(w, status="ready", expires_in=-1)
    await put(w.store, staging_key(closed))
    await put(w.store, "public/orphan.txt")
    add_file(w, "public/missing.txt")
    with w.db.session() as s:
        w.jobs.enqueue(s, "k", "done", {})
    job = w.jobs.claim()
    assert job is not None
    w.jobs.done(job)
    stale = w.store.root / "tmp" / "stale.data"
    stale.write_bytes(b"x")
    os.utime(stale, (time.time() - 2 * DAY, time.time() - 2 * DAY))
    age_everything(w, 8 * DAY)
    before = sorted(await keys(w.store))

    report = await w.cleanup.run(older_than=OLDER_THAN, dry_run=True)

    assert report.expired_uploads == [expired]
    assert report.staged_deleted == [staging_key(closed)]  # the expired intent's bytes wait for a real run
    assert report.orphan_blobs == ["public/orphan.txt"]
    assert report.missing_blobs == ["public/missing.txt"]
    assert (report.temp_files, report.guests, report.jobs) == (0, 0, 0)
    assert sorted(await keys(w.store)) == before
    assert upload_row(w, expired).status == "pending"
    assert stale.exists()
    assert w.guest_calls == []
    assert w.jobs.counts() == {"done": 1}

    real = await w.cleanup.run(older_than=OLDER_THAN)
    assert real.expired_uploads == [expired]
    assert real.staged_deleted == [staging_key(closed)]  # the expired intent's bytes went with it
    assert real.orphan_blobs == ["public/orphan.txt"]
    assert (real.temp_files, real.guests, real.jobs) == (1, 3, 1)
    assert await keys(w.store) == []


def test_report_lines() -> None:
    report = Report(
        expired_uploads=["a", "b"],
        staged_deleted=["_uploads/x"],
        orphan_blobs=[],
        missing_blobs=["public/m1", "public/m2"],
        temp_files=4,
        guests=5,
        jobs=6,
    )
    assert report.lines() == [
        "expired uploads: 2",
        "staged blobs deleted: 1",
        "orphan blobs deleted: 0",
        "rows without a blob: 2\n  public/m1\n  public/m2",
        "temporary files removed: 4",
        "guest identities expired: 5",
        "finished jobs purged: 6",
    ]
    assert Report().lines()[3] == "rows without a blob: 0"
