"""Local-disk storage: objects under a root directory, replaced atomically, metadata beside them.

The on-disk layout, the key → path mapping and the commit are ``layout.py``'s; reads are
``reader.py``'s, the offload header ``offload.py``'s, multipart parts ``parts.py``'s.

A put streams into ``tmp/<version>.data`` (MD5 computed beside the write, ``ring.py``), fsyncs it
(``spool.py``) and commits it (`layout.ObjectTree.commit`): a reader sees the old object or the
new one, bytes and metadata together, never a mix or a partial file.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableSequence, Sequence
from pathlib import Path
from typing import ParamSpec, TypeVar

from updown.core.keys import validate_key
from updown.errors import InvalidArgument, NoSuchKey, ServiceUnavailable, UpdownError
from updown.storage.base import (
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
from updown.storage.local.layout import (
    DIR_MODE,
    FILE_MODE,
    META,
    NAME_FILE,
    OBJECT_SUFFIX,
    RETRIES,
    ObjectTree,
    Record,
    copy_durably,
    decode_segment,
    fsync_dir,
    mtime,
    read_record,
    write_durably,
)
from updown.storage.local.offload import Offload
from updown.storage.local.parts import OpenUpload, PartStore
from updown.storage.local.reader import READ_CHUNK, Reader
from updown.storage.local.ring import HashWriteRing, RingPool
from updown.storage.local.spool import SlotFile, SpoolFile, map_os_error

__all__ = ["META", "LocalBackend"]

P = ParamSpec("P")
T = TypeVar("T")

# Looked up in this module at call time: a contract test counts the records a listing reads.
_read_record = read_record


class LocalBackend(StorageBackend):
    """Objects on the local file system under ``root`` (see the module docstring for the layout)."""

    def __init__(
        self,
        root: Path | str,
        *,
        min_part_size: int = MIN_PART_SIZE,
        offload: str = "none",
        offload_prefix: str = "/_updown_objects/",
    ) -> None:
        """``offload``/``offload_prefix``: see `offload.Offload` (``storage.offload`` in the settings).

        Raises:
            ConfigError: an unknown offload mode, or a prefix that is not a URI path ending in ``/``.
        """
        self._tree = ObjectTree(root)
        self._root = self._tree.root
        self._objects = self._tree.objects
        self._tmp = self._tree.tmp
        self._reaper = self._tree.reaper
        self._offload = Offload(offload, offload_prefix, self._objects)
        self._parts = PartStore(self._root / "multipart", self._tmp, file_mode=FILE_MODE, dir_mode=DIR_MODE)
        self._rings = RingPool()
        self.min_part_size = min_part_size

    @property
    def root(self) -> Path:
        """The resolved root directory."""
        return self._root

    def object_dir(self, key: str) -> Path:
        """The directory that holds ``key``'s object, proven to stay under the root.

        Raises:
            InvalidKey: the key fails validation, or its path leaves the root.
        """
        return self._tree.object_dir(key)

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
        temp = self._tmp / f"{version}.data"
        etag = await self._receive(body, meter, await _in_thread(SpoolFile, temp))
        try:
            info = ObjectInfo(clean, meter.total, etag, ctype, meta, time.time(), stored)
            await _in_thread(self._tree.commit, temp, obj_dir, Record(info, version))
            return info
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    async def _receive(self, body: AsyncIterator[bytes], meter: BodyMeter, temp: SpoolFile | SlotFile) -> str:
        """Streams ``body`` durably into ``temp`` with its MD5 computed beside the write; returns
        the MD5. On any failure (or cancellation) ``temp`` is discarded."""
        ring: HashWriteRing | None = None
        try:
            ring = HashWriteRing(temp.write_mapped, pool=self._rings)
            async for chunk in body:
                meter.add(chunk)
                await ring.feed(chunk)
            meter.finish()
            etag = await ring.close()
            ring = None
            await _in_thread(temp.finish)
            return etag
        except BaseException:
            self._abandon(ring, temp)
            raise

    @staticmethod
    def _abandon(ring: HashWriteRing | None, temp: SpoolFile | SlotFile) -> None:
        # Synchronous on purpose: it runs even when the task is being cancelled, and waits at most
        # for the bounded work in flight in the ring's two threads.
        if ring is not None:
            ring.abort()
        temp.discard()

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
                size = min(READ_CHUNK, last - position + 1)
                data: Chunk | None = reader.read_cached(size, position)
                if data is None:
                    data = await _in_thread(reader.read, size, position)
                if not data:
                    raise ServiceUnavailable("an object file is shorter than its record")
                position += len(data)
                yield data

        async def close() -> None:
            reader.close()

        offload = self._offload.header(obj_dir / record.version)
        return ObjectStream(record.info, chunks(), close=close, byte_range=span, offload=offload)

    def _open(self, obj_dir: Path) -> tuple[Record, Reader]:
        for _ in range(RETRIES):
            record = _read_record(obj_dir)
            if record is None:
                raise NoSuchKey()
            try:
                return record, Reader(obj_dir / record.version)
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
        fsync_dir(obj_dir)
        self._reaper.retire(obj_dir / record.version)
        self._tree.prune(obj_dir)

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
                return decode_segment(name)
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
        for _ in range(RETRIES):
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
                    copy_durably(source, data)
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
        self._tree.commit(data, dst_dir, Record(info, version))
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
        meter = BodyMeter(content_length, MAX_PART_SIZE if max_size is None else min(max_size, MAX_PART_SIZE))
        upload, slot = await _in_thread(self._open_part, validate_key(key), upload_id, part_number, content_length)
        if slot is not None:
            etag = await self._receive(body, meter, slot)
            return await _in_thread(self._parts.settle, upload, slot, part_number, etag)
        temp = self._tmp / f"{secrets.token_hex(16)}.part"
        etag = await self._receive(body, meter, await _in_thread(SpoolFile, temp))
        return await _in_thread(self._parts.place, upload, part_number, temp, etag)

    def _open_part(
        self, key: str, upload_id: str, part_number: int, length: int | None
    ) -> tuple[OpenUpload, SlotFile | None]:
        """The upload, and the part's range of its object when the part goes there (`PartStore.claim`)."""
        upload = self._parts.open(key, upload_id)
        return upload, self._parts.claim(upload, part_number, length, self.min_part_size)

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
        self._tree.commit(data, obj_dir, Record(info, version))
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
            if mtime(Path(entry.path)) <= cutoff:
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
                    if name not in (META, current) and mtime(path) <= cutoff:
                        path.unlink(missing_ok=True)
                        removed += 1
            if directory != self._objects and mtime(directory) <= cutoff:
                try:
                    directory.rmdir()  # only succeeds when empty
                except OSError:
                    continue
        return removed

    async def check(self) -> None:
        await _in_thread(self._check)

    def _check(self) -> None:
        probe = self._tmp / f"{secrets.token_hex(8)}.probe"
        write_durably(probe, b"ok")
        probe.unlink()


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
