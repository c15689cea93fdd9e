"""Cleanup: abandoned uploads, orphan blobs, dead guests and old jobs, as `updown cleanup` and
periodically inside `updown serve`.

- ``pending`` intents past their expiry become ``expired``: their staged bytes and multipart parts
  are deleted and their quota reservation ends with them.
- Staged bytes whose intent is no longer open are deleted (a crash between two steps leaves them).
- Blobs with no row (under an access level, older than the cutoff) are deleted; a blob younger
  than the cutoff may belong to processing in flight, so it is left alone.
- Rows with no blob are reported, never "fixed" silently: they would be a bug.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio.to_thread
from sqlalchemy import select

from updown.clock import Clock
from updown.db.engine import Database
from updown.db.models.files import FileRecord, FileVariant, Upload
from updown.errors import NotFound
from updown.files.uploads import OPEN, STAGING_PREFIX, upload_id_of
from updown.processing.queue import Queue
from updown.storage.base import StorageBackend

_BATCH = 500
_LEVELS = ("public/", "protected/", "private/")
_JOBS_KEPT = 7 * 86_400


@dataclass
class Report:
    """What a cleanup run did (or, dry, would do)."""

    expired_uploads: list[str] = field(default_factory=list)
    staged_deleted: list[str] = field(default_factory=list)
    orphan_blobs: list[str] = field(default_factory=list)
    missing_blobs: list[str] = field(default_factory=list)
    temp_files: int = 0
    guests: int = 0
    jobs: int = 0

    def lines(self) -> list[str]:
        return [
            f"expired uploads: {len(self.expired_uploads)}",
            f"staged blobs deleted: {len(self.staged_deleted)}",
            f"orphan blobs deleted: {len(self.orphan_blobs)}",
            f"rows without a blob: {len(self.missing_blobs)}" + "".join(f"\n  {k}" for k in self.missing_blobs),
            f"temporary files removed: {self.temp_files}",
            f"guest identities expired: {self.guests}",
            f"finished jobs purged: {self.jobs}",
        ]


class Cleanup:
    def __init__(
        self,
        db: Database,
        storage: StorageBackend,
        jobs: Queue,
        clock: Clock,
        *,
        expire_guests: Callable[[], int],
        multipart_lifetime: float = 86_400.0,
    ) -> None:
        self.db = db
        self.storage = storage
        self.jobs = jobs
        self.clock = clock
        self.expire_guests = expire_guests
        self.multipart_lifetime = multipart_lifetime

    async def run(self, *, older_than: float, dry_run: bool = False) -> Report:
        report = Report()
        now = self.clock.now()
        expired = await anyio.to_thread.run_sync(self._expired_intents, now)
        for upload_id, staged, multipart_id in expired:
            report.expired_uploads.append(upload_id)
            if dry_run:
                continue
            await self._drop_staged(staged, multipart_id)
            await anyio.to_thread.run_sync(self._mark_expired, upload_id)
        await self._sweep_staged(report, now, older_than, dry_run)
        await self._sweep_orphans(report, now - older_than, dry_run)
        if not dry_run:
            # Never younger than an intent's multipart upload may live: the sweep aborts those too.
            report.temp_files = await self.storage.sweep_temp(max(older_than, self.multipart_lifetime))
            report.guests = await anyio.to_thread.run_sync(self.expire_guests)
            report.jobs = await anyio.to_thread.run_sync(self.jobs.purge_done, float(_JOBS_KEPT))
        return report

    def _expired_intents(self, now: float) -> list[tuple[str, str, str | None]]:
        with self.db.session() as s:
            rows = s.execute(
                select(Upload.id, Upload.staging_key, Upload.multipart_id).where(
                    Upload.status == "pending", Upload.expires_at <= now
                )
            ).all()
        return [(r.id, r.staging_key, r.multipart_id) for r in rows]

    def _mark_expired(self, upload_id: str) -> None:
        with self.db.session() as s:
            row = s.get(Upload, upload_id)
            if row is not None and row.status == "pending":
                row.status, row.reason, row.updated_at = (
                    "expired",
                    "the upload was not completed in time",
                    self.clock.now(),
                )

    async def _drop_staged(self, staged: str, multipart_id: str | None) -> None:
        if multipart_id is not None:
            with contextlib.suppress(NotFound):
                await self.storage.abort_multipart(staged, multipart_id)
        await self.storage.delete(staged)

    async def _sweep_staged(self, report: Report, now: float, older_than: float, dry_run: bool) -> None:
        """Staged bytes of intents that are not open any more (and of no intent at all)."""
        async for key, modified in self._keys(STAGING_PREFIX):
            upload_id = upload_id_of(key)
            status = None if upload_id is None else await anyio.to_thread.run_sync(self._status, upload_id)
            if status in OPEN and status != "pending":
                continue  # landed, processing owns it
            if status == "pending":
                continue
            if status is None and now - modified < older_than:
                continue
            report.staged_deleted.append(key)
            if not dry_run:
                await self.storage.delete(key)

    def _status(self, upload_id: str) -> str | None:
        with self.db.session() as s:
            row = s.get(Upload, upload_id)
            return None if row is None else row.status

    async def _sweep_orphans(self, report: Report, cutoff: float, dry_run: bool) -> None:
        seen: set[str] = set()
        for level in _LEVELS:
            batch: list[tuple[str, float]] = []
            async for item in self._keys(level):
                batch.append(item)
                if len(batch) >= _BATCH:
                    await self._orphans_in(batch, cutoff, report, dry_run, seen)
                    batch = []
            await self._orphans_in(batch, cutoff, report, dry_run, seen)
        rows = await anyio.to_thread.run_sync(self._all_row_keys)
        # Only the levels were listed: a row elsewhere (an object written straight to uploads/) is not missing.
        report.missing_blobs = sorted(k for k in rows if k not in seen and k.startswith(_LEVELS))

    async def _orphans_in(
        self, batch: list[tuple[str, float]], cutoff: float, report: Report, dry_run: bool, seen: set[str]
    ) -> None:
        if not batch:
            return
        known = await anyio.to_thread.run_sync(self._known, [k for k, _ in batch])
        for key, modified in batch:
            seen.add(key)
            if key in known or modified >= cutoff:
                continue
            report.orphan_blobs.append(key)
            if not dry_run:
                await self.storage.delete(key)

    def _known(self, keys: list[str]) -> set[str]:
        with self.db.session() as s:
            files = set(s.scalars(select(FileRecord.key).where(FileRecord.key.in_(keys))))
            variants = set(s.scalars(select(FileVariant.key).where(FileVariant.key.in_(keys))))
        return files | variants

    def _all_row_keys(self) -> set[str]:
        with self.db.session() as s:
            return set(s.scalars(select(FileRecord.key))) | set(s.scalars(select(FileVariant.key)))

    async def _keys(self, prefix: str):  # type: ignore[no-untyped-def]
        token: str | None = None
        while True:
            page = await self.storage.list(prefix, limit=1000, continuation_token=token)
            for item in page.items:
                yield item.key, item.last_modified
            if page.next_token is None:
                return
            token = page.next_token
