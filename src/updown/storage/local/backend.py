"""Local-disk storage: objects under a root directory, replaced atomically, metadata beside them.

Layout (POSIX; ``<root>`` is resolved once, at construction)::

    <root>/tmp/<version>.data, .meta      writes in flight; whatever a crash leaves, sweep_temp removes
    <root>/multipart/<upload id>/         open multipart uploads and their parts (``parts.py``)
    <root>/objects/<seg>/.../<last>@/     one directory per object, one directory level per key segment
        meta                              JSON commit record: key, version, size, etag, type, metadata
        <version>                         that version's bytes (32 hex digits), never modified

Keys never become paths directly. Each segment is encoded so that the result is safe on any
POSIX file system, including case-insensitive ones: ``a-z 0-9 - _ .`` stay, ``A-Z`` become ``!`` +
lower case, every other byte of the UTF-8 becomes ``%xx``, a leading ``.`` is escaped too, and an
empty segment (``a//b``, a folder marker's trailing ``/``) is a lone ``%``. An
encoded segment over 200 characters is replaced by ``#`` + its SHA-256 (a prefix directory named so
holds a ``#name`` file with the segment, for listing). The object directory's ``@`` suffix never
occurs in an encoded segment, so ``a`` (``a@/``) and ``a/b`` (``a/b@/``) coexist. The mapped path
is then resolved and must equal itself and lie under the root (`LocalBackend.object_dir`): no
symlink, no ``..``.

A put streams into ``tmp/<version>.data`` (MD5 computed beside the write), fsyncs it, writes and
fsyncs ``tmp/<version>.meta``, renames the data into the object directory, fsyncs the directory,
then renames the meta over ``meta`` and fsyncs again. The meta rename is the commit: a reader
reads ``meta`` and opens the version it names, so it sees the old object or the new one, bytes
and metadata together, never a mix or a partial file. The replaced version is unlinked after the
commit (a reader holding it open keeps reading it). A crash before the commit leaves files in
``tmp/``, or an unreferenced version file in an object directory; `sweep_temp` removes both.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableSequence, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

from updown.core.keys import validate_key
from updown.errors import (
    InvalidArgument,
    InvalidKey,
    NoSuchKey,
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
    Chunk,
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
    check_part_number,
    resolve_range,
)
from updown.storage.local.parts import PartStore
from updown.storage.local.reaper import Reaper
from updown.storage.local.ring import HashWriteRing
from updown.storage.local.spool import SpoolFile, map_os_error

P = ParamSpec("P")
T = TypeVar("T")

META: Final = "meta"
NAME_FILE: Final = "#name"
OBJECT_SUFFIX: Final = "@"
# An empty key segment (``a//b``, ``dir/``): a lone ``%``, which no other segment encodes to.
EMPTY_SEGMENT: Final = "%"
_MAX_SEGMENT_NAME: Final = 200
_SAFE: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
_FILE_MODE: Final = 0o600
_DIR_MODE: Final = 0o700
# Reads of objects: 256 KiB pieces, read on the event loop when the page cache holds them
# (preadv with RWF_NOWAIT) and in a worker thread when they must come from the disk.
_READ_CHUNK: Final = 256 * 1024
_RWF_NOWAIT: Final = getattr(os, "RWF_NOWAIT", 0)
# EAGAIN: not cached; EOPNOTSUPP/EINVAL: a file system or kernel without RWF_NOWAIT for reads.
_WOULD_BLOCK: Final = frozenset({errno.EAGAIN, errno.EOPNOTSUPP, errno.EINVAL})
# A concurrent delete may remove an empty directory between our mkdir and rename; or replace the
# version we were about to open. Both are retried a few times, then reported.
_RETRIES: Final = 8


@dataclass(frozen=True, slots=True)
class _Record:
    """The content of an object's ``meta`` file."""

    info: ObjectInfo
    version: str

    def to_json(self) -> bytes:
        i = self.info
        doc = {
            "key": i.key,
            "version": self.version,
            "size": i.size,
            "etag": i.etag,
            "contentType": i.content_type,
            "metadata": dict(i.metadata),
            "lastModified": i.last_modified,
        }
        if i.headers:
            doc["headers"] = dict(i.headers)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> _Record:
        doc: dict[str, Any] = json.loads(raw)
        info = ObjectInfo(
            key=str(doc["key"]),
            size=int(doc["size"]),
            etag=str(doc["etag"]),
            content_type=str(doc["contentType"]),
            metadata={str(k): str(v) for k, v in doc["metadata"].items()},
            last_modified=float(doc["lastModified"]),
            headers={str(k): str(v) for k, v in doc.get("headers", {}).items()},
        )
        return cls(info, str(doc["version"]))


