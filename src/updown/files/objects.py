"""THE door to bytes: every read and write of the data plane (and the CDN) goes through here.

It asks the gate, applies the owner rule of ``public/`` (an existing object's owner decides who
may replace or delete it), keeps the reserved metadata (``updown-owner``) out of clients' hands,
admits writes to staging keys only for the intent that granted them, and keeps the file rows in
step with the bytes: a landed upload is recorded in the same transaction that queues its
processing, and an object written straight through the S3 API gets its row once its bytes are there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Final

import anyio.to_thread

from updown.auth.principal import SERVICE, Principal
from updown.clock import Clock
from updown.core.keys import parse_object_key
from updown.db.models.files import FileRecord
from updown.errors import AccessDenied, InvalidArgument, InvalidRequest, NoSuchKey
from updown.files import access
from updown.files.access import AccessGate
from updown.files.records import OWNER_METADATA, Records
from updown.files.uploads import STAGING_PREFIX, StagedWrite, Uploads, canonical_type
from updown.storage.base import MAX_PART_SIZE, ByteRange, ListPage, ObjectInfo, ObjectStream, StorageBackend

HIDDEN: Final = frozenset({OWNER_METADATA})

Body = AsyncIterator[bytes]


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
    ) -> None:
        self.storage = storage
        self.gate = gate
        self.uploads = uploads
        self.records = records
        self.clock = clock
        self.max_object_size = max_object_size

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
    ) -> ObjectInfo:
        """Stores a whole object (PUT, or a browser POST).

        Raises:
            InvalidArgument: reserved metadata. AccessDenied: the policies, the owner rule, or a
                staging key without its open intent. EntityTooLarge: over the limit.
        """
        user_metadata = _user_metadata(metadata)
        limit = self.max_object_size if max_size is None else min(max_size, self.max_object_size)
        if key.startswith(STAGING_PREFIX):
            staged = await self._admit(principal, key, None)
            info = await self.storage.put(
                key,
                body,
                content_type=content_type,
                metadata=user_metadata,
                content_length=content_length,
                max_size=min(limit, staged.max_size),
            )
            await anyio.to_thread.run_sync(self.uploads.landed, staged.upload_id, info)
            return info
        await self.authorize_write(
            principal, access.PUT, key, content_length=content_length, content_type=content_type, **(facts or {})
        )
        stored = dict(user_metadata)
        if principal is not SERVICE and principal.identity_id is not None:
            stored[OWNER_METADATA] = principal.identity_id
        info = await self.storage.put(
            key, body, content_type=content_type, metadata=stored, content_length=content_length, max_size=limit
        )
        await anyio.to_thread.run_sync(self._record_direct, info, principal)
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

    async def _admit(self, principal: Principal, key: str, multipart_id: str | None) -> StagedWrite:
        # Only a URL the control plane presigned for the intent writes a staging key; no policy
        # (not even an admin's s3:*) reaches it with other credentials.
        if principal is not SERVICE:
            raise AccessDenied("access denied")
        staged = await anyio.to_thread.run_sync(lambda: self.uploads.admit(key, multipart_id=multipart_id))
        if staged is None:
            raise AccessDenied("access denied")
        return staged

    def _record_direct(self, info: ObjectInfo, principal: Principal) -> None:
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
            cache_control=None,
            width=None,
            height=None,
            upload_id=None,
            status="ready",
            created_at=now,
            updated_at=now,
        )
        self.records.publish(record, (), upload_id=None)


def _user_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    if OWNER_METADATA in metadata:
        raise InvalidArgument(f"x-amz-meta-{OWNER_METADATA} is reserved")
    return dict(metadata)
