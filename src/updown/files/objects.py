"""THE door to bytes: every read and write of the data plane (and the CDN) goes through here.

It asks the gate, applies the owner rule of ``public/`` (an existing object's owner decides who
may replace or delete it), keeps the reserved metadata (``updown-owner``) out of clients' hands,
admits writes to staging keys only for the intent that granted them, and keeps the file rows in
step with the bytes: a landed upload is recorded in the same transaction that queues its
processing, and an object written straight through the S3 API gets its row once its bytes are there.

Two hooks serve direct writes (presigned PUTs straight to a key, as the events app hands out):
- a *binder* per prefix (:meth:`Objects.bind`): a write under the prefix is admitted only for a
  grant the control plane recorded when it presigned the URL, and the object gets the content type
  check, size limit and metadata of that grant. S3 takes such metadata from the URL's signed query
  (``x-amz-meta-*`` hoisted there, so the client sends only ``Content-Type``); the local data plane
  reads metadata from headers only, so the grant supplies it here and the object carries it either way.
- ``object_created(session, info)``: called in the transaction that records a direct write, so an
  ObjectCreated trigger (``processing/triggers.py``) queues its job with the row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Final

import anyio.to_thread
from sqlalchemy.orm import Session

from updown.auth.principal import SERVICE, Principal
from updown.clock import Clock
from updown.core.keys import parse_object_key
from updown.db.models.files import FileRecord
from updown.errors import (
    AccessDenied,
    InvalidRequest,
    NoSuchKey,
    PreconditionFailed,
)
from updown.files import access
from updown.files.access import AccessGate
from updown.files.multipart import MultipartObjects
from updown.files.records import OWNER_METADATA, Records
from updown.files.uploads import STAGING_PREFIX, StagedWrite, Uploads, canonical_type
from updown.files.writes import is_variant_key, not_staging, user_metadata
from updown.storage.base import (
    MAX_PART_SIZE,
    ByteRange,
    ListPage,
    ObjectInfo,
    ObjectStream,
    StorageBackend,
)

HIDDEN: Final = frozenset({OWNER_METADATA})

Body = AsyncIterator[bytes]


@dataclass(frozen=True, slots=True)
class BoundWrite:
    """What the control plane bound when it presigned a direct write: the object's (canonical)
    content type, its user metadata and the largest body accepted."""

    content_type: str
    metadata: Mapping[str, str]
    max_size: int


# key -> the grant that lets it be written now, or None (then the write is denied).
Binder = Callable[[str], BoundWrite | None]
# (session, stored object) -> anything; runs in the transaction that records a direct write.
ObjectCreated = Callable[[Session, ObjectInfo], object]


class Objects:
    """Reads and writes of one bucket's objects on behalf of a principal."""

    def __init__(
        self,
        storage: StorageBackend,
        gate: AccessGate,
        uploads: Uploads,
        records: Records,
        clock: Clock,
        *,
        max_object_size: int,
        object_created: ObjectCreated | None = None,
    ) -> None:
        self.storage = storage
        self.gate = gate
        self.uploads = uploads
        self.records = records
        self.clock = clock
        self.max_object_size = max_object_size
        self.object_created = object_created
        self._binders: list[tuple[str, Binder]] = []
        self.multipart = MultipartObjects(self)

    def bind(self, prefix: str, binder: Binder) -> None:
        """Direct writes under ``prefix`` need a grant from ``binder`` (see the module docstring)."""
        self._binders.append((prefix, binder))

    # -- reading ---------------------------------------------------------------------------

    def check_read(self, principal: Principal, key: str, **facts: object) -> None:
        """Raises AccessDenied unless the policies let ``principal`` read ``key`` (before any lookup)."""
        self.gate.check(principal, access.GET, key, **facts)

    async def head(self, principal: Principal, key: str, **facts: object) -> ObjectInfo:
        self.check_read(principal, key, **facts)
        return await self.storage.head(key)

    async def open(
        self, principal: Principal, key: str, *, byte_range: ByteRange | None = None, **facts: object
    ) -> ObjectStream:
        self.check_read(principal, key, **facts)
        return await self.storage.get(key, byte_range=byte_range)

    async def list(
        self, principal: Principal, prefix: str, *, limit: int, continuation_token: str | None, **facts: object
    ) -> ListPage:
        self.gate.check(principal, access.LIST, None, prefix=prefix, max_keys=limit, **facts)
        if limit == 0:
            return ListPage((), None)
        return await self.storage.list(prefix, limit=limit, continuation_token=continuation_token)

    # -- writing ---------------------------------------------------------------------------

    async def put(
        self,
        principal: Principal,
        key: str,
        body: Body,
        *,
        content_type: str | None,
        metadata: Mapping[str, str],
        content_length: int | None,
        max_size: int | None = None,
        facts: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Stores a whole object (PUT, or a browser POST); ``headers`` (Cache-Control, …) are
        stored with a direct write (`storage.base.check_headers`).

        Raises:
            InvalidArgument: reserved metadata. AccessDenied: the policies, the owner rule, or a
                staging key without its open intent. EntityTooLarge: over the limit.
        """
        given = user_metadata(metadata)
        limit = self.max_object_size if max_size is None else min(max_size, self.max_object_size)
        if key.startswith(STAGING_PREFIX):
            staged = await self._admit(principal, key, None)
            info = await self.storage.put(
                key,
                body,
                content_type=content_type,
                metadata=given,
                content_length=content_length,
                max_size=min(limit, staged.max_size),
            )
            await anyio.to_thread.run_sync(self.uploads.landed, staged.upload_id, info)
            return info
        await self.authorize_write(
            principal, access.PUT, key, content_length=content_length, content_type=content_type, **(facts or {})
        )
        stored = dict(given)
        bound = await self._bound(key)
        if bound is not None:
            if canonical_type(content_type or "") != bound.content_type:
                raise AccessDenied("access denied")
            # What the signer bound wins over anything the request carries.
            stored.update(bound.metadata)
            limit = min(limit, bound.max_size)
        if principal is not SERVICE and principal.identity_id is not None:
            stored[OWNER_METADATA] = principal.identity_id
        info = await self.storage.put(
            key,
            body,
            content_type=content_type,
            metadata=stored,
            content_length=content_length,
            max_size=limit,
            headers=headers,
        )
        await anyio.to_thread.run_sync(self.record_direct, info, principal)
        return info

    async def put_part(
        self,
        principal: Principal,
        key: str,
        upload_id: str,
        part_number: int,
        body: Body,
        *,
        content_length: int | None,
    ) -> str:
        """Stores one part of a multipart upload of an intent; returns the part's ETag.

        Raises:
            AccessDenied: no open multipart intent with that upload id stages at ``key``.
        """
        if not key.startswith(STAGING_PREFIX):
            raise InvalidRequest("multipart uploads go through POST /storage/uploads with mode multipart")
        staged = await self._admit(principal, key, upload_id)
        part = await self.storage.put_part(
            key,
            upload_id,
            part_number,
            body,
            content_length=content_length,
            max_size=min(MAX_PART_SIZE, staged.max_size),
        )
        return part.etag

    # -- the S3 API's listings and multipart uploads (web/s3/bucket.py, web/s3/multipart.py) ----
    # Multipart uploads to any key the caller may write, through the same storage multipart as the
    # intents' part URLs; staging keys stay the intents' own (only `put_part` reaches them).

    async def list_keys(
        self,
        principal: Principal,
        prefix: str,
        *,
        limit: int,
        delimiter: str | None = None,
        start_after: str | None = None,
        continuation_token: str | None = None,
        max_keys: int | None = None,
        facts: Mapping[str, object] | None = None,
    ) -> ListPage:
        """ListObjects v1 and v2: ``s3:ListBucket`` with the request's ``s3:prefix``, ``s3:delimiter``
        and ``s3:max-keys`` (``max_keys``: as requested, None when not); a ``limit`` of 0 is an
        empty page, as S3 answers ``max-keys=0``.

        Raises:
            AccessDenied: the policies. InvalidArgument: a bad limit or continuation token.
        """
        self.gate.check(
            principal, access.LIST, None, prefix=prefix, delimiter=delimiter, max_keys=max_keys, **(facts or {})
        )
        if limit == 0:
            return ListPage((), None)
        return await self.storage.list(
            prefix, limit=limit, continuation_token=continuation_token, delimiter=delimiter, start_after=start_after
        )

    def not_bound(self, key: str) -> None:
        """A bound prefix takes one presigned PUT per grant, never a multipart upload."""
        if any(key.startswith(prefix) for prefix, _ in self._binders):
            raise AccessDenied("access denied")

    async def delete(self, principal: Principal, key: str, **facts: object) -> None:
        """Deletes an object and its row (the row first: never a row without its bytes)."""
        if key.startswith(STAGING_PREFIX):
            raise AccessDenied("access denied")
        await self.authorize_write(principal, access.DELETE, key, **facts)
        info = await anyio.to_thread.run_sync(self.records.ready, key)
        if info is not None:
            await anyio.to_thread.run_sync(self.records.forget, key)
            for variant in info.variants:
                await self.storage.delete(variant.key)
        await self.storage.delete(key)

    async def authorize_write(self, principal: Principal, action: str, key: str, **facts: object) -> None:
        """The gate for a write; for ``public/`` keys, then with the existing object's owner."""
        self.gate.check(principal, action, key, **facts)
        if principal is SERVICE or not key.startswith("public/"):
            return
        # Allowed for a new object: now (and only now) the existing object's owner decides.
        try:
            owner = (await self.storage.head(key)).metadata.get(OWNER_METADATA)
        except NoSuchKey:
            return
        if owner is not None:
            self.gate.check(principal, action, key, object_owner=owner, **facts)

    # -- the S3 API's conditional writes, copies and bucket checks (web/s3/objects.py, batch.py, service.py) --
    # Conditions are evaluated only after the gate allowed the write (a 412 must not tell a caller
    # who may not write whether an object exists), against the object the backend holds then.

    async def put_object(
        self,
        principal: Principal,
        key: str,
        body: Body,
        *,
        content_type: str | None,
        metadata: Mapping[str, str],
        content_length: int | None,
        condition: WriteCondition | None = None,
        headers: Mapping[str, str] | None = None,
        facts: Mapping[str, object] | None = None,
    ) -> ObjectInfo:
        """PutObject through the S3 API: `put` (``headers`` stored with the object), refusing a
        reserved variant key to anyone but the service, with S3's conditional writes
        (``If-None-Match: *``, ``If-Match``).

        The condition is checked when the store starts reading the body (after every access
        check) and again once the body is complete, just before the store commits: a write that
        commits between that second check and the commit can still be replaced (the window is
        the local backend's fsync and rename, or the S3 backend's last request).

        Raises:
            as `put`; PreconditionFailed: the condition does not hold; NoSuchKey: ``If-Match`` and
                no object.
        """
        self._not_variant(principal, key)
        if condition is not None and condition.needed:
            body = self._conditional(key, body, condition)
        return await self.put(
            principal,
            key,
            body,
            content_type=content_type,
            metadata=metadata,
            content_length=content_length,
            facts=facts,
            headers=headers,
        )

    async def delete_object(
        self, principal: Principal, key: str, *, if_match: str | None = None, facts: Mapping[str, object] | None = None
    ) -> None:
        """DeleteObject through the S3 API: `delete`, with ``If-Match`` checked after the gate and
        just before the delete (a replace in between is the window).

        Raises:
            AccessDenied: the policies. PreconditionFailed: the ETag differs. NoSuchKey: If-Match
                and no object.
        """
        facts = facts or {}
        if if_match is not None:
            not_staging(key)
            await self.authorize_write(principal, access.DELETE, key, **facts)
            await self._check_condition(key, WriteCondition(if_match=if_match))
        await self.delete(principal, key, **facts)

    async def copy_object(
        self,
        principal: Principal,
        source: str,
        destination: str,
        *,
        replace: tuple[str | None, Mapping[str, str], Mapping[str, str]] | None = None,
        check_source: Callable[[ObjectInfo], None] | None = None,
        facts: Mapping[str, object] | None = None,
    ) -> ObjectInfo:
        """CopyObject: ``s3:GetObject`` on the source, then ``s3:PutObject`` on the destination
        (and the owner rule of ``public/``), the copy made by the store and recorded as a direct
        PUT is. ``replace`` is ``(content type, user metadata, stored headers)`` for the REPLACE
        directive; None copies the source's (never its owner: the copy is the caller's). ``check_source`` sees
        the source's info first (``x-amz-copy-source-if-*``); the store copies the version it
        holds then (a replace in between is the window).

        Raises:
            AccessDenied: the policies; a staging key, a bound prefix or (but for the service) a
                variant key as destination. NoSuchKey: no source. InvalidRequest: a copy onto
                itself that changes nothing, or a source over 5 GiB. InvalidArgument: reserved
                metadata.
        """
        facts = facts or {}
        not_staging(destination)
        self._not_variant(principal, destination)
        self.check_read(principal, source, **facts)
        found = await self.storage.head(source)
        if check_source is not None:
            check_source(found)
        if source == destination and replace is None:
            raise InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself without changing "
                "the object's metadata, storage class, website redirect location or encryption attributes."
            )
        if found.size > MAX_COPY_SIZE:
            raise InvalidRequest(
                f"The specified copy source is larger than the maximum allowable size for a copy source: {MAX_COPY_SIZE}"
            )
        headers: Mapping[str, str] | None = None  # None: the store keeps the source's
        if replace is None:
            content_type: str | None = found.content_type
            stored = {k: v for k, v in found.metadata.items() if k != OWNER_METADATA}
        else:
            content_type, stored, headers = replace[0], user_metadata(replace[1]), replace[2]
        await self.authorize_write(
            principal, access.PUT, destination, content_length=found.size, content_type=content_type, **facts
        )
        self.not_bound(destination)
        if principal is not SERVICE and principal.identity_id is not None:
            stored[OWNER_METADATA] = principal.identity_id
        info = await self.storage.copy(source, destination, metadata=stored, content_type=content_type, headers=headers)
        await anyio.to_thread.run_sync(self.record_direct, info, principal)
        return info

    def check_bucket(self, principal: Principal, *actions: str, **facts: object) -> None:
        """Bucket-level verbs (HeadBucket, ListBuckets, GetBucketLocation): allowed when the
        policies allow any of ``actions`` on the bucket (without ``s3:prefix``).

        Raises:
            AccessDenied: none is allowed.
        """
        for action in actions:
            if self.gate.decide(principal, action, None, **facts).allowed:  # type: ignore[arg-type]
                return
        raise AccessDenied("access denied")

    def _not_variant(self, principal: Principal, key: str) -> None:
        # Variants (thumbnails) are processing's: another writer's object there would be taken for
        # one (and collected by cleanup as an orphan).
        if principal is not SERVICE and is_variant_key(key):
            raise AccessDenied("access denied")

    async def _conditional(self, key: str, body: Body, condition: WriteCondition) -> AsyncIterator[bytes]:
        await self._check_condition(key, condition)
        async for chunk in body:
            yield chunk
        await self._check_condition(key, condition)

    async def _check_condition(self, key: str, condition: WriteCondition) -> None:
        try:
            current: ObjectInfo | None = await self.storage.head(key)
        except NoSuchKey:
            current = None
        condition.check(current)

    async def _admit(self, principal: Principal, key: str, multipart_id: str | None) -> StagedWrite:
        # Only a URL the control plane presigned for the intent writes a staging key; no policy
        # (not even an admin's s3:*) reaches it with other credentials.
        if principal is not SERVICE:
            raise AccessDenied("access denied")
        staged = await anyio.to_thread.run_sync(lambda: self.uploads.admit(key, multipart_id=multipart_id))
        if staged is None:
            raise AccessDenied("access denied")
        return staged

    async def _bound(self, key: str) -> BoundWrite | None:
        """The grant a bound prefix needs for ``key``; None when no binder covers it.

        Raises:
            AccessDenied: a binder covers ``key`` and grants nothing now.
        """
        for prefix, binder in self._binders:
            if key.startswith(prefix):
                grant = await anyio.to_thread.run_sync(binder, key)
                if grant is None:
                    raise AccessDenied("access denied")
                return grant
        return None

    def record_direct(self, info: ObjectInfo, principal: Principal) -> None:
        """An object written straight through the S3 API has a row like any file (not processed)."""
        parts = parse_object_key(info.key)
        now = self.clock.now()
        record = FileRecord(
            key=info.key,
            access_level=parts.access_level if parts else info.key.partition("/")[0],
            identity_id=principal.identity_id if principal is not SERVICE else (parts.identity_id if parts else None),
            size=info.size,
            content_type=canonical_type(info.content_type),
            etag=info.etag,
            metadata_={k: v for k, v in info.metadata.items() if k != OWNER_METADATA},
            cache_control=info.headers.get("cache-control"),
            width=None,
            height=None,
            upload_id=None,
            status="ready",
            created_at=now,
            updated_at=now,
        )
        created = self.object_created
        self.records.publish(record, (), upload_id=None, then=None if created is None else lambda s: created(s, info))


MAX_COPY_SIZE: Final = 5 * 1024**3  # S3's limit on CopyObject's source


@dataclass(frozen=True, slots=True)
class WriteCondition:
    """S3's conditional write headers: ``If-None-Match: *`` (only if there is no object) and
    ``If-Match`` (only over an object with one of those ETags, ``*`` for any)."""

    if_match: str | None = None
    if_none_match: bool = False

    @property
    def needed(self) -> bool:
        return self.if_match is not None or self.if_none_match

    def check(self, current: ObjectInfo | None) -> None:
        """Raises PreconditionFailed (or NoSuchKey: If-Match and no object) unless it holds for
        ``current``, the object there now (None: none)."""
        if self.if_none_match and current is not None:
            raise PreconditionFailed("At least one of the pre-conditions you specified did not hold")
        if self.if_match is not None:
            if current is None:
                raise NoSuchKey()
            if not etag_matches(self.if_match, current.etag):
                raise PreconditionFailed("At least one of the pre-conditions you specified did not hold")


def etag_matches(header: str, etag: str) -> bool:
    """Whether an ``If-Match``-style list of ETags (``*`` for any) names ``etag``."""
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/").strip('"') == etag:
            return True
    return False
