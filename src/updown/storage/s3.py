"""S3 storage through boto3, for AWS or any S3-compatible endpoint (MinIO, Ceph, moto...).

The only module that imports boto3/botocore; `map_boto_error` is the one place their errors
become ours. boto3 is synchronous: every call runs in a thread.

A put buffers up to one part (8 MiB by default). A body that ends within it is sent with one
``PutObject`` (with ``Content-MD5``; the ETag is the MD5). A longer body goes up as a multipart
upload of ``part_size`` parts, each with its ``Content-MD5``, completed only after the whole body
arrived and matched its declared length; on any failure the upload is aborted, so nothing appears
under the key and the previous object stays. Such an object's ETag is S3's multipart form
``<hex>-<parts>``: we return what S3 will report for it from then on, never a value of our own,
so put, head, get and list agree. Uploads orphaned by a crash are aborted by `sweep_temp`.

With ``storage.offload = "x-accel-redirect"`` an allowed GET is not read through here: nginx
fetches a presigned GET of the same version from the store (`reference_offload`, ``offload.py``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.header import decode_header
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError as BotoClientError

from updown.core.keys import validate_key
from updown.core.sigv4 import Credentials
from updown.errors import (
    ConfigError,
    EntityTooLarge,
    EntityTooSmall,
    IncompleteBody,
    InvalidArgument,
    InvalidKey,
    InvalidPart,
    InvalidPartOrder,
    InvalidRange,
    NoSuchKey,
    NoSuchUpload,
    PreconditionFailed,
    ServerError,
    ServiceUnavailable,
    UpdownError,
)
from updown.storage.base import (
    CHUNK_SIZE,
    MAX_LIST_LIMIT,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    BodyMeter,
    ByteRange,
    ListPage,
    MultipartUpload,
    ObjectInfo,
    ObjectStream,
    ObjectSummary,
    PartInfo,
    StorageBackend,
    check_content_type,
    check_headers,
    check_limit,
    check_metadata,
    check_part_list,
    check_part_number,
)
from updown.storage.offload import PresignedOffload
from updown.storage.offload import check_settings as check_offload

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)


DEFAULT_PART_SIZE: Final = 8 * 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_COPY_RETRIES: Final = 4
_SPOOL_IN_MEMORY: Final = 8 * 1024 * 1024

# S3 error codes that mean something about the request, not about the store.
_CLIENT_CODES: Final[Mapping[str, type[UpdownError]]] = {
    "NoSuchKey": NoSuchKey,
    "404": NoSuchKey,
    "NotFound": NoSuchKey,
    "InvalidRange": InvalidRange,
    "416": InvalidRange,
    "EntityTooLarge": EntityTooLarge,
    "IncompleteBody": IncompleteBody,
    "InvalidArgument": InvalidArgument,
    "InvalidRequest": InvalidArgument,
    "KeyTooLongError": InvalidKey,
    "PreconditionFailed": PreconditionFailed,
    "NoSuchUpload": NoSuchUpload,
    "InvalidPart": InvalidPart,
    "InvalidPartOrder": InvalidPartOrder,
    "EntityTooSmall": EntityTooSmall,
    "412": PreconditionFailed,
}


def map_boto_error(exc: BaseException) -> UpdownError:
    """Translate a botocore exception into ours; the caller raises it ``from exc``.

    Request-level S3 codes map to the matching client error. Everything about the store itself
    (our credentials refused, no such bucket, throttling, 5xx, unreachable) is
    ``ServiceUnavailable``: the caller of updown did nothing wrong, and AccessDenied would wrongly
    suggest a policy decision. An S3 4xx code we do not know is ``ServerError`` (our bug).
    """
    if isinstance(exc, BotoClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        mapped = _CLIENT_CODES.get(code)
        if mapped is not None:
            return mapped()
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return ServiceUnavailable(f"the object store refused our credentials ({code})")
        if code == "NoSuchBucket" or status >= 500 or status == 429 or code == "SlowDown":
            return ServiceUnavailable(f"the object store answered {code or status}")
        return ServerError(f"unexpected object store error {code or status}")
    if isinstance(exc, BotoCoreError):
        return ServiceUnavailable(f"the object store is unreachable ({type(exc).__name__})")
    return ServerError(f"unexpected object store failure ({type(exc).__name__})")


class S3Backend(StorageBackend):
    """Objects in one bucket of an S3-compatible store."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        path_style: bool = False,
        part_size: int = DEFAULT_PART_SIZE,
        client: S3Client | None = None,
        probe_prefixes: bool = False,
        offload: str = "none",
        offload_prefix: str = "/_updown_objects/",
    ) -> None:
        """Build the client (or take one, for tests); ``path_style`` for endpoints without
        virtual-host buckets (MinIO, moto, most self-hosted stores). ``offload`` =
        ``x-accel-redirect``: `reference_offload` hands allowed GETs to nginx as presigned GETs of
        the store (`storage.offload.PresignedOffload`, signed with these credentials).
        ``probe_prefixes``: the store keeps folders as directories (SeaweedFS); see `list`.

        Raises:
            ConfigError: ``part_size`` under S3's 5 MiB minimum; an offload mode other than none
                and x-accel-redirect (x-sendfile names a local file), or one without credentials.
        """
        if part_size < MIN_PART_SIZE:
            raise ConfigError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        check_offload(offload, offload_prefix)
        if offload == "x-sendfile":
            raise ConfigError("storage.offload = x-sendfile needs the local backend (s3: x-accel-redirect or none)")
        if offload == "x-accel-redirect":
            self.reference_offload = PresignedOffload(
                offload_prefix,
                endpoint=endpoint_url or f"https://s3.{region or 'us-east-1'}.amazonaws.com",
                bucket=bucket,
                path_style=path_style,
                credentials=Credentials(access_key_id or "", secret_access_key or "", session_token),
                region=region or "us-east-1",
            )
        self.bucket = bucket
        self._part_size = part_size
        self._probe_prefixes = probe_prefixes
        if client is None:
            config = Config(
                s3={"addressing_style": "path" if path_style else "auto"},
                signature_version="s3v4",
                retries={"mode": "standard", "max_attempts": 3},
                max_pool_connections=32,
                # We send Content-MD5 ourselves; no second checksum over every byte.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                aws_session_token=session_token,
                config=config,
            )
        self._client = client

    async def put(
        self,
        key: str,
        body: AsyncIterator[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_length: int | None = None,
        max_size: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        clean = validate_key(key)
        ctype = check_content_type(content_type)
        meta = check_metadata(metadata, unicode_values=True)
        stored = check_headers(headers)
        meter = BodyMeter(content_length, max_size)
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []
        try:
            async for chunk in body:
                meter.add(chunk)
                buffer += chunk
                while len(buffer) >= self._part_size:
                    if upload_id is None:
                        created = await _call(
                            self._client.create_multipart_upload,
                            Bucket=self.bucket,
                            Key=clean,
                            ContentType=ctype,
                            Metadata=_wire(meta),
                            **_header_params(stored),
                        )
                        upload_id = created["UploadId"]
                    part = bytes(buffer[: self._part_size])
                    del buffer[: self._part_size]
                    parts.append(await self._upload_part(clean, upload_id, len(parts) + 1, part))
            meter.finish()
            if upload_id is None:
                etag, stored_at = await _call(self._put_object, clean, bytes(buffer), ctype, meta, stored)
            else:
                if buffer:
                    parts.append(await self._upload_part(clean, upload_id, len(parts) + 1, bytes(buffer)))
                done = await _call(
                    self._client.complete_multipart_upload,
                    Bucket=self.bucket,
                    Key=clean,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
                etag, stored_at = done["ETag"], _stored_at(done)
        except BaseException:
            if upload_id is not None:
                # Shielded: when our task is being cancelled (the client went away) the abort
                # still runs to its end in its thread.
                await asyncio.shield(asyncio.ensure_future(asyncio.to_thread(self._abort, clean, upload_id)))
            raise
        return ObjectInfo(clean, meter.total, etag.strip('"'), ctype, meta, stored_at, stored)

    def _put_object(
        self, key: str, data: bytes, content_type: str, metadata: dict[str, str], headers: dict[str, str]
    ) -> tuple[str, float]:
        # Hashing happens here, in the thread, not on the event loop.
        answer = self._client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentMD5=_md5_base64(data),
            ContentType=content_type,
            Metadata=_wire(metadata),
            **_header_params(headers),
        )
        return answer["ETag"], _stored_at(answer)

    async def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> CompletedPartTypeDef:
        def send() -> str:
            answer = self._client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ContentMD5=_md5_base64(data),
            )
            return answer["ETag"]

        return {"PartNumber": number, "ETag": await _call(send)}

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (BotoClientError, BotoCoreError) as exc:
            # sweep_temp will find it later.
            log.warning("could not abort multipart upload: %s", map_boto_error(exc).detail)

    async def get(self, key: str, *, byte_range: ByteRange | None = None) -> ObjectStream:
        clean = validate_key(key)
        extra: dict[str, Any] = {}
        if byte_range is not None:
            extra["Range"] = _range_header(byte_range)
        answer = await _call(self._client.get_object, Bucket=self.bucket, Key=clean, **extra)
        total = answer["ContentLength"]
        span: tuple[int, int] | None = None
        match = _CONTENT_RANGE.fullmatch(answer.get("ContentRange", ""))
        if match is not None:
            span = (int(match[1]), int(match[2]))
            total = int(match[3])
        info = ObjectInfo(
            clean,
            total,
            answer["ETag"].strip('"'),
            answer.get("ContentType") or "",
            _lower(answer.get("Metadata", {})),
            answer["LastModified"].timestamp(),
            _stored_headers(answer),
        )
        reader = _Body(answer["Body"])

        async def chunks() -> AsyncIterator[bytes]:
            while data := await _call(reader.read, CHUNK_SIZE):
                yield data

        async def close() -> None:
            reader.close()

        return ObjectStream(info, chunks(), close=close, byte_range=span)

    async def head(self, key: str) -> ObjectInfo:
        clean = validate_key(key)
        answer = await _call(self._client.head_object, Bucket=self.bucket, Key=clean)
        return ObjectInfo(
            clean,
            answer["ContentLength"],
            answer["ETag"].strip('"'),
            answer.get("ContentType") or "",
            _lower(answer.get("Metadata", {})),
            answer["LastModified"].timestamp(),
            _stored_headers(answer),
        )

    async def delete(self, key: str) -> None:
        clean = validate_key(key)
        await _call(self._client.delete_object, Bucket=self.bucket, Key=clean)

    async def list(
        self,
        prefix: str = "",
        *,
        limit: int = MAX_LIST_LIMIT,
        continuation_token: str | None = None,
        delimiter: str | None = None,
        start_after: str | None = None,
    ) -> ListPage:
        """One page, as S3 lists it on any store.

        A common prefix stands for at least one object (S3's). A store that keeps folders as
        directories (SeaweedFS) lists a folder emptied a moment ago as one until it removes the
        directory, and, listed with that folder as the prefix, the folder itself as an object. With
        ``probe_prefixes``, one MaxKeys=1 probe without delimiter per listed prefix (and for an
        object named as the prefix) keeps only what objects back, whatever order the store lists
        keys in. Measured on SeaweedFS over loopback: 1.7 ms a prefix (a page of 10 folders: 19 ms
        instead of 2; of 1000: 1.8 s instead of 13 ms); a few at once, so as not to take every
        thread of the pool. Off by default: AWS S3 would bill a request per folder listed.
        A truncated page whose last entry was dropped goes on where the store stopped, so that it
        ends on what it lists (v1's NextMarker).
        """
        check_limit(limit)
        extra: dict[str, Any] = {}
        if continuation_token:
            extra["ContinuationToken"] = continuation_token
        elif start_after:
            extra["StartAfter"] = start_after
        if delimiter:
            extra["Delimiter"] = delimiter
        gate = asyncio.Semaphore(4)

        async def first_key(start: str) -> str | None:
            """The first key starting with ``start`` (listed without delimiter: no directories)."""
            async with gate:
                probe = await _call(self._client.list_objects_v2, Bucket=self.bucket, Prefix=start, MaxKeys=1)
            found = probe.get("Contents", [])
            return str(found[0]["Key"]) if found else None

        async def backed(entry: str, is_prefix: bool) -> bool:
            key = await first_key(entry)
            return key is not None and (is_prefix or key == entry)

        items: list[ObjectSummary] = []
        prefixes: list[str] = []
        while True:
            answer = await _call(
                self._client.list_objects_v2,
                Bucket=self.bucket,
                Prefix=prefix,
                MaxKeys=limit - len(items) - len(prefixes),
                **extra,
            )
            page = [
                ObjectSummary(
                    item["Key"],
                    item["Size"],
                    item["ETag"].strip('"'),
                    item["LastModified"].timestamp(),
                )
                for item in answer.get("Contents", [])
            ]
            listed = [p["Prefix"] for p in answer.get("CommonPrefixes", []) if "Prefix" in p]
            token = answer.get("NextContinuationToken") if answer.get("IsTruncated") else None
            # Only an object named as the prefix can be a directory listed as an object: a longer
            # key ending in the delimiter is rolled up into a common prefix.
            doubtful = [(p, True) for p in listed] if self._probe_prefixes else []
            if self._probe_prefixes and delimiter and prefix.endswith(delimiter) and page and page[0].key == prefix:
                doubtful.append((prefix, False))
            kept = await asyncio.gather(*(backed(name, is_prefix) for name, is_prefix in doubtful))
            dropped = {name for (name, _), keep in zip(doubtful, kept, strict=True) if not keep}
            items.extend(i for i in page if i.key not in dropped)
            prefixes.extend(p for p in listed if p not in dropped)
            last = max([*(i.key for i in page[-1:]), *listed[-1:]], default=None)
            if token is None or last not in dropped:
                return ListPage(tuple(items), token, tuple(prefixes))
            extra = {"ContinuationToken": token, **({"Delimiter": delimiter} if delimiter else {})}

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        source = validate_key(src)
        target = validate_key(dst)
        meta = None if metadata is None else check_metadata(metadata, unicode_values=True)
        ctype = None if content_type is None else check_content_type(content_type)
        stored = None if headers is None else check_headers(headers)
        for _ in range(_COPY_RETRIES):
            info = await self.head(source)
            new_type = info.content_type if ctype is None else ctype
            new_headers = dict(info.headers) if stored is None else stored
            extra: dict[str, Any] = {"MetadataDirective": "COPY"}
            if meta is not None or ctype is not None or stored is not None:
                # REPLACE replaces all of them: what is not replaced is given again as it was.
                kept = info.metadata if meta is None else meta
                extra = {
                    "MetadataDirective": "REPLACE",
                    "Metadata": _wire(kept),
                    "ContentType": new_type,
                    **_header_params(new_headers),
                }
            try:
                # CopySourceIfMatch pins the version we just read, so size and type stay true.
                answer = await _call(
                    self._client.copy_object,
                    Bucket=self.bucket,
                    Key=target,
                    CopySource={"Bucket": self.bucket, "Key": source},
                    CopySourceIfMatch=f'"{info.etag}"',
                    **extra,
                )
            except PreconditionFailed:
                continue  # replaced between head and copy
            result = answer["CopyObjectResult"]
            return ObjectInfo(
                target,
                info.size,
                result.get("ETag", info.etag).strip('"'),
                new_type,
                info.metadata if meta is None else meta,
                result["LastModified"].timestamp() if "LastModified" in result else _stored_at(answer),
                new_headers,
            )
        raise ServiceUnavailable("the source kept changing while being copied")

    async def create_multipart(
        self,
        key: str,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        cache_control: str | None = None,
    ) -> str:
        extra: dict[str, Any] = {} if cache_control is None else {"CacheControl": cache_control}
        created = await _call(
            self._client.create_multipart_upload,
            Bucket=self.bucket,
            Key=validate_key(key),
            ContentType=check_content_type(content_type),
            Metadata=_wire(check_metadata(metadata, unicode_values=True)),
            **extra,
        )
        return created["UploadId"]

    async def put_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        body: AsyncIterator[bytes],
        *,
        content_length: int | None = None,
        max_size: int | None = None,
    ) -> PartInfo:
        clean = validate_key(key)
        check_part_number(part_number)
        meter = BodyMeter(content_length, MAX_PART_SIZE if max_size is None else min(max_size, MAX_PART_SIZE))
        # NoSuchUpload before a byte of the body is read (or spooled), as the local backend answers.
        await _call(self._client.list_parts, Bucket=self.bucket, Key=clean, UploadId=upload_id, MaxParts=1)
        # A part can be 5 GiB: spooled to a temporary file past one chunk, never held whole.
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            digest = hashlib.md5(usedforsecurity=False)
            async for chunk in body:
                meter.add(chunk)
                digest.update(chunk)
                spool.write(chunk)  # page-cache writes of one received chunk
            meter.finish()
            spool.seek(0)
            md5 = base64.b64encode(digest.digest()).decode()
            answer = await _call(
                self._client.upload_part,
                Bucket=self.bucket,
                Key=clean,
                UploadId=upload_id,
                PartNumber=part_number,
                Body=spool,
                ContentLength=meter.total,
                ContentMD5=md5,
            )
        return PartInfo(part_number, answer["ETag"].strip('"'), meter.total, _stored_at(answer))

    async def list_parts(self, key: str, upload_id: str) -> tuple[PartInfo, ...]:
        clean = validate_key(key)

        def fetch() -> tuple[PartInfo, ...]:
            out: list[PartInfo] = []
            paginator = self._client.get_paginator("list_parts")
            for page in paginator.paginate(Bucket=self.bucket, Key=clean, UploadId=upload_id):
                for part in page.get("Parts", []):
                    out.append(
                        PartInfo(
                            part["PartNumber"],
                            part["ETag"].strip('"'),
                            part["Size"],
                            part["LastModified"].timestamp(),
                        )
                    )
            return tuple(sorted(out, key=lambda p: p.part_number))

        return await _call(fetch)

    async def complete_multipart(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> ObjectInfo:
        clean = validate_key(key)
        listed = check_part_list(parts)
        await _call(
            self._client.complete_multipart_upload,
            Bucket=self.bucket,
            Key=clean,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": f'"{etag}"'} for n, etag in listed]},
        )
        return await self.head(clean)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        await _call(self._client.abort_multipart_upload, Bucket=self.bucket, Key=validate_key(key), UploadId=upload_id)

    async def list_multipart_uploads(self, prefix: str = "") -> tuple[MultipartUpload, ...]:
        def fetch() -> tuple[MultipartUpload, ...]:
            out: list[MultipartUpload] = []
            paginator = self._client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    out.append(MultipartUpload(upload["Key"], upload["UploadId"], upload["Initiated"].timestamp()))
            # S3 lists by key, then initiation; a store that does not (moto) still does here. The
            # sort is stable: the store's order within a key stays.
            out.sort(key=lambda u: u.key)
            return tuple(out)

        return await _call(fetch)

    async def sweep_temp(self, older_than_seconds: float) -> int:
        return await _call(self._sweep, time.time() - older_than_seconds)

    def _sweep(self, cutoff: float) -> int:
        removed = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket):
            for upload in page.get("Uploads", []):
                if upload["Initiated"].timestamp() <= cutoff:
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket,
                        Key=upload["Key"],
                        UploadId=upload["UploadId"],
                    )
                    removed += 1
        return removed

    async def check(self) -> None:
        try:
            await _call(self._client.head_bucket, Bucket=self.bucket)
        except ServiceUnavailable:
            raise
        except UpdownError as exc:
            # HeadBucket has no body, so a missing bucket comes back as a bare 404.
            raise ServiceUnavailable(f"the bucket is not usable ({exc.code})") from exc


