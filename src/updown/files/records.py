"""File records: the ready files, read and managed through the gate (list, get, URL, delete, copy).

A row exists only for bytes that are there: processing writes the object first, then the row
(:meth:`Records.publish`); delete removes the row first, then the bytes (a blob without a row is
garbage that cleanup collects; a row without a blob would be a bug).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import anyio.to_thread
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from updown.auth.principal import Principal
from updown.clock import Clock
from updown.core.keys import ACCESS_LEVELS, parse_object_key, validate_identity_id, validate_key, validate_name
from updown.db.engine import Database
from updown.db.models.files import FileRecord, FileVariant, Upload
from updown.db.upsert import upsert
from updown.errors import AccessDenied, InvalidRequest, NoSuchKey
from updown.files import access
from updown.files.access import AccessGate
from updown.files.presign import Presigner
from updown.storage.base import StorageBackend

MAX_LIST_LIMIT = 1000
OWNER_METADATA = "updown-owner"


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    key: str
    content_type: str
    size: int
    etag: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A ready file as the API shows it."""

    key: str
    access_level: str
    identity_id: str | None
    size: int
    content_type: str
    etag: str
    last_modified: float
    metadata: Mapping[str, str]
    status: str
    cache_control: str | None = None
    width: int | None = None
    height: int | None = None
    variants: tuple[Variant, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class FilePage:
    items: tuple[FileInfo, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class SignedUrl:
    url: str
    expires_at: float


class Records:
    """The ``files`` table and the operations on ready files, each through the gate."""

    def __init__(
        self,
        db: Database,
        storage: StorageBackend,
        gate: AccessGate,
        presigner: Presigner,
        clock: Clock,
        *,
        default_expires: int,
        max_expires: int,
    ) -> None:
        self.db = db
        self.storage = storage
        self.gate = gate
        self.presigner = presigner
        self.clock = clock
        self.default_expires = default_expires
        self.max_expires = max_expires

    # -- reading ---------------------------------------------------------------------------

    def page(
        self,
        principal: Principal,
        *,
        access_level: str,
        identity_id: str | None = None,
        prefix: str = "",
        limit: int = 100,
        cursor: str | None = None,
    ) -> FilePage:
        """Ready files under one access level (and identity), by key, ``limit`` at a time.

        Raises:
            InvalidRequest: bad level, identity id, limit or cursor. AccessDenied: the policies do
                not let the caller list there.
        """
        if access_level not in ACCESS_LEVELS:
            raise InvalidRequest("accessLevel must be one of public, protected, private")
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        if access_level == "public":
            base = "public/"
        else:
            owner = identity_id or principal.identity_id
            if owner is None:
                raise InvalidRequest(f"identityId is required for accessLevel {access_level}")
            base = f"{access_level}/{validate_identity_id(owner)}/"
        if prefix:
            validate_name(prefix.rstrip("/") or "x")
        full = base + prefix
        self.gate.check(principal, access.LIST, None, prefix=full, max_keys=limit)
        after = _decode_cursor(cursor) if cursor else None
        with self.db.session() as s:
            query = select(FileRecord).where(FileRecord.key.startswith(full, autoescape=True))
            if after is not None:
                query = query.where(FileRecord.key > after)
            rows = list(s.scalars(query.order_by(FileRecord.key).limit(limit + 1)))
            infos = [self._info(s, row) for row in rows[:limit]]
        more = len(rows) > limit
        return FilePage(tuple(infos), _encode_cursor(infos[-1].key) if more and infos else None)

    def get(self, principal: Principal, key: str) -> FileInfo:
        """Raises: AccessDenied (before the row is looked up), NoSuchKey."""
        key = validate_key(key)
        self.gate.check(principal, access.GET, key)
        found = self.ready(key)
        if found is None:
            raise NoSuchKey("no such file")
        return found

    def ready(self, key: str) -> FileInfo | None:
        """The ready file at ``key`` (no access check: for callers that asked the gate already)."""
        with self.db.session() as s:
            row = s.get(FileRecord, key)
            return None if row is None else self._info(s, row)

    def variant(self, key: str) -> Variant | None:
        with self.db.session() as s:
            row = s.get(FileVariant, key)
            return None if row is None else _variant(row)

    def url(self, principal: Principal, key: str, *, expires_in: int | None, download: bool) -> SignedUrl:
        """A presigned GET of a ready file or variant, served as its verified type and inertly
        (`Presigner.get`); ``download`` makes it an attachment named like the file whatever its type.

        Raises:
            InvalidRequest: ``expires_in`` out of range. AccessDenied. NoSuchKey.
        """
        expires = self.default_expires if expires_in is None else expires_in
        if not 1 <= expires <= self.max_expires:
            raise InvalidRequest(f"expiresIn must be between 1 and {self.max_expires} seconds")
        key = validate_key(key)
        self.gate.check(principal, access.GET, key)
        # A ready file, or a variant of one (a private file's thumbnail is read this way).
        found: FileInfo | Variant | None = self.ready(key) or self.variant(key)
        if found is None:
            raise NoSuchKey("no such file")
        # The verified type, signed into the URL: the store answers with it and, for anything but
        # a raster image, as an attachment (an S3 store adds no nosniff or sandbox of its own).
        url = self.presigner.get(key, expires=expires, content_type=found.content_type, download=download)
        return SignedUrl(url, self.clock.now() + expires)

    # -- changing --------------------------------------------------------------------------

    async def delete(self, principal: Principal, key: str) -> None:
        """The row first, then the bytes and the variants.

        Raises: AccessDenied, NoSuchKey.
        """
        key = validate_key(key)
        self.gate.check(principal, access.DELETE, key)
        info = await anyio.to_thread.run_sync(self.ready, key)
        if info is None:
            raise NoSuchKey("no such file")
        if key.startswith("public/") and principal.kind != "service":
            self.gate.check(principal, access.DELETE, key, object_owner=info.identity_id)
        await anyio.to_thread.run_sync(self.forget, key)
        for target in (key, *(v.key for v in info.variants)):
            await self.storage.delete(target)

    def forget(self, key: str) -> None:
        """Deletes the row of ``key`` and its variants' rows (the caller deletes the bytes after)."""
        with self.db.session() as s:
            s.execute(delete(FileVariant).where(FileVariant.file_key == key))
            s.execute(delete(FileRecord).where(FileRecord.key == key))

    async def copy(self, principal: Principal, source: str, destination: str) -> FileInfo:
        """Copies a ready file (and its variants are made again by nobody: a copy has none).

        Needs read on the source and write on the destination.

        Raises: AccessDenied, NoSuchKey, InvalidKey.
        """
        source, destination = validate_key(source), validate_key(destination)
        parts = parse_object_key(destination)
        if parts is None:
            raise InvalidRequest("destination must be a key under public/, protected/<id>/ or private/<id>/")
        self.gate.check(principal, access.GET, source)
        info = await anyio.to_thread.run_sync(self.ready, source)
        if info is None:
            raise NoSuchKey("no such file")
        self.gate.check(principal, access.PUT, destination, content_length=info.size, content_type=info.content_type)
        existing = await anyio.to_thread.run_sync(self.ready, destination)
        if existing is not None and destination.startswith("public/"):
            self.gate.check(principal, access.PUT, destination, object_owner=existing.identity_id)
        owner = principal.identity_id
        if owner is None:
            raise AccessDenied("access denied")
        metadata = {**info.metadata, OWNER_METADATA: owner}
        copied = await self.storage.copy(source, destination, metadata=metadata)
        now = self.clock.now()
        record = FileRecord(
            key=destination,
            access_level=parts.access_level,
            identity_id=owner,
            size=copied.size,
            content_type=info.content_type,
            etag=copied.etag,
            metadata_=dict(info.metadata),
            cache_control=info.cache_control,
            width=info.width,
            height=info.height,
            upload_id=None,
            status="ready",
            created_at=now,
            updated_at=now,
        )
        old = await anyio.to_thread.run_sync(self._replace, record, ())
        for key in old:
            await self.storage.delete(key)
        found = await anyio.to_thread.run_sync(self.ready, destination)
        assert found is not None
        return found

    def publish(
        self,
        record: FileRecord,
        variants: Sequence[Variant],
        *,
        upload_id: str | None,
        then: Callable[[Session], object] | None = None,
    ) -> list[str]:
        """Writes a ready file's row and variants (its bytes are there already) and, with
        ``upload_id``, marks the intent ready, in one transaction; ``then(session)`` runs last in
        that transaction (what the new file causes: a queued job, an app's row). Returns the keys
        of the variants the row had before that it no longer has (the caller deletes their bytes)."""
        return self._replace(record, variants, upload_id=upload_id, then=then)

    def _replace(
        self,
        record: FileRecord,
        variants: Sequence[Variant],
        *,
        upload_id: str | None = None,
        then: Callable[[Session], object] | None = None,
    ) -> list[str]:
        now = self.clock.now()
        with self.db.session() as s:
            # The upsert locks the file's row first, so writers of one key take turns: each then
            # sees the variants the one before it left, and none fails on the key.
            upsert(s, record, keep=("created_at",))
            old_variants = list(s.scalars(select(FileVariant.key).where(FileVariant.file_key == record.key)))
            s.execute(delete(FileVariant).where(FileVariant.file_key == record.key))
            for v in variants:
                upsert(
                    s,
                    FileVariant(
                        key=v.key,
                        file_key=record.key,
                        name=v.name,
                        content_type=v.content_type,
                        size=v.size,
                        etag=v.etag,
                        width=v.width,
                        height=v.height,
                    ),
                )
            if upload_id is not None:
                upload = s.get(Upload, upload_id)
                if upload is not None:
                    upload.status, upload.reason, upload.updated_at = "ready", None, now
            if then is not None:
                then(s)
        kept = {v.key for v in variants}
        return [k for k in old_variants if k not in kept]

    # -- rows to infos ---------------------------------------------------------------------

    @staticmethod
    def _info(s: Session, row: FileRecord) -> FileInfo:
        variants = tuple(
            _variant(v)
            for v in s.scalars(select(FileVariant).where(FileVariant.file_key == row.key).order_by(FileVariant.name))
        )
        return FileInfo(
            key=row.key,
            access_level=row.access_level,
            identity_id=row.identity_id,
            size=row.size,
            content_type=row.content_type,
            etag=row.etag,
            last_modified=row.updated_at,
            metadata=dict(row.metadata_),
            status=row.status,
            cache_control=row.cache_control,
            width=row.width,
            height=row.height,
            variants=variants,
        )


def _variant(row: FileVariant) -> Variant:
    return Variant(row.name, row.key, row.content_type, row.size, row.etag, row.width, row.height)


def _encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("cursor is not one this API gave") from None
