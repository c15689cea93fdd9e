"""The upsert: one row per key whatever the order and overlap of the writers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from updown.db.engine import Database
from updown.db.models.files import FileRecord, Job
from updown.db.upsert import insert_if_absent, upsert


def _row(key: str, etag: str, created: float) -> FileRecord:
    return FileRecord(
        key=key,
        access_level="public",
        identity_id=None,
        size=len(etag),
        content_type="image/png",
        etag=etag,
        metadata_={"etag": etag},
        cache_control=None,
        width=None,
        height=None,
        upload_id=None,
        status="ready",
        created_at=created,
        updated_at=created,
    )


def test_upsert_inserts_then_overwrites_all_but_the_kept_columns(database: Database) -> None:
    with database.session() as s:
        upsert(s, _row("public/a.png", "one", 1.0), keep=("created_at",))
    with database.session() as s:
        upsert(s, _row("public/a.png", "two", 2.0), keep=("created_at",))
    with database.session() as s:
        row = s.scalars(select(FileRecord)).one()
        assert (row.etag, row.metadata_, row.created_at, row.updated_at) == ("two", {"etag": "two"}, 1.0, 2.0)


def test_concurrent_upserts_of_one_key_all_succeed_and_one_wins(database: Database) -> None:
    # A read-then-insert lets two writers both see "absent" and the second fail on the key: the
    # fault a CI run on PostgreSQL hit with concurrent PUTs of one key.
    start = threading.Barrier(6)

    def write(i: int) -> None:
        start.wait()
        with database.session() as s:
            upsert(s, _row("public/shared.png", f"etag-{i}", float(i)), keep=("created_at",))

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(write, range(6)))
    with database.session() as s:
        rows = list(s.scalars(select(FileRecord)))
    assert len(rows) == 1
    assert rows[0].etag in {f"etag-{i}" for i in range(6)}
    assert rows[0].metadata_ == {"etag": rows[0].etag}


def _job(dedupe: str, payload: str) -> Job:
    return Job(
        kind="test",
        dedupe=dedupe,
        payload={"p": payload},
        status="queued",
        attempts=0,
        run_after=0.0,
        created_at=0.0,
        updated_at=0.0,
    )


def test_insert_if_absent_inserts_once_and_keeps_the_first(database: Database) -> None:
    with database.session() as s:
        assert insert_if_absent(s, _job("same", "first"), unique="dedupe") is True
        assert insert_if_absent(s, _job("same", "second"), unique="dedupe") is False
        assert insert_if_absent(s, _job("other", "third"), unique="dedupe") is True
    with database.session() as s:
        rows = sorted((j.dedupe, j.payload["p"]) for j in s.scalars(select(Job)))
        ids = [j.id for j in s.scalars(select(Job))]
    assert rows == [("other", "third"), ("same", "first")]
    assert len(set(ids)) == 2
    assert all(isinstance(i, int) for i in ids)


def test_concurrent_insert_if_absent_exactly_one_wins(database: Database) -> None:
    start = threading.Barrier(6)

    def write(i: int) -> bool:
        start.wait()
        with database.session() as s:
            return insert_if_absent(s, _job("raced", str(i)), unique="dedupe")

    with ThreadPoolExecutor(max_workers=6) as pool:
        won = list(pool.map(write, range(6)))
    assert won.count(True) == 1
    with database.session() as s:
        assert len(list(s.scalars(select(Job)))) == 1