class _Body:
    """A response body read from threads; the lock keeps `close` from racing a read."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self._lock = threading.Lock()
        self._open = True

    def read(self, size: int) -> bytes:
        with self._lock:
            if not self._open:
                return b""
            data: bytes = self._body.read(size)
            return data

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._open = False
                self._body.close()


async def _call(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run one blocking boto call in a thread, its errors mapped to ours."""
    try:
        return await asyncio.to_thread(func, *args, **kwargs)
    except (BotoClientError, BotoCoreError) as exc:
        raise map_boto_error(exc) from exc


def _range_header(byte_range: ByteRange) -> str:
    start, end = byte_range
    if start < 0:
        if end is not None:
            raise InvalidArgument("a suffix range has no end")
        return f"bytes={start}"
    if end is None:
        return f"bytes={start}-"
    if end < start:
        raise InvalidArgument("the range ends before it starts")
    return f"bytes={start}-{end}"


def _stored_at(answer: Mapping[str, Any]) -> float:
    """When the store says it wrote: its Last-Modified, else the Date of its answer (S3 sends
    both with second precision); the local clock only when a store sends neither."""
    headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    for name in ("last-modified", "date"):
        value = headers.get(name)
        if value:
            try:
                return parsedate_to_datetime(value).timestamp()
            except (TypeError, ValueError):
                continue
    return time.time()


