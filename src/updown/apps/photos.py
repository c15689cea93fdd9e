"""The ObjectCreated step of event photos (``uploads/``): from an uploaded object to a listed photo.

For each object version under ``uploads/event_{eventId}/{photoId}.{ext}`` the step reads the
object's own metadata (what the presigned URL bound, not what any request said), checks it names
the photo the key names and a granted upload, sniffs and fully verifies the image, strips GPS from
its EXIF, and publishes under ``public/events/{eventId}/`` (served by ``/cdn``) an optimized copy
(upright, at most ``event_photo_size`` pixels a side, WebP, no metadata) and a thumbnail (its
variant). The file row of the copy, its thumbnail and the photo row (``ready``, with their keys)
commit in one transaction. The raw upload stays under ``uploads/``, which nothing serves.

Idempotent: a redelivered event for the version a ready photo was made from changes nothing; the
published keys are content-addressed, so running again writes the same objects and the same rows.
A newer version (the URL used again) replaces the copies and deletes the old ones.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio.to_thread
from sqlalchemy.orm import Session

from updown.apps.events import PHOTO_TYPES, PUBLIC_PREFIX, decode_text, parse_upload_key
from updown.clock import Clock
from updown.db.engine import Database
from updown.db.models.events import EventPhoto
from updown.db.models.files import FileRecord
from updown.files.records import OWNER_METADATA, Records, Variant
from updown.files.uploads import canonical_type
from updown.processing import images, sniff
from updown.processing.pipeline import Rejected
from updown.storage.base import ObjectInfo, StorageBackend

log = logging.getLogger("updown.apps.photos")

SNIFF_BYTES: Final = 4096
# The published copies are content-addressed: they never change under their keys.
PUBLISHED_CACHE_CONTROL: Final = "public, max-age=31557600, immutable"
# Who owns the published copies: no identity (ids are ``<region>:<uuid>``), so the owner rule of
# ``public/`` keeps every user from replacing or deleting them; only the admin role may.
OWNER: Final = "app:events"
THUMBNAIL: Final = "thumbnail"


@dataclass(frozen=True, slots=True)
class _Made:
    """The published copies of one upload, not yet recorded."""

    file: ObjectInfo
    width: int
    height: int
    thumbnail: Variant


class EventPhotoStep:
    """Callable as an ObjectCreated step (``processing.triggers.ObjectTriggers.register``)."""

    def __init__(
        self,
        db: Database,
        storage: StorageBackend,
        records: Records,
        clock: Clock,
        *,
        work_dir: Path,
        limits: images.ImageLimits,
        thumbnail_size: int,
        photo_size: int,
        max_size: int,
    ) -> None:
        self.db = db
        self.storage = storage
        self.records = records
        self.clock = clock
        self.work_dir = work_dir
        self.limits = limits
        self.thumbnail_size = thumbnail_size
        self.photo_size = photo_size
        self.max_size = max_size

    async def __call__(self, info: ObjectInfo) -> None:
        named = parse_upload_key(info.key)
        if named is None:
            log.info("event photos: %s is not a photo upload key; left alone", info.key)
            return
        event_id, photo_id = named
        row = await anyio.to_thread.run_sync(self._photo, photo_id)
        if row is None or row.event_id != event_id or row.upload_key != info.key:
            log.warning("event photos: %s was not granted by initiate-upload; left alone", info.key)
            return
        if row.status == "ready" and row.source_etag == info.etag:
            return  # redelivered: this version is published already
        try:
            title, description, content_type = self._read_metadata(info, event_id, photo_id, row)
            made = await self._publish(info, event_id, photo_id, content_type)
        except Rejected as refused:
            await anyio.to_thread.run_sync(self._reject, photo_id, info.etag, refused.reason)
            log.info("event photo %s rejected: %s", photo_id, refused.reason)
            return
        old = await anyio.to_thread.run_sync(self._record, made, row, info.etag, title, description)
        for key in old:
            await self.storage.delete(key)

    # -- reading and checking ------------------------------------------------------------------

    def _photo(self, photo_id: str) -> EventPhoto | None:
        with self.db.session() as s:
            row = s.get(EventPhoto, photo_id)
            if row is not None:
                s.expunge(row)
            return row

    @staticmethod
    def _read_metadata(info: ObjectInfo, event_id: str, photo_id: str, row: EventPhoto) -> tuple[str, str, str]:
        """Title, description and content type, from the object's metadata; refused unless it
        names this photo of this event and the type it was granted for."""
        meta = info.metadata
        if meta.get("eventid") != event_id or meta.get("photoid") != photo_id:
            raise Rejected("the uploaded object's metadata does not name this photo")
        content_type = canonical_type(meta.get("contenttype", ""))
        if content_type not in PHOTO_TYPES or content_type != row.content_type:
            raise Rejected("the uploaded object's content type is not the one the upload was granted for")
        return decode_text(meta.get("title", "")), decode_text(meta.get("description", "")), content_type

    async def _publish(self, info: ObjectInfo, event_id: str, photo_id: str, content_type: str) -> _Made:
        if info.size > self.max_size:
            raise Rejected(f"the photo is {info.size} bytes; at most {self.max_size} are accepted")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.work_dir) as tmp:
            work = Path(tmp)
            source = work / "source"
            await self._download(info.key, source)
            head = await anyio.to_thread.run_sync(_head, source)
            verdict = sniff.verdict(content_type, head)
            if not verdict.ok:
                raise Rejected(verdict.reason or "the file is not the image it was declared to be")
            thumb, optimized = work / "thumb.webp", work / "optimized.webp"
            try:
                made_thumb, made_copy = await anyio.to_thread.run_sync(self._images, work, source, thumb, optimized)
            except images.ImageRejected as bad:
                raise Rejected(bad.reason) from None
            folder = f"{PUBLIC_PREFIX}{event_id}/"
            file = await self._put(optimized, folder, f"{photo_id}-", ".webp")
            thumb_info = await self._put(thumb, folder, f"{photo_id}-", "-thumb.webp")
        variant = Variant(
            THUMBNAIL,
            thumb_info.key,
            "image/webp",
            thumb_info.size,
            thumb_info.etag,
            made_thumb.width,
            made_thumb.height,
        )
        return _Made(file, made_copy.width, made_copy.height, variant)

    def _images(self, work: Path, source: Path, thumb: Path, optimized: Path) -> tuple[images.Thumb, images.Thumb]:
        """Verify (every pixel decoded under the limits) and thumbnail, strip GPS, then the optimized copy."""
        _info, made_thumb = images.verify_and_thumbnail(source, thumb, longest=self.thumbnail_size, limits=self.limits)
        clean = work / "clean"
        if images.strip_gps(source, clean):
            source = clean
        # Re-encoded without any metadata: nothing of the EXIF (GPS or other) reaches the copy.
        made_copy = images.thumbnail(source, optimized, longest=self.photo_size, limits=self.limits)
        return made_thumb, made_copy

    async def _download(self, key: str, dst: Path) -> None:
        with dst.open("wb") as out:
            async with await self.storage.get(key) as stream:
                async for chunk in stream:
                    out.write(chunk)

    async def _put(self, path: Path, folder: str, stem: str, suffix: str) -> ObjectInfo:
        data = await anyio.to_thread.run_sync(path.read_bytes)
        key = f"{folder}{stem}{hashlib.sha256(data).hexdigest()[:32]}{suffix}"

        async def body() -> AsyncIterator[bytes]:
            yield data

        return await self.storage.put(
            key,
            body(),
            content_type="image/webp",
            metadata={OWNER_METADATA: OWNER},
            content_length=len(data),
            max_size=len(data),
        )

    # -- recording -----------------------------------------------------------------------------

    def _record(self, made: _Made, row: EventPhoto, etag: str, title: str, description: str) -> list[str]:
        """The copy's file row, its thumbnail and the photo row, in one transaction; returns the keys
        of copies an earlier version published (the caller deletes their bytes)."""
        now = self.clock.now()
        record = FileRecord(
            key=made.file.key,
            access_level="public",
            identity_id=OWNER,
            size=made.file.size,
            content_type="image/webp",
            etag=made.file.etag,
            metadata_={"eventid": row.event_id, "photoid": row.id},
            cache_control=PUBLISHED_CACHE_CONTROL,
            width=made.width,
            height=made.height,
            upload_id=None,
            status="ready",
            created_at=now,
            updated_at=now,
        )
        replaced: list[str] = []

        def mark_ready(s: Session) -> None:
            photo = s.get(EventPhoto, row.id, with_for_update=True)
            if photo is None:  # the event was deleted meanwhile: its copies go too
                replaced.extend((made.file.key, made.thumbnail.key))
                return
            if photo.file_key and photo.file_key != made.file.key:
                replaced.append(photo.file_key)
            photo.status, photo.reason, photo.source_etag = "ready", None, etag
            photo.title, photo.description = title, description
            photo.file_key, photo.thumbnail_key, photo.updated_at = made.file.key, made.thumbnail.key, now

        stale = self.records.publish(record, [made.thumbnail], upload_id=None, then=mark_ready)
        old: list[str] = list(stale)
        for key in replaced:
            info = self.records.ready(key)
            self.records.forget(key)
            old.append(key)
            if info is not None:
                old.extend(v.key for v in info.variants)
        return old

    def _reject(self, photo_id: str, etag: str, reason: str) -> None:
        with self.db.session() as s:
            photo = s.get(EventPhoto, photo_id)
            # A ready photo stays as it was: the earlier version is still the photo.
            if photo is not None and photo.status != "ready":
                photo.status, photo.reason, photo.source_etag = "rejected", reason, etag
                photo.updated_at = self.clock.now()


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(SNIFF_BYTES)
