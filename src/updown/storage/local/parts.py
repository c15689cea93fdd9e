"""Multipart uploads on local disk: parts written where the object needs them, joined at completion.

Layout::

    <root>/multipart/<upload id>/upload.json          the key, content type, metadata, initiation time
    <root>/multipart/<upload id>/object               the object being assembled (sparse until complete)
    <root>/multipart/<upload id>/slots -> <size>      the part size of ``object``'s ranges (a symlink)
    <root>/multipart/<upload id>/<n>.claim            part n is being written into its range
    <root>/multipart/<upload id>/<n>.<md5>.<size>     part n received whole in its range of ``object``
    <root>/multipart/<upload id>/<n>.<md5>            part n received whole in a file of its own

Clients send every part but the last at one size, so part n of that size belongs at offset
``(n - 1) * size`` of the object. The first part that can (its length declared, a whole number of
blocks, at least the minimum part size) fixes that size for the upload (``slots``, made once,
atomically); a part of that size then claims its range (``<n>.claim``, made exclusively, and only
while no part n is settled in the range) and is streamed straight into ``object`` there (MD5 beside
the write, as a put is), fsynced, and settled: the claim is renamed to its ``<n>.<md5>.<size>``
name. Every other part (the last, a part of another size, a re-sent part whose range is taken, a
body of unknown length) is streamed into ``tmp/`` and renamed into the upload's directory whole.
Either way a cut-off body never replaces a part already received, and the part received last wins:
settling or placing a part removes the other names of its number.

Completion takes ``object`` first (a rename into ``tmp/``, then the exclusive lock that fences
writers still in their ranges, `spool.SlotFile`), then checks the listed parts. When they are
parts 1..K and all but the last of the common size (what clients send), the parts already in
their ranges stay where they are: only the parts in files of their own (usually just the last) are
copied in (``copy_file_range``: no bytes through Python), the file is cut to its size and fsynced,
and that file is the new version. Otherwise the listed parts are copied, in order, into a new file.
A refused completion gives ``object`` back. The ETag is computed from the parts' MD5s, already known.
Uploads made before ``object`` existed complete by copying.

The upload id is 32 random hex digits and is checked to be exactly that before it names a
directory. A crash leaves nothing visible: a claim without its settled name is never a part, and
a completion that died after taking ``object`` leaves its parts unlisted (their bytes went with it
into ``tmp/``, which the sweep clears); the upload itself is reclaimed by the cleanup.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from updown.errors import EntityTooSmall, InvalidPart, NoSuchUpload
from updown.storage.base import MultipartUpload, PartInfo, check_part_list, multipart_etag
from updown.storage.local.spool import SlotFile

UPLOAD_FILE: Final = "upload.json"
OBJECT_FILE: Final = "object"
SLOTS_LINK: Final = "slots"
_ID: Final = re.compile(r"[0-9a-f]{32}")
_PART: Final = re.compile(r"([0-9]{1,5})\.([0-9a-f]{32})")
_PLACED: Final = re.compile(r"([0-9]{1,5})\.([0-9a-f]{32})\.([0-9]{1,16})")
_COPY_CHUNK: Final = 64 * 1024 * 1024
# Ranges are whole blocks, so that O_DIRECT writes stay aligned (4096 covers 512 too).
_BLOCK: Final = 4096
# S3's largest object: a range ending past it is written as a file of its own.
_MAX_END: Final = 5 * 1024**4


@dataclass(frozen=True, slots=True)
class OpenUpload:
    key: str
    content_type: str
    metadata: Mapping[str, str]
    initiated: float
    directory: Path


@dataclass(frozen=True, slots=True)
class _Received:
    """A part as received: in a file of its own (``path``), or in its range of ``object``."""

    info: PartInfo
    path: Path | None

    @property
    def offset(self) -> int:
        return (self.info.part_number - 1) * self.info.size


class PartStore:
    """The ``multipart/`` directory of a local backend (blocking calls: run them in a thread)."""

    def __init__(self, root: Path, tmp: Path, *, file_mode: int, dir_mode: int) -> None:
        self.root = root
        self.tmp = tmp
        self._file_mode = file_mode
        self._dir_mode = dir_mode
        root.mkdir(mode=dir_mode, exist_ok=True)

    def create(self, key: str, content_type: str, metadata: Mapping[str, str]) -> str:
        upload_id = secrets.token_hex(16)
        staging = self.tmp / f"{upload_id}.mpu"
        staging.mkdir(mode=self._dir_mode)
        doc = {"key": key, "contentType": content_type, "metadata": dict(metadata), "initiated": time.time()}
        (staging / UPLOAD_FILE).write_text(json.dumps(doc, ensure_ascii=False))
        os.chmod(staging / UPLOAD_FILE, self._file_mode)
        # Made here and only here: a completion takes it, so no part can start a new one meanwhile.
        os.close(os.open(staging / OBJECT_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, self._file_mode))
        os.rename(staging, self.root / upload_id)
        return upload_id

    def open(self, key: str, upload_id: str) -> OpenUpload:
        """The open upload, or NoSuchUpload (also for an id of another key, or one we never make)."""
        if _ID.fullmatch(upload_id) is None:
            raise NoSuchUpload("no such multipart upload")
        directory = self.root / upload_id
        found = self._read(directory)
        if found is None or found.key != key:
            raise NoSuchUpload("no such multipart upload")
        return found

    def _read(self, directory: Path) -> OpenUpload | None:
        try:
            doc = json.loads((directory / UPLOAD_FILE).read_bytes())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        return OpenUpload(
            str(doc["key"]),
            str(doc["contentType"]),
            {str(k): str(v) for k, v in doc["metadata"].items()},
            float(doc["initiated"]),
            directory,
        )

    def claim(self, upload: OpenUpload, part_number: int, length: int | None, min_part_size: int) -> SlotFile | None:
        """Part ``part_number``'s range of the object, to write the part into; None when the part
        goes to a file of its own (see the module docstring for when).

        Raises:
            NoSuchUpload: the upload was completed or aborted meanwhile.
        """
        if length is None or length < max(min_part_size, _BLOCK) or length % _BLOCK:
            return None
        if part_number * length > _MAX_END:
            return None
        directory = upload.directory
        if self._slot_size(directory, propose=length) != length:
            return None
        claim = directory / f"{part_number}.claim"
        try:
            os.close(os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, self._file_mode))
        except FileExistsError:
            return None  # being written by another upload of the part
        except FileNotFoundError:
            raise NoSuchUpload("the multipart upload was completed or aborted meanwhile") from None
        try:
            # A part settled in the range keeps it until a newer copy of the part replaces it.
            if any(_number(name, _PLACED) == part_number for name in os.listdir(directory)):
                claim.unlink()
                return None
            return SlotFile(directory / OBJECT_FILE, (part_number - 1) * length, length, claim)
        except FileNotFoundError:
            claim.unlink(missing_ok=True)
            return None  # a completion has the object (or the upload predates it): a file of its own
        except BaseException:
            claim.unlink(missing_ok=True)
            raise

    def _slot_size(self, directory: Path, *, propose: int | None = None) -> int | None:
        """The upload's part size, fixed (atomically, once) by the first part that proposes one."""
        link = directory / SLOTS_LINK
        for _ in range(2):
            try:
                return int(os.readlink(link))
            except FileNotFoundError:
                if propose is None:
                    return None
            except (OSError, ValueError):
                return None  # not one of ours: no ranges
            try:
                os.symlink(str(propose), link)
                return propose
            except FileExistsError:
                continue  # another part fixed it first
            except FileNotFoundError:
                raise NoSuchUpload("the multipart upload was completed or aborted meanwhile") from None
        return None

    def settle(self, upload: OpenUpload, slot: SlotFile, part_number: int, etag: str) -> PartInfo:
        """Part ``part_number``, written whole and durably into its range, becomes the part."""
        target = upload.directory / f"{part_number}.{etag}.{slot.size}"
        try:
            os.utime(slot.claim)  # the part's time is when it was received whole
            os.rename(slot.claim, target)
        except FileNotFoundError:
            raise NoSuchUpload("the multipart upload was completed or aborted meanwhile") from None
        return self._replaced(upload, part_number, target, slot.size)

    def place(self, upload: OpenUpload, part_number: int, data: Path, etag: str) -> PartInfo:
        """Move a fully received part file in, replacing an earlier copy of the part."""
        target = upload.directory / f"{part_number}.{etag}"
        try:
            os.rename(data, target)
        except FileNotFoundError:
            data.unlink(missing_ok=True)
            raise NoSuchUpload("the multipart upload was completed or aborted meanwhile") from None
        return self._replaced(upload, part_number, target, None)

    def _replaced(self, upload: OpenUpload, part_number: int, target: Path, size: int | None) -> PartInfo:
        """Removes the other names of part ``part_number`` than ``target``: the part received last wins."""
        for name in os.listdir(upload.directory):
            if name != target.name and (_number(name, _PART) or _number(name, _PLACED)) == part_number:
                (upload.directory / name).unlink(missing_ok=True)
        stat = target.stat()
        return PartInfo(part_number, target.name.split(".")[1], stat.st_size if size is None else size, stat.st_mtime)

    def parts(self, upload: OpenUpload) -> dict[int, PartInfo]:
        return {n: r.info for n, r in self._received(upload, in_object=None).items()}

    def _received(self, upload: OpenUpload, *, in_object: bool | None) -> dict[int, _Received]:
        """Every part received, by number. Parts in ranges count only while ``object`` is there
        (``in_object``: known to be, by a completion holding it; None: look)."""
        directory = upload.directory
        if in_object is None:
            in_object = (directory / OBJECT_FILE).exists()
        found: dict[int, _Received] = {}
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            raise NoSuchUpload("the multipart upload was completed or aborted meanwhile") from None
        for entry in entries:
            own = _PART.fullmatch(entry.name)
            placed = None if own is not None or not in_object else _PLACED.fullmatch(entry.name)
            match = own or placed
            if match is None:
                continue
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue  # replaced by a re-sent copy meanwhile
            number = int(match[1])
            size = stat.st_size if placed is None else int(match[3])
            known = found.get(number)
            if known is None or stat.st_mtime >= known.info.last_modified:
                found[number] = _Received(
                    PartInfo(number, match[2], size, stat.st_mtime), None if placed else Path(entry.path)
                )
        return found

    def join(self, upload: OpenUpload, listed: Sequence[tuple[int, str]], min_part_size: int, data: Path) -> str:
        """Makes ``data`` the object of the listed parts (see the module docstring); returns the
        multipart ETag. On a refusal the upload is as it was."""
        wanted = check_part_list(listed)
        taken = self.tmp / f"{secrets.token_hex(16)}.slots"
        try:
            os.rename(upload.directory / OBJECT_FILE, taken)
        except FileNotFoundError:
            if not upload.directory.is_dir():
                raise NoSuchUpload("the multipart upload was completed or aborted meanwhile") from None
            return self._join_copying(upload, wanted, min_part_size, data, None)
        try:
            fd = os.open(taken, os.O_RDWR | os.O_CLOEXEC)
        except BaseException:
            self._give_back(upload, taken)
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # waits for the writes in progress; later ones see it gone
            try:
                parts = _check(wanted, self._received(upload, in_object=True), min_part_size)
                size = self._slot_size(upload.directory)
                if size is None or not _in_place(parts, size):
                    etag = self._join_copying(upload, wanted, min_part_size, data, fd, parts)
                    taken.unlink(missing_ok=True)
                    return etag
                # Only into ranges whose part was since received as a file of its own (the
                # newer copy wins), so the upload is still whole if this fails.
                for part in parts:
                    if part.path is not None:
                        _copy_in(part.path, fd, part.info.size, (part.info.part_number - 1) * size)
            except BaseException:
                self._give_back(upload, taken)
                raise
            try:
                os.ftruncate(fd, sum(p.info.size for p in parts))
                os.fsync(fd)
                os.rename(taken, data)
            except BaseException:
                taken.unlink(missing_ok=True)  # cut to size: the parts past it are gone, so is the upload's
                raise
            return multipart_etag([bytes.fromhex(p.info.etag) for p in parts])
        finally:
            os.close(fd)

    def _join_copying(
        self,
        upload: OpenUpload,
        wanted: list[tuple[int, str]],
        min_part_size: int,
        data: Path,
        obj_fd: int | None,
        parts: list[_Received] | None = None,
    ) -> str:
        """The listed parts copied, in order, into a new file ``data``; ``obj_fd`` is the taken
        ``object`` (None: the upload has none, so no part is in a range)."""
        if parts is None:
            parts = _check(wanted, self._received(upload, in_object=False), min_part_size)
        fd = os.open(data, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, self._file_mode)
        try:
            for part in parts:
                if part.path is None:
                    assert obj_fd is not None
                    _copy_range(obj_fd, fd, part.info.size, part.offset)
                else:
                    _append(fd, part.path)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            data.unlink(missing_ok=True)
            raise
        os.close(fd)
        return multipart_etag([bytes.fromhex(p.info.etag) for p in parts])

    def _give_back(self, upload: OpenUpload, taken: Path) -> None:
        """A refused completion returns ``object`` to the upload (the same file: writers fenced
        out by the take see it theirs again)."""
        with contextlib.suppress(FileNotFoundError):
            os.link(taken, upload.directory / OBJECT_FILE)  # fails if the upload went meanwhile
        taken.unlink(missing_ok=True)

    def discard(self, upload: OpenUpload) -> None:
        """Takes the upload's directory out at once (rename), then removes it."""
        gone = self.tmp / f"{secrets.token_hex(16)}.gone"
        try:
            os.rename(upload.directory, gone)
        except FileNotFoundError:
            return
        shutil.rmtree(gone, ignore_errors=True)

    def uploads(self, prefix: str) -> list[MultipartUpload]:
        out: list[MultipartUpload] = []
        for entry in os.scandir(self.root):
            if _ID.fullmatch(entry.name) is None:
                continue
            found = self._read(Path(entry.path))
            if found is not None and found.key.startswith(prefix):
                out.append(MultipartUpload(found.key, entry.name, found.initiated))
        out.sort(key=lambda u: (u.key, u.initiated))
        return out

    def sweep(self, cutoff: float) -> int:
        """Removes uploads initiated before ``cutoff`` (and directories that are not uploads)."""
        removed = 0
        for entry in os.scandir(self.root):
            found = self._read(Path(entry.path))
            if found is None:
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
            elif found.initiated <= cutoff:
                self.discard(found)
                removed += 1
        return removed