def _md5_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _lower(metadata: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): _unwire(value) for name, value in metadata.items()}


# Stored headers (`STORED_HEADERS`) and boto3's names for them.
_HEADER_PARAMS: Final = {
    "cache-control": "CacheControl",
    "content-disposition": "ContentDisposition",
    "content-encoding": "ContentEncoding",
    "content-language": "ContentLanguage",
    "expires": "Expires",
}


def _header_params(headers: Mapping[str, str]) -> dict[str, Any]:
    """boto3's parameters for stored headers; an Expires that is no HTTP date is left out (boto3
    takes a timestamp)."""
    params: dict[str, Any] = {}
    for name, value in headers.items():
        if name == "expires":
            try:
                params["Expires"] = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                continue
        else:
            params[_HEADER_PARAMS[name]] = value
    return params


def _stored_headers(answer: Mapping[str, Any]) -> dict[str, str]:
    """The stored headers of a HEAD or GET answer."""
    out = {name: answer[param] for name, param in _HEADER_PARAMS.items() if name != "expires" and answer.get(param)}
    expires = answer.get("ExpiresString") or answer.get("Expires")
    if isinstance(expires, datetime):
        expires = format_datetime(expires.astimezone(UTC), usegmt=True)
    if expires:
        out["expires"] = str(expires)
    return out


def _wire(metadata: Mapping[str, str]) -> dict[str, str]:
    """Metadata as it travels in headers: non-ASCII values RFC 2047 encoded (S3 decodes them and
    keeps the text, and encodes them so again when it answers)."""
    return {
        name: value if value.isascii() else f"=?UTF-8?B?{base64.b64encode(value.encode()).decode()}?="
        for name, value in metadata.items()
    }


def _unwire(value: str) -> str:
    """A metadata value as S3 answers it, RFC 2047 encoded words decoded."""
    if not (value.startswith("=?") and value.endswith("?=")):
        return value
    try:
        return "".join(
            text.decode(charset or "ascii") if isinstance(text, bytes) else text
            for text, charset in decode_header(value)
        )
    except (LookupError, UnicodeDecodeError):
        return value
