"""The processing pipeline: what happens after an upload's bytes land, at least once, idempotently.

For one landed intent: read the staged object's facts from storage, sniff what the bytes really are
and check them against what was declared (refusing forbidden types), fully decode images under a
pixel limit, strip GPS from their EXIF, make a WebP thumbnail under a content-addressed key, write
the file's own key, record the file ``ready`` and delete the staged bytes. A refusal deletes the
staged bytes and leaves the intent ``rejected`` with a reason a person understands.

Every step can run twice: a finished intent is left alone, objects are rewritten with the same
bytes, and the row is replaced whole. Apps add steps for keys under a prefix (``register``); they
run once the file is ready, with its record.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio.to_thread

from updown.clock import Clock
from updown.db.engine import Database
from updown.db.models.files import FileRecord, Upload
from updown.errors import NoSuchKey
from updown.files.records import OWNER_METADATA, FileInfo, Records, Variant
from updown.files.uploads import VARIANTS_SEGMENT
from updown.processing import images, sniff
from updown.storage.base import ObjectInfo, StorageBackend

log = logging.getLogger("updown.processing")

SNIFF_BYTES: Final = 4096
# SVGs are read whole to look for scripts: larger ones are refused.
MAX_SVG_BYTES: Final = 16 * 1024**2
THUMBNAIL: Final = "thumbnail"
# Raster types the image steps decode; others (PDF, video, documents) are checked by sniffing only.
DECODED: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/tiff", "image/bmp"})

Step = Callable[[FileInfo], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # ready | rejected | skipped
    reason: str | None = None


class Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Pipeline:
    """Processes landed uploads; apps register extra steps by key prefix."""

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
        allow_executables: bool,
    ) -> None:
        self.db = db
        self.storage = storage
        self.records = records
        self.clock = clock
        self.work_dir = work_dir
        self.limits = limits
        self.thumbnail_size = thumbnail_size
        self.allow_executables = allow_executables
        self._steps: list[tuple[str, Step]] = []

    def register(self, prefix: str, step: Step) -> None:
        """Runs ``step`` for every file that becomes ready under ``prefix`` (an ObjectCreated trigger)."""
        self._steps.append((prefix, step))

    async def process(self, upload_id: str) -> Outcome:
        row = await anyio.to_thread.run_sync(self._start, upload_id)
        if row is None:
            return Outcome("skipped")
        try:
            info = await self._verify_and_publish(row)
        except Rejected as refused:
            await anyio.to_thread.run_sync(self._reject, upload_id, refused.reason)
            await self.storage.delete(row.staging_key)
            log.info("upload %s rejected: %s", upload_id, refused.reason)
            return Outcome("rejected", refused.reason)
        await self.storage.delete(row.staging_key)
        for prefix, step in self._steps:
            if info.key.startswith(prefix):
                await step(info)
        return Outcome("ready")

    def _start(self, upload_id: str) -> Upload | None:
        with self.db.session() as s:
            row = s.get(Upload, upload_id)
            if row is None or row.status not in ("uploaded", "processing"):
                return None
            row.status, row.updated_at = "processing", self.clock.now()
            s.flush()
            s.expunge(row)
            return row

    def _reject(self, upload_id: str, reason: str) -> None:
        with self.db.session() as s:
            row = s.get(Upload, upload_id)
            if row is not None and row.status != "ready":
                row.status, row.reason, row.updated_at = "rejected", reason, self.clock.now()

    async def _verify_and_publish(self, row: Upload) -> FileInfo:
        try:
            staged = await self.storage.head(row.staging_key)
        except NoSuchKey:
            raise Rejected("the uploaded bytes are gone; upload the file again") from None
        if staged.size > row.size:
            raise Rejected(f"the file is {staged.size} bytes, more than the {row.size} declared")
        head = await self._read_head(row.staging_key, min(staged.size, SNIFF_BYTES))
        verdict = sniff.verdict(row.content_type, head, allow_executables=self.allow_executables)
        if not verdict.ok:
            raise Rejected(verdict.reason or "the file is not what was declared")
        if verdict.sniffed == "image/svg+xml":
            # A script may sit anywhere in the file: all of it is read (SVGs are small, and bounded).
            if staged.size > MAX_SVG_BYTES:
                raise Rejected(f"SVG images over {MAX_SVG_BYTES // 1024**2} MiB are not accepted")
            if staged.size > len(head) and sniff.svg_is_active(await self._read_head(row.staging_key, staged.size)):
                raise Rejected("the file is an SVG image with scripts or links, which is not accepted")
        metadata = {**staged.metadata, OWNER_METADATA: row.identity_id}
        # User metadata as the intent bound it: what the object carries is what was signed.
        width = height = None
        variants: list[Variant] = []
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.work_dir) as tmp:
            work = Path(tmp)
            if row.content_type in DECODED:
                source = work / "source"
                thumb = work / "thumb.webp"
                await self._download(row.staging_key, source)
                try:
                    decoded, made = await anyio.to_thread.run_sync(self._check_image, source, thumb)
                except images.ImageRejected as bad:
                    raise Rejected(bad.reason) from None
                width, height = decoded.width, decoded.height
                # Thumbnails carry no metadata: the one made from the original is the clean copy's.
                clean = work / "clean"
                if await anyio.to_thread.run_sync(images.strip_gps, source, clean):
                    source = clean
                variants.append(await self._store_variant(row.key, thumb, made))
                final = await self._put_file(row.key, source, row.content_type, metadata)
            else:
                final = await self.storage.copy(row.staging_key, row.key, metadata=metadata)
        now = self.clock.now()
        record = FileRecord(
            key=row.key,
            access_level=row.access_level,
            identity_id=row.identity_id,
            size=final.size,
            content_type=row.content_type,
            etag=final.etag,
            metadata_={k: v for k, v in staged.metadata.items() if k != OWNER_METADATA},
            cache_control=row.cache_control,
            width=width,
            height=height,
            upload_id=row.id,
            status="ready",
            created_at=now,
            updated_at=now,
        )
        stale = await anyio.to_thread.run_sync(lambda: self.records.publish(record, variants, upload_id=row.id))
        for key in stale:
            await self.storage.delete(key)
        found = await anyio.to_thread.run_sync(self.records.ready, row.key)
        assert found is not None
        return found

    def _check_image(self, path: Path, thumb: Path) -> tuple[images.ImageInfo, images.Thumb]:
        return images.verify_and_thumbnail(path, thumb, longest=self.thumbnail_size, limits=self.limits)

    async def _read_head(self, key: str, size: int) -> bytes:
        """The object's first ``size`` bytes."""
        if size == 0:
            return b""
        out = bytearray()
        async with await self.storage.get(key, byte_range=(0, size - 1)) as stream:
            async for chunk in stream:
                out += chunk
        return bytes(out)

    async def _download(self, key: str, dst: Path) -> None:
        with dst.open("wb") as out:
            async with await self.storage.get(key) as stream:
                async for chunk in stream:
                    out.write(chunk)

    async def _put_file(self, key: str, path: Path, content_type: str, metadata: dict[str, str]) -> ObjectInfo:
        size = await anyio.to_thread.run_sync(lambda: path.stat().st_size)

        async def chunks() -> AsyncIterator[bytes]:
            with path.open("rb") as f:
                while block := f.read(1 << 20):
                    yield block

        return await self.storage.put(
            key,
            chunks(),
            content_type=content_type,
            metadata=metadata,
            content_length=size,
            max_size=size,
        )

    async def _store_variant(self, file_key: str, thumb: Path, made: images.Thumb) -> Variant:
        data = await anyio.to_thread.run_sync(thumb.read_bytes)  # a thumbnail: a few KiB
        digest = hashlib.sha256(data).hexdigest()[:32]
        key = variant_key(file_key, THUMBNAIL, digest)

        async def body() -> AsyncIterator[bytes]:
            yield data

        info = await self.storage.put(
            key,
            body(),
            content_type="image/webp",
            metadata={},
            content_length=len(data),
            max_size=len(data),
        )
        return Variant(THUMBNAIL, key, "image/webp", info.size, info.etag, made.width, made.height)


def variant_key(file_key: str, name: str, digest: str) -> str:
    """``<level>/[<identity>/]_variants/<name>/<digest>.webp``: beside the file, under the same
    policies, content-addressed so its bytes never change under a key."""
    level, _, rest = file_key.partition("/")
    if level == "public":
        return f"public/{VARIANTS_SEGMENT}/{name}/{digest}.webp"
    identity, _, _ = rest.partition("/")
    return f"{level}/{identity}/{VARIANTS_SEGMENT}/{name}/{digest}.webp"
