"""Multipart uploads on local disk: parts as files beside the spool, joined at completion.

Layout::

    <root>/multipart/<upload id>/upload.json     the key, content type, metadata, initiation time
    <root>/multipart/<upload id>/<n>.<md5 hex>   part n's bytes, renamed in whole once received

The upload id is 32 random hex digits and is checked to be exactly that before it names a
directory. A part is streamed into ``tmp/`` (MD5 beside the write, as a put is) and renamed into
the upload's directory only when all of it arrived: a cut-off body never replaces a part already
received, and a re-sent part (resume) replaces the earlier one only once it is whole. Completion
copies the listed parts, in order, into one version file (``copy_file_range``: no bytes through
Python) and commits it like any put; the upload's directory then goes to the reaper.
"""

from __future__ import annotations

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

UPLOAD_FILE: Final = "upload.json"
_ID: Final = re.compile(r"[0-9a-f]{32}")
_PART: Final = re.compile(r"([0-9]{1,5})\.([0-9a-f]{32})")
_COPY_CHUNK: Final = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class OpenUpload:
    key: str
    content_type: str
    metadata: Mapping[str, str]
    initiated: float
    directory: Path


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

    def place(self, upload: OpenUpload, part_number: int, data: Path, etag: str) -> PartInfo:
        """Move a fully received part file in, replacing an earlier copy of the part."""
        target = upload.directory / f"{part_number}.{etag}"
        try:
            os.rename(data, target)
        except FileNotFoundError:
            data.unlink(missing_ok=True)
            raise NoSuchUpload("the multipart upload was completed or aborted meanwhile") from None
        for name in os.listdir(upload.directory):
            match = _PART.fullmatch(name)
            if match is not None and int(match[1]) == part_number and name != target.name:
                (upload.directory / name).unlink(missing_ok=True)
        stat = target.stat()
        return PartInfo(part_number, etag, stat.st_size, stat.st_mtime)

    def parts(self, upload: OpenUpload) -> dict[int, PartInfo]:
        found: dict[int, PartInfo] = {}
        for entry in os.scandir(upload.directory):
            match = _PART.fullmatch(entry.name)
            if match is None:
                continue
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue  # replaced by a re-sent copy meanwhile
            number = int(match[1])
            known = found.get(number)
            if known is None or stat.st_mtime >= known.last_modified:
                found[number] = PartInfo(number, match[2], stat.st_size, stat.st_mtime)
        return found

    def join(self, upload: OpenUpload, listed: Sequence[tuple[int, str]], min_part_size: int, data: Path) -> str:
        """Writes the listed parts, in order, to ``data``; returns the multipart ETag."""
        wanted = check_part_list(listed)
        have = self.parts(upload)
        digests: list[bytes] = []
        for index, (number, etag) in enumerate(wanted):
            part = have.get(number)
            if part is None or part.etag != etag:
                raise InvalidPart(f"part {number} was not received with ETag {etag!r}")
            if index < len(wanted) - 1 and part.size < min_part_size:
                raise EntityTooSmall(f"part {number} is {part.size} bytes; all parts but the last need {min_part_size}")
            digests.append(bytes.fromhex(etag))
        fd = os.open(data, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, self._file_mode)
        try:
            for number, etag in wanted:
                _append(fd, upload.directory / f"{number}.{etag}")
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            data.unlink(missing_ok=True)
            raise
        os.close(fd)
        return multipart_etag(digests)

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


def _append(fd: int, source: Path) -> None:
    with source.open("rb") as src:
        size = os.fstat(src.fileno()).st_size
        copied = 0
        try:
            while copied < size:
                n = os.copy_file_range(src.fileno(), fd, min(_COPY_CHUNK, size - copied))
                if n == 0:
                    break
                copied += n
        except OSError:
            src.seek(copied)
            while block := src.read(1 << 20):
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view) :]
            return
        if copied != size:
            raise InvalidPart("a part changed while the upload was being completed")
