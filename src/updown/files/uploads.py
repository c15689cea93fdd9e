"""Upload intents: what ``POST /storage/uploads`` grants, how the bytes land, and completion.

An intent binds an owner, a key under an access level, a declared content type and size, user
metadata and an expiry. Its bytes go to a staging key (``_uploads/<id>``), which only the intent's
presigned target can write (no policy grants ``_uploads/``); the file's own key is written by
processing once the bytes are verified, so nothing unverified is ever served, and an overwrite
keeps the old file until the new one is ready. Landing marks the intent ``uploaded`` and queues its
processing in one transaction. The intent is single use: once it has landed, its URL writes nothing.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import anyio.to_thread
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from updown.auth.principal import Principal
from updown.clock import Clock
from updown.core.keys import ACCESS_LEVELS, object_key
from updown.core.postpolicy import PresignedPost
from updown.db.engine import Database
from updown.db.models.files import FileRecord, FileVariant, Upload
from updown.db.models.identities import Identity
from updown.errors import (
    AccessDenied,
    EntityTooLarge,
    InvalidContentType,
    InvalidKey,
    InvalidRequest,
    NoSuchUpload,
    NotFound,
    QuotaExceeded,
    UploadNotReady,
)
from updown.files import access
from updown.files.access import AccessGate
from updown.files.presign import Presigner, PutTarget
from updown.settings import UploadSettings
from updown.storage.base import (
    MAX_PART_SIZE,
    MAX_PARTS,
    ObjectInfo,
    StorageBackend,
    check_content_type,
    check_metadata,
)

STAGING_PREFIX: Final = "_uploads/"
# Variants (thumbnails) live beside the files they derive from, under this reserved segment.
VARIANTS_SEGMENT: Final = "_variants"
MODES: Final = ("put", "post", "multipart")

OPEN: Final = ("pending", "uploaded", "processing")  # reserve quota
_CONTENT_TYPE_ALIASES: Final = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """What a client asks to upload (``POST /storage/uploads``)."""

    access_level: str
    content_type: str
    size: int
    name: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    mode: str = "put"
    part_size: int | None = None
    cache_control: str | None = None


@dataclass(frozen=True, slots=True)
class MultipartPlan:
    part_size: int
    parts: tuple[tuple[int, str], ...]


@dataclass(frozen=True, slots=True)
class Grant:
    """An intent and its presigned target: exactly one of ``put``, ``post``, ``multipart``."""

    upload_id: str
    key: str
    expires_at: float
    put: PutTarget | None = None
    post: PresignedPost | None = None
    multipart: MultipartPlan | None = None


@dataclass(frozen=True, slots=True)
class PartState:
    part_number: int
    etag: str
    size: int


@dataclass(frozen=True, slots=True)
class UploadState:
    upload_id: str
    key: str
    status: str
    reason: str | None
    etag: str | None = None
    parts: tuple[PartState, ...] | None = None


@dataclass(frozen=True, slots=True)
class StagedWrite:
    """What the data plane may write to a staging key: at most ``max_size`` bytes."""

    upload_id: str
    max_size: int
    multipart_id: str | None


def staging_key(upload_id: str) -> str:
    return f"{STAGING_PREFIX}{upload_id}"


def upload_id_of(key: str) -> str | None:
    """The intent id a staging key names, or None for any other key."""
    if not key.startswith(STAGING_PREFIX):
        return None
    rest = key[len(STAGING_PREFIX) :]
    return rest if len(rest) == 32 and all(c in "0123456789abcdef" for c in rest) else None


def canonical_type(content_type: str) -> str:
    """The media type alone, lower-case, with common aliases folded (``image/jpg`` → ``image/jpeg``)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return _CONTENT_TYPE_ALIASES.get(media, media)


