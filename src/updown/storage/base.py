"""The storage interface: `StorageBackend` and the values it hands out.

Every backend (local disk, S3) implements this ABC and passes `tests/contract/`. Bytes always
stream: no method reads a whole object into memory.
"""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Protocol

from updown.errors import EntityTooLarge, IncompleteBody, InvalidArgument, InvalidPartOrder, InvalidRange

DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"
# S3's limit on user metadata: names and values together, in bytes.
MAX_METADATA_BYTES: Final = 2048
MAX_LIST_LIMIT: Final = 1000
# S3's multipart rules.
MIN_PART_SIZE: Final = 5 * 1024 * 1024
MAX_PART_SIZE: Final = 5 * 1024**3
MAX_PARTS: Final = 10_000
# The HTTP headers S3 stores with an object at PUT (and copies) and serves it with.
STORED_HEADERS: Final = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
# Objects stream in chunks of this size (reads) and are written in batches of about this size.
CHUNK_SIZE: Final = 1024 * 1024

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL_OR_SURROGATE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

Chunk = bytes | bytearray
"""A piece of an object as a backend yields it: ``bytes``, or a ``bytearray`` the backend read
into directly and never touches again (the local backend: no second copy on the download path)."""

Offload = tuple[bytes, bytes]
"""A response header (name, value) by which a front server sends an object's bytes itself
(``x-accel-redirect`` for nginx, ``x-sendfile``); see ``storage.local.offload``."""


