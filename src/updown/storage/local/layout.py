"""Where the local backend keeps an object on disk, and the durable steps that put it there.

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
is then resolved and must equal itself and lie under the root (`ObjectTree.object_dir`): no
symlink, no ``..``.

A commit (`ObjectTree.commit`) takes a durable data file in ``tmp/``: it writes and fsyncs
``tmp/<version>.meta``, renames the data into the object directory, fsyncs the directory, then
renames the meta over ``meta`` and fsyncs again. The meta rename is the commit: a reader reads
``meta`` and opens the version it names, so it sees the old object or the new one, bytes and
metadata together, never a mix or a partial file. The replaced version goes to the reaper after
the commit (a reader holding it open keeps reading it). A crash before the commit leaves files in
``tmp/``, or an unreferenced version file in an object directory; the temp sweep removes both.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from updown.core.keys import validate_key
from updown.errors import InvalidKey
from updown.storage.base import CHUNK_SIZE, ObjectInfo
from updown.storage.local.reaper import Reaper

META: Final = "meta"
NAME_FILE: Final = "#name"
OBJECT_SUFFIX: Final = "@"
# An empty key segment (``a//b``, ``dir/``): a lone ``%``, which no other segment encodes to.
EMPTY_SEGMENT: Final = "%"
FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700
# A concurrent delete may remove an empty directory between our mkdir and rename; or replace the
# version we were about to open. Both are retried a few times, then reported.
RETRIES: Final = 8
_MAX_SEGMENT_NAME: Final = 200
_SAFE: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


@dataclass(frozen=True, slots=True)
class Record:
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
    def from_json(cls, raw: bytes) -> Record:
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


class ObjectTree:
    """The directories under ``root``: key → object directory, commits, and pruning."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        for directory in (self.root, self.objects, self.tmp):
            directory.mkdir(mode=DIR_MODE, exist_ok=True)
        self.reaper = Reaper(self.tmp)

    def object_dir(self, key: str) -> Path:
        """The directory that holds ``key``'s object, proven to stay under the root.

        Raises:
            InvalidKey: the key fails validation, or its path leaves the root (a symlink planted
                in the tree, say).
        """
        segments = validate_key(key).split("/")
        names = [encode_segment(s) for s in segments]
        names[-1] += OBJECT_SUFFIX
        return self._contain(self.objects.joinpath(*names))

    def _contain(self, path: Path) -> Path:
        # resolve() follows every symlink that exists; equality means there was none (and no
        # `..`), is_relative_to that the result is inside the object tree.
        resolved = path.resolve()
        if resolved != path or not resolved.is_relative_to(self.objects) or resolved == self.objects:
            raise InvalidKey("the key maps outside the storage root")
        return resolved

    def commit(self, data: Path, obj_dir: Path, record: Record) -> None:
        """Makes the durable file ``data`` the object's current version (see the module docstring);
        on failure nothing of it is left."""
        version = record.version
        meta_tmp = self.tmp / f"{version}.meta"
        placed = False
        try:
            write_durably(meta_tmp, record.to_json())
            previous = read_record(obj_dir)
            for attempt in range(RETRIES):
                try:
                    self._make_dirs(obj_dir, record.info.key)
                    os.rename(data, obj_dir / version)
                except FileNotFoundError:
                    if attempt == RETRIES - 1 or not data.exists():
                        raise
                    continue  # a concurrent delete removed the (empty) directory: make it again
                break
            placed = True
            fsync_dir(obj_dir)  # the data's name must be durable before a meta can point to it
            os.rename(meta_tmp, obj_dir / META)
            fsync_dir(obj_dir)
        except BaseException:
            meta_tmp.unlink(missing_ok=True)
            data.unlink(missing_ok=True)
            if placed:
                (obj_dir / version).unlink(missing_ok=True)
            raise
        # The version we saw before committing can never become current again (versions are
        # unique), so removing it is safe whatever other writers did meanwhile.
        if previous is not None and previous.version != version:
            self.reaper.retire(obj_dir / previous.version)

    def _make_dirs(self, obj_dir: Path, key: str) -> None:
        missing: list[Path] = []
        path = obj_dir
        while path != self.objects and not path.is_dir():
            missing.append(path)
            path = path.parent
        for directory in reversed(missing):
            if directory.name.startswith("#") and not directory.name.endswith(OBJECT_SUFFIX):
                depth = len(directory.relative_to(self.objects).parts)
                self._make_named_dir(directory, key.split("/")[depth - 1])
            else:
                try:
                    directory.mkdir(mode=DIR_MODE)
                except FileExistsError:
                    continue
            fsync_dir(directory.parent)

    def _make_named_dir(self, directory: Path, segment: str) -> None:
        """Create a hashed prefix directory with its ``#name`` file in place from the start."""
        staging = self.tmp / f"{secrets.token_hex(16)}.dir"
        staging.mkdir(mode=DIR_MODE)
        write_durably(staging / NAME_FILE, segment.encode())
        fsync_dir(staging)
        try:
            os.rename(staging, directory)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise

    def prune(self, directory: Path) -> None:
        """Remove ``directory`` and its parents while they are empty (never the object root)."""
        while directory != self.objects and directory.is_relative_to(self.objects):
            try:
                directory.rmdir()
            except OSError:
                return  # not empty (or a hashed directory with its #name): stop here
            directory = directory.parent


def encode_segment(segment: str) -> str:
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


def decode_segment(name: str) -> str:
    """Invert `encode_segment` for non-hashed names; ValueError for a name we never make."""
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


def read_record(obj_dir: Path) -> Record | None:
    try:
        raw = (obj_dir / META).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return Record.from_json(raw)


def write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_durably(source: Path, target: Path) -> None:
    with source.open("rb") as src, target.open("xb") as dst:
        os.chmod(target, FILE_MODE)
        shutil.copyfileobj(src, dst, CHUNK_SIZE)
        dst.flush()
        os.fsync(dst.fileno())


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except FileNotFoundError:
        return float("inf")
