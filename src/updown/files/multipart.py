"""The S3 API's multipart uploads to any key the caller may write (web/s3/multipart.py).

They go through the same storage multipart as the intents' part URLs; staging keys stay the
intents' own (only `Objects.put_part` reaches them). Each verb is authorised by its IAM action
through the gate of the `Objects` it belongs to (``Objects.multipart``), with the owner rule of
``public/`` and the file row of a completed upload as a direct PUT has them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import anyio.to_thread

from updown.auth.principal import SERVICE, Principal
from updown.errors import EntityTooLarge, InvalidArgument, InvalidRange
from updown.files import access
from updown.files.records import OWNER_METADATA
from updown.files.uploads import STAGING_PREFIX
from updown.files.writes import not_staging, pieces, user_metadata
from updown.storage.base import MAX_PART_SIZE, MultipartUpload, ObjectInfo, PartInfo

if TYPE_CHECKING:
    from updown.files.objects import Body, Objects


class MultipartObjects:
    """CreateMultipartUpload … ListMultipartUploads on behalf of a principal."""

    def __init__(self, objects: Objects) -> None:
        self._objects = objects
        self._storage = objects.storage

    async def create(
        self,
        principal: Principal,
        key: str,
        *,
        content_type: str | None,
        metadata: Mapping[str, str],
        cache_control: str | None = None,
        facts: Mapping[str, object] | None = None,
    ) -> str:
        """CreateMultipartUpload: ``s3:PutObject`` on the key (and the owner rule of ``public/``);
        returns the upload id. The upload carries the owner metadata a PUT would.

        Raises:
            InvalidArgument: reserved metadata. AccessDenied: the policies, the owner rule, a
                staging key, or a key under a bound prefix (those take one presigned PUT).
        """
        stored = user_metadata(metadata)
        not_staging(key)
        await self._objects.authorize_write(principal, access.PUT, key, content_type=content_type, **(facts or {}))
        self._objects.not_bound(key)
        if principal is not SERVICE and principal.identity_id is not None:
            stored[OWNER_METADATA] = principal.identity_id
        return await self._storage.create_multipart(
            key, content_type=content_type, metadata=stored, cache_control=cache_control
        )

    async def upload_part(
        self,
        principal: Principal,
        key: str,
        upload_id: str,
        part_number: int,
        body: Body,
        *,
        content_length: int | None,
        facts: Mapping[str, object] | None = None,
    ) -> str:
        """UploadPart: an intent's part at its staging key (`put_part`), else a part of an upload
        opened by `create_multipart` (``s3:PutObject`` on the key); returns the part's ETag.

        Raises:
            AccessDenied: the policies (or, for a staging key, no open intent). NoSuchUpload.
        """
        if key.startswith(STAGING_PREFIX):
            return await self._objects.put_part(
                principal, key, upload_id, part_number, body, content_length=content_length
            )
        self._objects.gate.check(principal, access.PUT, key, content_length=content_length, **(facts or {}))
        part = await self._storage.put_part(
            key,
            upload_id,
            part_number,
            body,
            content_length=content_length,
            max_size=min(MAX_PART_SIZE, self._objects.max_object_size),
        )
        return part.etag

    async def copy_part(
        self,
        principal: Principal,
        key: str,
        upload_id: str,
        part_number: int,
        source: str,
        *,
        byte_range: tuple[int, int] | None,
        check_source: Callable[[ObjectInfo], None] | None = None,
        facts: Mapping[str, object] | None = None,
    ) -> PartInfo:
        """UploadPartCopy: ``s3:GetObject`` on the source and ``s3:PutObject`` on the key, then the
        source's bytes (``byte_range`` inclusive, within the source) become the part.
        ``check_source`` sees the source version being copied first (its ``x-amz-copy-source-if-*``).

        Raises:
            AccessDenied: the policies, or a staging key. NoSuchKey: no source. InvalidArgument:
                a range outside the source. NoSuchUpload.
        """
        not_staging(key)
        facts = facts or {}
        self._objects.check_read(principal, source, **facts)
        self._objects.gate.check(principal, access.PUT, key, **facts)
        try:
            stream = await self._storage.get(source, byte_range=byte_range)
        except InvalidRange:
            raise InvalidArgument("The x-amz-copy-source-range is not valid for the source object") from None
        async with stream:
            if check_source is not None:
                check_source(stream.info)
            if byte_range is not None and (stream.byte_range is None or stream.byte_range[1] != byte_range[1]):
                raise InvalidArgument(f"Range specified is not valid for source object of size: {stream.info.size}")
            return await self._storage.put_part(
                key,
                upload_id,
                part_number,
                pieces(stream),
                content_length=stream.length,
                max_size=min(MAX_PART_SIZE, self._objects.max_object_size),
            )

    async def complete(
        self,
        principal: Principal,
        key: str,
        upload_id: str,
        parts: Sequence[tuple[int, str]],
        *,
        facts: Mapping[str, object] | None = None,
    ) -> ObjectInfo:
        """CompleteMultipartUpload: ``s3:PutObject`` on the key (the owner rule of ``public/``
        again: the object it replaces now), the listed parts joined, and the file recorded as a
        direct PUT is.

        Raises:
            AccessDenied: the policies. NoSuchUpload. InvalidPartOrder, InvalidPart, EntityTooSmall.
            EntityTooLarge: the listed parts together are over the object size limit.
        """
        not_staging(key)
        await self._objects.authorize_write(principal, access.PUT, key, **(facts or {}))
        self._objects.not_bound(key)
        listed = {number for number, _ in parts}
        received = await self._storage.list_parts(key, upload_id)
        total = sum(p.size for p in received if p.part_number in listed)
        if total > self._objects.max_object_size:
            raise EntityTooLarge(f"the parts are {total} bytes together; the limit is {self._objects.max_object_size}")
        info = await self._storage.complete_multipart(key, upload_id, parts)
        await anyio.to_thread.run_sync(self._objects.record_direct, info, principal)
        return info

    async def abort(
        self, principal: Principal, key: str, upload_id: str, *, facts: Mapping[str, object] | None = None
    ) -> None:
        """AbortMultipartUpload (``s3:AbortMultipartUpload`` on the key).

        Raises:
            AccessDenied: the policies, or a staging key. NoSuchUpload.
        """
        not_staging(key)
        self._objects.gate.check(principal, access.ABORT_MULTIPART, key, **(facts or {}))
        await self._storage.abort_multipart(key, upload_id)

    async def list_parts(
        self, principal: Principal, key: str, upload_id: str, *, facts: Mapping[str, object] | None = None
    ) -> tuple[PartInfo, ...]:
        """ListParts (``s3:ListMultipartUploadParts`` on the key): every part received, by number.

        Raises:
            AccessDenied: the policies, or a staging key. NoSuchUpload.
        """
        not_staging(key)
        self._objects.gate.check(principal, access.LIST_PARTS, key, **(facts or {}))
        return await self._storage.list_parts(key, upload_id)

    async def list_uploads(
        self,
        principal: Principal,
        prefix: str,
        *,
        delimiter: str | None = None,
        facts: Mapping[str, object] | None = None,
    ) -> tuple[MultipartUpload, ...]:
        """ListMultipartUploads (``s3:ListBucketMultipartUploads`` with ``s3:prefix`` and
        ``s3:delimiter``): the open uploads under ``prefix``, by key then initiation; the intents'
        own (at staging keys) are never shown.

        Raises:
            AccessDenied: the policies.
        """
        self._objects.gate.check(
            principal, access.LIST_UPLOADS, None, prefix=prefix, delimiter=delimiter, **(facts or {})
        )
        found = await self._storage.list_multipart_uploads(prefix)
        return tuple(u for u in found if not u.key.startswith(STAGING_PREFIX))