class LocalBackend(StorageBackend):
    """Objects on the local file system under ``root`` (see the module docstring for the layout)."""

    def __init__(self, root: Path | str, *, min_part_size: int = MIN_PART_SIZE) -> None:
        self._root = Path(root).resolve()
        self._objects = self._root / "objects"
        self._tmp = self._root / "tmp"
        for directory in (self._root, self._objects, self._tmp):
            directory.mkdir(mode=_DIR_MODE, exist_ok=True)
        self._reaper = Reaper(self._tmp)
        self._parts = PartStore(self._root / "multipart", self._tmp, file_mode=_FILE_MODE, dir_mode=_DIR_MODE)
        self.min_part_size = min_part_size

    @property
    def root(self) -> Path:
        """The resolved root directory."""
        return self._root

    def object_dir(self, key: str) -> Path:
        """The directory that holds ``key``'s object, proven to stay under the root.

        Raises:
            InvalidKey: the key fails validation, or its path leaves the root (a symlink planted
                in the tree, say).
        """
        segments = validate_key(key).split("/")
        names = [_encode_segment(s) for s in segments]
        names[-1] += OBJECT_SUFFIX
        return self._contain(self._objects.joinpath(*names))

    def _contain(self, path: Path) -> Path:
        # resolve() follows every symlink that exists; equality means there was none (and no
        # `..`), is_relative_to that the result is inside the object tree.
        resolved = path.resolve()
        if resolved != path or not resolved.is_relative_to(self._objects) or resolved == self._objects:
            raise InvalidKey("the key maps outside the storage root")
        return resolved

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
        obj_dir = self.object_dir(clean)
        ctype = check_content_type(content_type)
        meta = check_metadata(metadata, unicode_values=True)
        stored = check_headers(headers)
        meter = BodyMeter(content_length, max_size)
        version = secrets.token_hex(16)
        temp, etag = await self._receive(body, meter, self._tmp / f"{version}.data")
        try:
            info = ObjectInfo(clean, meter.total, etag, ctype, meta, time.time(), stored)
            await _in_thread(self._commit, temp, obj_dir, _Record(info, version))
            return info
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    async def _receive(self, body: AsyncIterator[bytes], meter: BodyMeter, path: Path) -> tuple[Path, str]:
        """Streams ``body`` into a durable file at ``path`` with its MD5 computed beside the write;
        on any failure (or cancellation) the file is gone."""
        temp = await _in_thread(SpoolFile, path)
        ring: HashWriteRing | None = None
        try:
            ring = HashWriteRing(temp.write_mapped)
            async for chunk in body:
                meter.add(chunk)
                await ring.feed(chunk)
            meter.finish()
            etag = await ring.close()
            ring = None
            await _in_thread(temp.finish)
            return temp.path, etag
        except BaseException:
            self._abandon(ring, temp)
            raise

    @staticmethod
    def _abandon(ring: HashWriteRing | None, temp: SpoolFile) -> None:
        # Synchronous on purpose: it runs even when the task is being cancelled, and waits at most
        # for the bounded work in flight in the ring's two threads.
        if ring is not None:
            ring.abort()
        temp.discard()

    def _commit(self, data: Path, obj_dir: Path, record: _Record) -> None:
        version = record.version
        meta_tmp = self._tmp / f"{version}.meta"
        placed = False
        try:
            _write_durably(meta_tmp, record.to_json())
            previous = _read_record(obj_dir)
            for attempt in range(_RETRIES):
                try:
                    self._make_dirs(obj_dir, record.info.key)
                    os.rename(data, obj_dir / version)
                except FileNotFoundError:
                    if attempt == _RETRIES - 1 or not data.exists():
                        raise
                    continue  # a concurrent delete removed the (empty) directory: make it again
                break
            placed = True
            _fsync_dir(obj_dir)  # the data's name must be durable before a meta can point to it
            os.rename(meta_tmp, obj_dir / META)
            _fsync_dir(obj_dir)
        except BaseException:
            meta_tmp.unlink(missing_ok=True)
            data.unlink(missing_ok=True)
            if placed:
                (obj_dir / version).unlink(missing_ok=True)
            raise
        # The version we saw before committing can never become current again (versions are
        # unique), so removing it is safe whatever other writers did meanwhile.
        if previous is not None and previous.version != version:
            self._reaper.retire(obj_dir / previous.version)

    def _make_dirs(self, obj_dir: Path, key: str) -> None:
        missing: list[Path] = []
        path = obj_dir
        while path != self._objects and not path.is_dir():
            missing.append(path)
            path = path.parent
        for directory in reversed(missing):
            if directory.name.startswith("#") and not directory.name.endswith(OBJECT_SUFFIX):
                depth = len(directory.relative_to(self._objects).parts)
                self._make_named_dir(directory, key.split("/")[depth - 1])
            else:
                try:
                    directory.mkdir(mode=_DIR_MODE)
                except FileExistsError:
                    continue
            _fsync_dir(directory.parent)

    def _make_named_dir(self, directory: Path, segment: str) -> None:
        """Create a hashed prefix directory with its ``#name`` file in place from the start."""
        staging = self._tmp / f"{secrets.token_hex(16)}.dir"
        staging.mkdir(mode=_DIR_MODE)
        _write_durably(staging / NAME_FILE, segment.encode())
        _fsync_dir(staging)
        try:
            os.rename(staging, directory)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise

    async def get(self, key: str, *, byte_range: ByteRange | None = None) -> ObjectStream:
        obj_dir = self.object_dir(key)
        record, reader = await _in_thread(self._open, obj_dir)
        try:
            span = resolve_range(byte_range, record.info.size)
        except UpdownError:
            reader.close()
            raise
        first, last = span if span is not None else (0, record.info.size - 1)

        async def chunks() -> AsyncIterator[Chunk]:
            position = first
            while position <= last:
                size = min(_READ_CHUNK, last - position + 1)
                data: Chunk | None = reader.read_cached(size, position)
                if data is None:
                    data = await _in_thread(reader.read, size, position)
                if not data:
                    raise ServiceUnavailable("an object file is shorter than its record")
                position += len(data)
                yield data

        async def close() -> None:
            reader.close()

        return ObjectStream(record.info, chunks(), close=close, byte_range=span)

    def _open(self, obj_dir: Path) -> tuple[_Record, _Reader]:
        for _ in range(_RETRIES):
            record = _read_record(obj_dir)
            if record is None:
                raise NoSuchKey()
            try:
                return record, _Reader(obj_dir / record.version)
            except FileNotFoundError:
                continue  # replaced between reading meta and opening: read meta again
        raise ServiceUnavailable("the object kept changing while being opened")

    async def head(self, key: str) -> ObjectInfo:
        obj_dir = self.object_dir(key)
        record = await _in_thread(_read_record, obj_dir)
        if record is None:
            raise NoSuchKey()
        return record.info

    async def delete(self, key: str) -> None:
        obj_dir = self.object_dir(key)
        await _in_thread(self._delete, obj_dir)

    def _delete(self, obj_dir: Path) -> None:
        record = _read_record(obj_dir)
        if record is None:
            return
        try:
            os.unlink(obj_dir / META)
        except FileNotFoundError:
            return  # a concurrent delete won
        _fsync_dir(obj_dir)
        self._reaper.retire(obj_dir / record.version)
        self._prune(obj_dir)

    def _prune(self, directory: Path) -> None:
        """Remove ``directory`` and its parents while they are empty (never the object root)."""
        while directory != self._objects and directory.is_relative_to(self._objects):
            try:
                directory.rmdir()
            except OSError:
                return  # not empty (or a hashed directory with its #name): stop here
            directory = directory.parent

    async def list(
        self,
        prefix: str = "",
        *,
        limit: int = MAX_LIST_LIMIT,
        continuation_token: str | None = None,
        delimiter: str | None = None,
        start_after: str | None = None,
    ) -> ListPage:
        check_limit(limit)
        after = _decode_token(continuation_token) if continuation_token else (start_after or None)
        return await _in_thread(self._list, prefix, limit, after, delimiter or None)

    def _list(self, prefix: str, limit: int, after: str | None, delimiter: str | None) -> ListPage:
        """One page; a common prefix found is handed to the walk as ``skip``, which then leaves
        the rest of it unvisited: listing ``a/`` with delimiter ``/`` reads one object per
        sub-directory, however many are below it."""
        items: list[ObjectSummary] = []
        prefixes: list[str] = []
        skip: list[str] = []
        last = ""
        for key, obj_dir in self._walk(self._objects, "", prefix, after, skip):
            record = _read_record(obj_dir)
            if record is None or record.info.key != key:
                continue  # deleted meanwhile
            common = None
            if delimiter is not None and (at := key.find(delimiter, len(prefix))) >= 0:
                common = key[: at + len(delimiter)]
                skip[:] = [common]
                if after is not None and common <= after:
                    continue  # listed before (the continuation token or marker names it)
            if len(items) + len(prefixes) == limit:
                return ListPage(tuple(items), _encode_token(last), tuple(prefixes))
            if common is not None:
                prefixes.append(common)
                last = common
                continue
            i = record.info
            items.append(ObjectSummary(i.key, i.size, i.etag, i.last_modified))
            last = key
        return ListPage(tuple(items), None, tuple(prefixes))

    def _walk(
        self, directory: Path, base: str, prefix: str, after: str | None, skip: MutableSequence[str]
    ) -> Iterator[tuple[str, Path]]:
        """Yield ``(key, object dir)`` under ``directory`` (keys starting with ``base``) in key order.

        Python compares str by code point, which is the UTF-8 byte order S3 lists in. Objects sort
        as their segment, prefix directories as segment + "/": every key below a prefix
        directory starts with that, so a depth-first walk in this order yields keys in order.
        Keys starting with ``skip[0]`` (set by the consumer between items) are not yielded, and
        directories wholly inside it are not entered.
        """
        children: list[tuple[str, bool, Path]] = []
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            is_object = entry.name.endswith(OBJECT_SUFFIX)
            segment = self._segment_name(Path(entry.path), is_object)
            if segment is None:
                continue
            children.append((base + segment + ("" if is_object else "/"), is_object, Path(entry.path)))
        children.sort()
        for name, is_object, path in children:
            if skip and name.startswith(skip[0]):
                continue
            if is_object:
                if name.startswith(prefix) and (after is None or name > after):
                    yield name, path
                continue
            if not (name.startswith(prefix) or prefix.startswith(name)):
                continue
            if after is not None and not after.startswith(name) and name < after:
                continue  # every key below sorts before `after`
            yield from self._walk(path, name, prefix, after, skip)

    def _segment_name(self, path: Path, is_object: bool) -> str | None:
        name = path.name[:-1] if is_object else path.name
        if not name.startswith("#"):
            try:
                return _decode_segment(name)
            except ValueError:
                return None  # not one of ours
        try:
            if is_object:
                record = _read_record(path)
                return None if record is None else record.info.key.rsplit("/", 1)[-1]
            return (path / NAME_FILE).read_bytes().decode()
        except (OSError, UnicodeDecodeError):
            return None

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        src_dir = self.object_dir(src)
        clean = validate_key(dst)
        dst_dir = self.object_dir(clean)
        meta = None if metadata is None else check_metadata(metadata, unicode_values=True)
        ctype = None if content_type is None else check_content_type(content_type)
        stored = None if headers is None else check_headers(headers)
        return await _in_thread(self._copy, src_dir, clean, dst_dir, (meta, ctype, stored))

    def _copy(
        self,
        src_dir: Path,
        dst: str,
        dst_dir: Path,
        replace: tuple[dict[str, str] | None, str | None, dict[str, str] | None],
    ) -> ObjectInfo:
        metadata, content_type, headers = replace
        version = secrets.token_hex(16)
        data = self._tmp / f"{version}.data"
        for _ in range(_RETRIES):
            record = _read_record(src_dir)
            if record is None:
                raise NoSuchKey()
            source = src_dir / record.version
            try:
                # Versions are immutable, so a hard link is a complete, instant copy.
                os.link(source, data)
            except FileNotFoundError:
                continue  # replaced meanwhile
            except OSError:
                try:
                    _copy_durably(source, data)
                except FileNotFoundError:
                    data.unlink(missing_ok=True)
                    continue
            break
        else:
            raise ServiceUnavailable("the source kept changing while being copied")
        src_info = record.info
        info = ObjectInfo(
            dst,
            src_info.size,
            src_info.etag,
            src_info.content_type if content_type is None else content_type,
            src_info.metadata if metadata is None else metadata,
            time.time(),
            src_info.headers if headers is None else headers,
        )
        self._commit(data, dst_dir, _Record(info, version))
        return info

    async def create_multipart(
        self,
        key: str,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        cache_control: str | None = None,
    ) -> str:
        clean = validate_key(key)
        self.object_dir(clean)
        meta = check_metadata(metadata, unicode_values=True)
        return await _in_thread(self._parts.create, clean, check_content_type(content_type), meta)

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
        check_part_number(part_number)
        upload = await _in_thread(self._parts.open, validate_key(key), upload_id)
        meter = BodyMeter(content_length, MAX_PART_SIZE if max_size is None else min(max_size, MAX_PART_SIZE))
        temp, etag = await self._receive(body, meter, self._tmp / f"{secrets.token_hex(16)}.part")
        return await _in_thread(self._parts.place, upload, part_number, temp, etag)

    async def list_parts(self, key: str, upload_id: str) -> tuple[PartInfo, ...]:
        upload = await _in_thread(self._parts.open, validate_key(key), upload_id)
        found = await _in_thread(self._parts.parts, upload)
        return tuple(found[n] for n in sorted(found))

    async def complete_multipart(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> ObjectInfo:
        clean = validate_key(key)
        obj_dir = self.object_dir(clean)
        return await _in_thread(self._complete, clean, obj_dir, upload_id, parts)

    def _complete(self, key: str, obj_dir: Path, upload_id: str, parts: Sequence[tuple[int, str]]) -> ObjectInfo:
        upload = self._parts.open(key, upload_id)
        version = secrets.token_hex(16)
        data = self._tmp / f"{version}.data"
        etag = self._parts.join(upload, parts, self.min_part_size, data)
        info = ObjectInfo(key, data.stat().st_size, etag, upload.content_type, upload.metadata, time.time())
        self._commit(data, obj_dir, _Record(info, version))
        self._parts.discard(upload)
        return info

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        upload = await _in_thread(self._parts.open, validate_key(key), upload_id)
        await _in_thread(self._parts.discard, upload)

    async def list_multipart_uploads(self, prefix: str = "") -> tuple[MultipartUpload, ...]:
        return tuple(await _in_thread(self._parts.uploads, prefix))

    async def sweep_temp(self, older_than_seconds: float) -> int:
        cutoff = time.time() - older_than_seconds
        return await _in_thread(self._sweep, cutoff) + await _in_thread(self._parts.sweep, cutoff)

    def _sweep(self, cutoff: float) -> int:
        removed = 0
        for entry in os.scandir(self._tmp):
            if _mtime(Path(entry.path)) <= cutoff:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    Path(entry.path).unlink(missing_ok=True)
                removed += 1
        # Unreferenced versions (a crash between placing the data and the commit) and empty
        # directories left in the object tree. A full walk: this is maintenance, not a hot path.
        for dirpath, _dirnames, filenames in os.walk(self._objects, topdown=False):
            directory = Path(dirpath)
            if directory.name.endswith(OBJECT_SUFFIX):
                record = _read_record(directory)
                current = None if record is None else record.version
                for name in filenames:
                    path = directory / name
                    if name not in (META, current) and _mtime(path) <= cutoff:
                        path.unlink(missing_ok=True)
                        removed += 1
            if directory != self._objects and _mtime(directory) <= cutoff:
                try:
                    directory.rmdir()  # only succeeds when empty
                except OSError:
                    continue
        return removed

    async def check(self) -> None:
        await _in_thread(self._check)

    def _check(self) -> None:
        probe = self._tmp / f"{secrets.token_hex(8)}.probe"
        _write_durably(probe, b"ok")
        probe.unlink()


class _Reader:
    """One open version file; reads by offset, so no shared position between threads."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._open = True

    def read(self, size: int, offset: int) -> bytes:
        with self._lock:
            if not self._open:
                return b""
            return os.pread(self._fd, size, offset)

    def read_cached(self, size: int, offset: int) -> bytearray | None:
        """Reads only what the page cache already holds, without blocking: None when the bytes
        would have to come from the disk (then `read` them in a thread).

        Returns the ``bytearray`` read into: turning it into ``bytes`` would copy every piece
        again, which halved a bare granian app's download rate here (2.0 -> 1.0 GiB/s).
        """
        if not _RWF_NOWAIT:
            return None
        buf = bytearray(size)
        with self._lock:
            if not self._open:
                return bytearray()
            try:
                n = os.preadv(self._fd, [buf], offset, _RWF_NOWAIT)
            except OSError as exc:
                if exc.errno in _WOULD_BLOCK:
                    return None
                raise map_os_error(exc) from exc
        if n == 0:
            return None  # nothing cached here (or the end of the file): let `read` tell which
        if n < size:
            del buf[n:]
        return buf

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._open = False
                os.close(self._fd)


def _encode_segment(segment: str) -> str:
    if not segment:
        return EMPTY_SEGMENT  # a//b, or a folder marker's trailing /
    out: list[str] = []
    for ch in segment:
        if ch in _SAFE:
            out.append(ch)
        elif "A" <= ch <= "Z":
            out.append("!" + ch.lower())
        else:
            out.extend(f"%{b:02x}" for b in ch.encode())
    name = "".join(out)
    if name.startswith("."):
        name = "%2e" + name[1:]
    if len(name) > _MAX_SEGMENT_NAME:
        name = "#" + hashlib.sha256(segment.encode()).hexdigest()
    return name


def _decode_segment(name: str) -> str:
    """Invert `_encode_segment` for non-hashed names; ValueError for a name we never make."""
    if name == EMPTY_SEGMENT:
        return ""
    out = bytearray()
    i = 0
    while i < len(name):
        ch = name[i]
        if ch in _SAFE:
            out += ch.encode()
            i += 1
        elif ch == "!" and i + 1 < len(name) and "a" <= name[i + 1] <= "z":
            out += name[i + 1].upper().encode()
            i += 2
        elif ch == "%" and _is_hex(name[i + 1 : i + 3]):
            out.append(int(name[i + 1 : i + 3], 16))
            i += 3
        else:
            raise ValueError(name)
    return out.decode()


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdef" for c in text)


def _read_record(obj_dir: Path) -> _Record | None:
    try:
        raw = (obj_dir / META).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return _Record.from_json(raw)


def _write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_durably(source: Path, target: Path) -> None:
    with source.open("rb") as src, target.open("xb") as dst:
        os.chmod(target, _FILE_MODE)
        shutil.copyfileobj(src, dst, CHUNK_SIZE)
        dst.flush()
        os.fsync(dst.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        return raw.decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument("the continuation token is invalid") from exc


async def _in_thread(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking file work in a thread; OSError becomes ours (details stay out: no paths)."""
    try:
        return await asyncio.to_thread(func, *args, **kwargs)
    except OSError as exc:
        raise map_os_error(exc) from exc
