"""The upsert: one row per key whatever the order and overlap of the writers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from updown.db.engine import Database
from updown.db.models.files import FileRecord
from updown.db.upsert import upsert


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