class Uploads:
    """Upload intents for one bucket."""

    def __init__(
        self,
        db: Database,
        storage: StorageBackend,
        gate: AccessGate,
        presigner: Presigner,
        clock: Clock,
        settings: UploadSettings,
        *,
        queue_processing: Callable[[Session, str, str], object],
    ) -> None:
        """``queue_processing(session, upload_id, etag)`` queues the processing of landed bytes in
        the caller's transaction (processing sits above files, so it is handed in)."""
        self.db = db
        self.storage = storage
        self.gate = gate
        self.presigner = presigner
        self.queue_processing = queue_processing
        self.clock = clock
        self.settings = settings

    # -- initiate --------------------------------------------------------------------------

    async def initiate(self, principal: Principal, req: UploadRequest) -> Grant:
        """Checks the caller's right and the declared facts, records an intent, presigns its target.

        Raises:
            InvalidRequest / InvalidKey: bad mode, level, name, size, metadata or part size.
            InvalidContentType: the type is not accepted at this access level.
            EntityTooLarge: the size is over the level's limit, or over one PUT/POST's.
            AccessDenied: the policies do not let the caller write the key.
            QuotaExceeded: the caller's quota cannot hold the upload.
        """
        if principal.identity_id is None:
            raise AccessDenied("access denied")
        if req.mode not in MODES:
            raise InvalidRequest("mode must be one of put, post, multipart")
        if req.access_level not in ACCESS_LEVELS:
            raise InvalidRequest("accessLevel must be one of public, protected, private")
        content_type = canonical_type(check_content_type(req.content_type))
        allowed = self.settings.level_types.get(req.access_level, self.settings.allowed_types)
        if content_type not in allowed:
            raise InvalidContentType(f"{content_type} is not accepted for {req.access_level} files")
        if req.size < 0:
            raise InvalidRequest("size must be a non-negative number of bytes")
        limit = self.settings.max_size[req.access_level]
        if req.size > limit:
            raise EntityTooLarge(f"the file is {req.size} bytes; the limit for {req.access_level} files is {limit}")
        if req.mode != "multipart" and req.size > self.settings.max_single_size:
            raise EntityTooLarge(
                f"the file is {req.size} bytes; one {req.mode.upper()} takes at most "
                f"{self.settings.max_single_size}: use mode multipart"
            )
        metadata = check_metadata({k.lower(): v for k, v in req.metadata.items()})
        if any(name.startswith("updown-") for name in metadata):
            raise InvalidRequest("metadata names starting with updown- are reserved")
        cache_control = _check_cache_control(req.cache_control)
        upload_id = secrets.token_hex(16)
        name = req.name or upload_id
        if name.split("/", 1)[0] == VARIANTS_SEGMENT:
            raise InvalidKey(f"names starting with {VARIANTS_SEGMENT}/ are reserved for variants")
        key = object_key(req.access_level, principal.identity_id, name)
        self.gate.check(principal, access.PUT, key, content_length=req.size, content_type=content_type)
        if req.access_level == "public":
            # As on the data plane: an existing public file's owner decides who may replace it.
            owner = await anyio.to_thread.run_sync(self._owner_of, key)
            if owner is not None:
                self.gate.check(
                    principal, access.PUT, key, object_owner=owner, content_length=req.size, content_type=content_type
                )
        part_size = self._part_size(req) if req.mode == "multipart" else None
        now = self.clock.now()
        lifetime = self.settings.multipart_expires if req.mode == "multipart" else self.settings.expires
        staged = staging_key(upload_id)
        multipart_id = None
        if req.mode == "multipart":
            multipart_id = await self.storage.create_multipart(
                staged, content_type=content_type, metadata=metadata, cache_control=cache_control
            )
        row = Upload(
            id=upload_id,
            key=key,
            staging_key=staged,
            access_level=req.access_level,
            identity_id=principal.identity_id,
            user_sub=principal.sub,
            mode=req.mode,
            content_type=content_type,
            size=req.size,
            metadata_=metadata,
            cache_control=cache_control,
            multipart_id=multipart_id,
            status="pending",
            created_at=now,
            expires_at=now + lifetime,
            updated_at=now,
        )
        await anyio.to_thread.run_sync(self._record_intent, row)
        return self._grant(row, part_size)

    def _owner_of(self, key: str) -> str | None:
        """The owner of the file at ``key``, or of the file ``key`` is a variant of."""
        with self.db.session() as s:
            found = s.execute(select(FileRecord.identity_id).where(FileRecord.key == key)).first()
            if found is None:
                found = s.execute(
                    select(FileRecord.identity_id)
                    .join(FileVariant, FileVariant.file_key == FileRecord.key)
                    .where(FileVariant.key == key)
                ).first()
            return None if found is None else found[0]

    def _part_size(self, req: UploadRequest) -> int:
        size = req.part_size or self.settings.default_part_size
        if not self.settings.min_part_size <= size <= MAX_PART_SIZE:
            raise InvalidRequest(f"partSize must be between {self.settings.min_part_size} and {MAX_PART_SIZE} bytes")
        # Grow the part size when the file would need more than 10,000 parts, as S3 tools do.
        size = max(size, math.ceil(req.size / MAX_PARTS))
        if size > MAX_PART_SIZE:
            raise EntityTooLarge("the file needs more than 10,000 parts of 5 GiB")
        return size

    def _record_intent(self, row: Upload) -> None:
        quota = self.settings.quota_bytes
        with self.db.session() as s:
            if quota:
                # A no-op write to the identity's row first: it holds that row's lock (PostgreSQL)
                # or the write lock (SQLite) to the commit, so concurrent initiates of one identity
                # count each other's reservations instead of both fitting into the same bytes.
                s.execute(update(Identity).where(Identity.id == row.identity_id).values(created_at=Identity.created_at))
                used = self._used(s, row.identity_id, self.clock.now())
                if used + row.size > quota:
                    raise QuotaExceeded(
                        f"the upload needs {row.size} bytes; {max(0, quota - used)} of {quota} are left"
                    )
            s.add(row)

    @staticmethod
    def _used(s: Session, identity_id: str, now: float) -> int:
        """Bytes the identity holds: ready files, and the intents still open (their reservations);
        a pending intent past its expiry reserves nothing, whether or not cleanup has seen it."""
        files = s.scalar(
            select(func.coalesce(func.sum(FileRecord.size), 0)).where(FileRecord.identity_id == identity_id)
        )
        reserved = s.scalar(
            select(func.coalesce(func.sum(Upload.size), 0)).where(
                Upload.identity_id == identity_id,
                Upload.status.in_(OPEN),
                or_(Upload.status != "pending", Upload.expires_at > now),
            )
        )
        return int(files or 0) + int(reserved or 0)

    def _grant(self, row: Upload, part_size: int | None) -> Grant:
        expires = max(1, int(row.expires_at - self.clock.now()))
        base = Grant(upload_id=row.id, key=row.key, expires_at=row.expires_at)
        if row.mode == "put":
            target = self.presigner.put(
                row.staging_key,
                content_type=row.content_type,
                content_length=row.size,
                metadata=row.metadata_,
                cache_control=row.cache_control,
                expires=expires,
            )
            return Grant(base.upload_id, base.key, base.expires_at, put=target)
        if row.mode == "post":
            form = self.presigner.post(
                row.staging_key,
                content_type=row.content_type,
                max_length=row.size,
                metadata=row.metadata_,
                cache_control=row.cache_control,
                expires=expires,
            )
            return Grant(base.upload_id, base.key, base.expires_at, post=form)
        assert part_size is not None
        assert row.multipart_id is not None
        count = max(1, math.ceil(row.size / part_size))
        parts = tuple(
            (n, self.presigner.part(row.staging_key, row.multipart_id, n, expires=expires)) for n in range(1, count + 1)
        )
        return Grant(base.upload_id, base.key, base.expires_at, multipart=MultipartPlan(part_size, parts))

    # -- the data plane's side: admitting and landing staged bytes -------------------------

    def admit(self, key: str, *, multipart_id: str | None = None) -> StagedWrite | None:
        """What may be written to ``key`` now; None when ``key`` is no staging key.

        Raises:
            AccessDenied: no live, pending intent stages there (or the wrong multipart upload).
        """
        upload_id = upload_id_of(key)
        if upload_id is None:
            return None
        with self.db.session() as s:
            row = s.get(Upload, upload_id)
            if row is None or row.status != "pending" or row.expires_at <= self.clock.now():
                raise AccessDenied("this upload is not open: it has expired, or its bytes have landed already")
            if (multipart_id is None) != (row.mode != "multipart") or (
                multipart_id is not None and multipart_id != row.multipart_id
            ):
                raise AccessDenied("this upload takes its bytes another way")
            return StagedWrite(upload_id, max_size=row.size, multipart_id=row.multipart_id)

    def landed(self, upload_id: str, info: ObjectInfo) -> bool:
        """Marks the intent ``uploaded`` and queues its processing, in one transaction.

        Idempotent: False (and nothing changes) when the intent has moved on already.
        """
        now = self.clock.now()
        with self.db.session() as s:
            moved = s.execute(
                update(Upload)
                .where(Upload.id == upload_id, Upload.status == "pending")
                .values(status="uploaded", etag=info.etag, received=info.size, updated_at=now)
            ).rowcount  # type: ignore[attr-defined]
            if not moved:
                return False
            self.queue_processing(s, upload_id, info.etag)
            return True

    # -- complete and state ----------------------------------------------------------------

    async def complete(
        self, principal: Principal, upload_id: str, parts: Sequence[tuple[int, str]] | None
    ) -> UploadState:
        """Lands the intent's bytes if that has not happened (S3 backend PUT/POST, multipart), then
        answers its state. Idempotent.

        Raises:
            NoSuchUpload: no intent of the caller has that id.
            UploadNotReady: the bytes are not there (not sent yet), or the intent expired.
        """
        row = await anyio.to_thread.run_sync(self._owned, principal, upload_id)
        if row.status == "expired":
            raise UploadNotReady("the upload has expired; start a new one")
        if row.status == "pending":
            if row.expires_at <= self.clock.now():
                raise UploadNotReady("the upload has expired; start a new one")
            if row.mode == "multipart":
                if not parts:
                    raise InvalidRequest("parts are required to complete a multipart upload")
                assert row.multipart_id is not None
                try:
                    info = await self.storage.complete_multipart(row.staging_key, row.multipart_id, parts)
                except NoSuchUpload:
                    # Completed by an earlier call that stopped before recording it: the joined
                    # object is there (a retry is idempotent), or the upload is really gone.
                    try:
                        info = await self.storage.head(row.staging_key)
                    except NotFound:
                        raise UploadNotReady("the parts of this upload are gone; start a new one") from None
            else:
                try:
                    info = await self.storage.head(row.staging_key)
                except NotFound:
                    raise UploadNotReady("the bytes of this upload have not arrived") from None
            if info.size > row.size:
                await self.storage.delete(row.staging_key)
                raise EntityTooLarge(f"the upload is {info.size} bytes; {row.size} were declared")
            await anyio.to_thread.run_sync(self.landed, row.id, info)
        return await self.state(principal, upload_id)

    async def state(self, principal: Principal, upload_id: str) -> UploadState:
        """The intent's status; for an open multipart upload, the parts received (to resume).

        Raises:
            NoSuchUpload: no intent of the caller has that id.
        """
        row = await anyio.to_thread.run_sync(self._owned, principal, upload_id)
        parts = None
        if row.mode == "multipart" and row.status == "pending" and row.multipart_id is not None:
            received = await self.storage.list_parts(row.staging_key, row.multipart_id)
            parts = tuple(PartState(p.part_number, p.etag, p.size) for p in received)
        return UploadState(row.id, row.key, row.status, row.reason, row.etag, parts)

    def _owned(self, principal: Principal, upload_id: str) -> Upload:
        with self.db.session() as s:
            row = s.get(Upload, upload_id) if len(upload_id) == 32 else None
            if row is None or principal.identity_id is None or row.identity_id != principal.identity_id:
                raise NoSuchUpload("no such upload")
            s.expunge(row)
        # The policies decide still: a caller who may no longer write the key cannot go on.
        self.gate.check(principal, access.PUT, row.key)
        return row


def _check_cache_control(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > 255 or not all(0x20 <= ord(c) <= 0x7E for c in value):
        raise InvalidRequest("cacheControl must be printable ASCII of at most 255 characters")
    return value