ByteRange = tuple[int, int | None]
"""``(start, end)`` with ``end`` inclusive or None for "to the end"; ``(-n, None)`` is the last
``n`` bytes (HTTP's ``bytes=-n``)."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a backend knows about one stored object.

    ``etag`` is lower-case hex without quotes: the MD5 of the content for an object written in
    one part; S3's multipart form ``<hex>-<parts>`` for an object the S3 backend wrote in parts.
    ``metadata`` names are lower-case, without the ``x-amz-meta-`` prefix. ``last_modified`` is
    seconds since the epoch. ``headers`` are the HTTP headers the object was stored with and is
    served with (`STORED_HEADERS`, lower-case names), as S3 keeps them.
    """

    key: str
    size: int
    etag: str
    content_type: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    last_modified: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ObjectSummary:
    """One entry of a listing (what S3's ListObjectsV2 returns: no content type, no metadata)."""

    key: str
    size: int
    etag: str
    last_modified: float


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing; ``next_token`` is None on the last page.

    ``prefixes`` are the common prefixes of a listing with a delimiter (S3's ``CommonPrefixes``):
    each stands for every key that starts with it, and counts as one entry against the page size.
    ``last`` is the greatest entry of the page, key or prefix (S3's ``NextMarker``).
    """

    items: tuple[ObjectSummary, ...]
    next_token: str | None
    prefixes: tuple[str, ...] = ()

    @property
    def last(self) -> str | None:
        key = self.items[-1].key if self.items else None
        prefix = self.prefixes[-1] if self.prefixes else None
        if key is None or prefix is None:
            return key if prefix is None else prefix
        return max(key, prefix)


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One received part of a multipart upload; ``etag`` is the part's MD5, lower-case hex."""

    part_number: int
    etag: str
    size: int
    last_modified: float = 0.0


@dataclass(frozen=True, slots=True)
class MultipartUpload:
    """An open multipart upload, as ``list_multipart_uploads`` reports it."""

    key: str
    upload_id: str
    initiated: float


class ReferenceOffload(Protocol):
    """Offload by reference (the S3 backend): the front server fetches a decided GET's bytes from
    the store itself; see ``storage.offload``."""

    def headers(self, info: ObjectInfo, span: tuple[int, int] | None) -> list[tuple[bytes, bytes]]:
        """The headers that hand ``span`` (None: all) of the version ``info`` describes to the
        front server."""
        ...


class ObjectStream:
    """An open object: its info, the byte range being served, and its bytes as an async iterator.

    Use as ``async with await backend.get(key) as stream: async for chunk in stream: ...``; the
    stream pins one version of the object, so a concurrent replace never mixes versions.
    ``offload``, when the backend is set up for it, is the header that lets a front server send
    that version's bytes (the whole file: the front server applies the request's range itself).
    """

    def __init__(
        self,
        info: ObjectInfo,
        chunks: AsyncIterator[Chunk],
        *,
        close: Callable[[], Awaitable[None]],
        byte_range: tuple[int, int] | None = None,
        offload: Offload | None = None,
    ) -> None:
        self.info = info
        self.byte_range = byte_range
        self.offload = offload
        self._chunks = chunks
        self._close = close
        self._closed = False

    @property
    def length(self) -> int:
        """How many bytes iterating yields."""
        if self.byte_range is None:
            return self.info.size
        return self.byte_range[1] - self.byte_range[0] + 1

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._chunks

    async def aclose(self) -> None:
        """Release the file or connection behind the stream; idempotent."""
        if not self._closed:
            self._closed = True
            try:
                closer = getattr(self._chunks, "aclose", None)
                if closer is not None:
                    await closer()  # finish a half-read generator now, not at garbage collection
            finally:
                await self._close()

    async def __aenter__(self) -> ObjectStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class StorageBackend(abc.ABC):
    """Bytes under keys in one bucket. Implementations: `LocalBackend`, `S3Backend`.

    Keys are validated with `updown.core.keys.validate_key` by every method that takes one
    (``InvalidKey`` otherwise) and used in their NFC form. Errors are always ``updown.errors``
    classes; a dependency's own exceptions never escape.
    """

    @abc.abstractmethod
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
        """Store ``body`` under ``key``, replacing any previous object only once all of it is stored.

        Args:
            key: the object key.
            body: the bytes, consumed once, chunk by chunk.
            content_type: stored and returned as is; `DEFAULT_CONTENT_TYPE` when None or empty.
            metadata: user metadata; names are lower-cased. At most 2 KiB of UTF-8 in all, names
                must be HTTP tokens and values text without control characters (non-ASCII values
                are kept as given, as S3 keeps them; `check_metadata` with ``unicode_values``).
            content_length: the declared size; a body shorter or longer is refused.
            max_size: the largest body accepted.
            headers: HTTP headers to store and serve the object with (`check_headers`).

        Returns:
            The stored object's info (its ``etag`` computed while the bytes streamed).

        Raises:
            InvalidKey: the key fails validation.
            InvalidArgument: bad content type or metadata.
            IncompleteBody: the body is shorter or longer than ``content_length``.
            EntityTooLarge: the body (or ``content_length``) is over ``max_size``.
            ServiceUnavailable: the store failed.

        On any error, and if the body iterator raises or the task is cancelled, nothing is stored
        under ``key`` and a previous object there is left intact.
        """

    @abc.abstractmethod
    async def get(self, key: str, *, byte_range: ByteRange | None = None) -> ObjectStream:
        """Open the object for reading, whole or a byte range (ends past the object are clamped).

        Returns:
            An `ObjectStream`; the caller must close it.

        Raises:
            NoSuchKey: nothing under ``key``.
            InvalidRange: the range starts at or past the end (or the object is empty).
            InvalidArgument: the range's end is before its start.
        """

    @abc.abstractmethod
    async def head(self, key: str) -> ObjectInfo:
        """The object's info.

        Raises:
            NoSuchKey: nothing under ``key``.
        """

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; succeeds when there is none (idempotent, like S3)."""

    @abc.abstractmethod
    async def list(
        self,
        prefix: str = "",
        *,
        limit: int = MAX_LIST_LIMIT,
        continuation_token: str | None = None,
        delimiter: str | None = None,
        start_after: str | None = None,
    ) -> ListPage:
        """Objects whose key starts with ``prefix``, in UTF-8 byte order of keys (S3's order).

        Args:
            prefix: a plain string prefix (not validated as a key; ``""`` lists everything).
            limit: page size, 1 to 1000 (keys and common prefixes together).
            continuation_token: the previous page's ``next_token``; only meaningful to the
                backend that issued it (and with the same prefix and delimiter).
            delimiter: S3's delimiter: a key with it after ``prefix`` is rolled up into the
                common prefix up to and including its first occurrence there (``ListPage.prefixes``),
                listed once, in order among the keys. None or ``""``: no roll-up.
            start_after: list only entries after this string (S3's ``start-after``/``marker``); a
                common prefix at or before it is left out too. Ignored with a continuation token.

        Raises:
            InvalidArgument: bad limit or token.
        """

    @abc.abstractmethod
    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Copy an object; ``metadata`` None keeps the source's, a mapping replaces it.

        The content type and stored headers are kept unless ``content_type`` or ``headers`` is
        given (with ``metadata``: S3's REPLACE directive replaces all three). Returns the new
        object's info.

        Raises:
            NoSuchKey: nothing under ``src``.
        """

    reference_offload: ReferenceOffload | None = None
    """Set when ``storage.offload`` has the front server fetch an allowed GET's bytes from the store
    (the S3 backend); the local backend's offload header comes with `get` (`ObjectStream.offload`)."""

    # -- multipart uploads (S3's model: one implementation behind presigned parts and the S3 API) --

    min_part_size: int = MIN_PART_SIZE
    """Every part of a multipart upload but the last must be at least this big (S3: 5 MiB)."""

    @abc.abstractmethod
    async def create_multipart(
        self,
        key: str,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        cache_control: str | None = None,
    ) -> str:
        """Open a multipart upload for ``key``; returns its upload id. Nothing appears under the key
        until `complete_multipart`."""

    @abc.abstractmethod
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
        """Store (or replace) one part, 1 to 10,000. A failed or cut-off body leaves the part as it was.

        Raises:
            NoSuchUpload: no open upload with that id for that key.
            InvalidArgument: the part number is out of range.
            IncompleteBody, EntityTooLarge: as for `put`.
        """

    @abc.abstractmethod
    async def list_parts(self, key: str, upload_id: str) -> tuple[PartInfo, ...]:
        """The parts received so far, by part number.

        Raises:
            NoSuchUpload: no open upload with that id for that key.
        """

    @abc.abstractmethod
    async def complete_multipart(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> ObjectInfo:
        """Join the listed ``(part number, etag)`` parts into the object at ``key`` and close the upload.

        The ETag is S3's: the MD5 of the parts' binary MD5s, ``-`` and the number of parts.

        Raises:
            NoSuchUpload: no open upload with that id for that key.
            InvalidPartOrder: the part numbers are not strictly ascending.
            InvalidPart: a part was not received, or its etag differs.
            EntityTooSmall: a part but the last is under `min_part_size`.
        """

    @abc.abstractmethod
    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Close the upload and drop its parts.

        Raises:
            NoSuchUpload: no open upload with that id for that key.
        """

    @abc.abstractmethod
    async def list_multipart_uploads(self, prefix: str = "") -> tuple[MultipartUpload, ...]:
        """Open multipart uploads under ``prefix``, by key then initiation."""

    @abc.abstractmethod
    async def sweep_temp(self, older_than_seconds: float) -> int:
        """Remove leftovers of interrupted writes older than the given age; returns how many."""

    @abc.abstractmethod
    async def check(self) -> None:
        """Readiness: return when the store is reachable and writable.

        Raises:
            ServiceUnavailable: it is not.
        """


def check_content_type(content_type: str | None) -> str:
    """The content type to store; raises InvalidArgument if it cannot travel in a header."""
    if not content_type:
        return DEFAULT_CONTENT_TYPE
    if len(content_type) > 255 or not _printable_ascii(content_type):
        raise InvalidArgument("the content type must be printable ASCII, at most 255 characters")
    return content_type


def check_metadata(metadata: Mapping[str, str] | None, *, unicode_values: bool = False) -> dict[str, str]:
    """User metadata with lower-cased names; raises InvalidArgument if S3 would refuse it.

    Values are printable ASCII, or with ``unicode_values`` any text without control characters
    (S3 keeps non-ASCII values as the Unicode text given; they travel RFC 2047 encoded). The 2 KiB
    limit counts names and values in UTF-8 bytes, as S3 does.
    """
    if not metadata:
        return {}
    clean: dict[str, str] = {}
    total = 0
    for name, value in metadata.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidArgument("metadata names and values must be strings")
        if _TOKEN.fullmatch(name) is None:
            raise InvalidArgument(f"metadata name {name!r} is not an HTTP token")
        if unicode_values:
            if _CONTROL_OR_SURROGATE.search(value) is not None:
                raise InvalidArgument(f"metadata value for {name!r} has a control character")
        elif not _printable_ascii(value):
            raise InvalidArgument(f"metadata value for {name!r} must be printable ASCII")
        lower = name.lower()
        if lower in clean:
            raise InvalidArgument(f"metadata name {lower!r} given twice")
        clean[lower] = value
        total += len(lower) + len(value.encode())
    if total > MAX_METADATA_BYTES:
        raise InvalidArgument(f"metadata is {total} bytes; the limit is {MAX_METADATA_BYTES}")
    return clean


def check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The headers to store with an object: `STORED_HEADERS` only (lower-cased names), each a
    printable ASCII value of at most 1024 characters; empty ones are left out.

    Raises:
        InvalidArgument: another header, or a value that cannot travel in a header.
    """
    clean: dict[str, str] = {}
    for name, value in (headers or {}).items():
        lower = name.lower()
        if lower not in STORED_HEADERS:
            raise InvalidArgument(f"{name} is not a header objects are stored with")
        if len(value) > 1024 or not _printable_ascii(value):
            raise InvalidArgument(f"{name} must be printable ASCII, at most 1024 characters")
        if value.strip():
            clean[lower] = value.strip()
    return clean


def check_part_number(part_number: int) -> int:
    """A valid part number (1 to 10,000), or InvalidArgument."""
    if not 1 <= part_number <= MAX_PARTS:
        raise InvalidArgument(f"partNumber must be between 1 and {MAX_PARTS}")
    return part_number


def check_part_list(parts: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
    """The completion list with quotes dropped from ETags; refuses an empty or unordered one."""
    if not parts:
        raise InvalidArgument("a multipart upload completes with at least one part")
    if len(parts) > MAX_PARTS:
        raise InvalidArgument(f"at most {MAX_PARTS} parts")
    clean: list[tuple[int, str]] = []
    previous = 0
    for number, etag in parts:
        check_part_number(number)
        if number <= previous:
            raise InvalidPartOrder("the parts must be listed in ascending order of part number, each once")
        previous = number
        clean.append((number, etag.strip().strip('"').lower()))
    return clean


def multipart_etag(part_md5s: Sequence[bytes]) -> str:
    """S3's ETag of a multipart object: the MD5 of the parts' binary MD5s, ``-`` and their count."""
    joined = hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest()
    return f"{joined}-{len(part_md5s)}"


def check_limit(limit: int) -> int:
    """A valid page size, or InvalidArgument."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidArgument(f"limit must be between 1 and {MAX_LIST_LIMIT}")
    return limit


def resolve_range(byte_range: ByteRange | None, size: int) -> tuple[int, int] | None:
    """The inclusive ``(first, last)`` bytes to serve from an object of ``size`` bytes.

    Raises:
        InvalidRange: nothing of the object falls in the range.
        InvalidArgument: the end is before the start.
    """
    if byte_range is None:
        return None
    start, end = byte_range
    if start < 0:
        if end is not None:
            raise InvalidArgument("a suffix range has no end")
        if size == 0:
            raise InvalidRange("the object is empty")
        return max(0, size + start), size - 1
    if end is not None and end < start:
        raise InvalidArgument("the range ends before it starts")
    if start >= size:
        raise InvalidRange(f"the range starts at {start}; the object has {size} bytes")
    last = size - 1 if end is None else min(end, size - 1)
    return start, last


class BodyMeter:
    """Counts a body's bytes against its declared length and the size limit, as they arrive."""

    def __init__(self, content_length: int | None, max_size: int | None) -> None:
        if content_length is not None and content_length < 0:
            raise InvalidArgument("content length is negative")
        if content_length is not None and max_size is not None and content_length > max_size:
            raise EntityTooLarge(f"the body is {content_length} bytes; the limit is {max_size}")
        self.content_length = content_length
        self.max_size = max_size
        self.total = 0

    def add(self, chunk: bytes) -> None:
        """Count ``chunk``; raise as soon as the body is too long."""
        self.total += len(chunk)
        if self.content_length is not None and self.total > self.content_length:
            raise IncompleteBody(f"the body is longer than its declared {self.content_length} bytes")
        if self.max_size is not None and self.total > self.max_size:
            raise EntityTooLarge(f"the body is over the limit of {self.max_size} bytes")

    def finish(self) -> None:
        """The body ended: raise if it is shorter than declared."""
        if self.content_length is not None and self.total != self.content_length:
            raise IncompleteBody(
                f"the body has {self.total} bytes; {self.content_length} were declared",
            )


def _printable_ascii(value: str) -> bool:
    return all(0x20 <= ord(ch) <= 0x7E for ch in value)