def _number(name: str, pattern: re.Pattern[str]) -> int | None:
    match = pattern.fullmatch(name)
    return None if match is None else int(match[1])


def _check(wanted: list[tuple[int, str]], have: dict[int, _Received], min_part_size: int) -> list[_Received]:
    """The received parts for the completion list, or why not (InvalidPart, EntityTooSmall)."""
    out: list[_Received] = []
    for index, (number, etag) in enumerate(wanted):
        part = have.get(number)
        if part is None or part.info.etag != etag:
            raise InvalidPart(f"part {number} was not received with ETag {etag!r}")
        if index < len(wanted) - 1 and part.info.size < min_part_size:
            raise EntityTooSmall(
                f"part {number} is {part.info.size} bytes; all parts but the last need {min_part_size}"
            )
        out.append(part)
    return out


def _in_place(parts: list[_Received], size: int) -> bool:
    """Whether the object is ``object`` with the parts not yet in their ranges copied in: parts
    1..K, all but the last ``size`` bytes, none of them in a range of another size."""
    for index, part in enumerate(parts):
        info = part.info
        if info.part_number != index + 1:
            return False
        if (index < len(parts) - 1 or part.path is None) and info.size != size:
            return False
    return True


def _copy_in(source: Path, fd: int, size: int, offset: int) -> None:
    with source.open("rb") as src:
        if os.fstat(src.fileno()).st_size != size:
            raise InvalidPart("a part changed while the upload was being completed")
        _copy_range(src.fileno(), fd, size, 0, offset)


def _copy_range(src: int, dst: int, size: int, src_offset: int, dst_offset: int | None = None) -> None:
    """``size`` bytes from ``src_offset`` of ``src`` to ``dst`` (at ``dst_offset``, else at its
    position), in the kernel where it can."""
    copied = 0
    try:
        while copied < size:
            out = None if dst_offset is None else dst_offset + copied
            n = os.copy_file_range(src, dst, min(_COPY_CHUNK, size - copied), src_offset + copied, out)
            if n == 0:
                raise InvalidPart("a part changed while the upload was being completed")
            copied += n
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        while copied < size:
            block = os.pread(src, min(1 << 20, size - copied), src_offset + copied)
            if not block:
                raise InvalidPart("a part changed while the upload was being completed") from None
            view = memoryview(block)
            while view:
                at = None if dst_offset is None else dst_offset + copied
                n = os.write(dst, view) if at is None else os.pwrite(dst, view, at)
                view = view[n:]
                copied += n


def _append(fd: int, source: Path) -> None:
    with source.open("rb") as src:
        _copy_range(src.fileno(), fd, os.fstat(src.fileno()).st_size, 0)
