"""Download offload: the response header that lets a front server send a version file's bytes.

``x-accel-redirect`` (nginx) names the file by URI: ``offload_prefix`` + its path under
``<root>/objects``, percent-encoded (nginx decodes the header once; the encoded segments on disk
contain ``%``, ``!``, ``#`` and ``@``). The front server's ``internal`` location aliases the
object tree, so clients can never ask for that URI themselves. ``x-sendfile`` (Apache
mod_xsendfile, lighttpd) names the absolute path. Either way the path is the one
`layout.ObjectTree.object_dir` proved to stay under the root, and names an immutable version: the
front server sends exactly the bytes the headers describe, or fails to open a version replaced
meanwhile (404), never a mix.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from updown.storage.offload import check_settings


class Offload:
    """Builds the offload header for files under ``objects``; `header` is None when off."""

    def __init__(self, mode: str, prefix: str, objects: Path) -> None:
        check_settings(mode, prefix)
        self.mode = mode
        self._prefix = prefix
        self._objects = objects

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def header(self, path: Path) -> tuple[bytes, bytes] | None:
        """``(name, value)`` for the version file at ``path`` (under the object tree)."""
        if self.mode == "x-accel-redirect":
            relative = path.relative_to(self._objects).as_posix()
            return b"x-accel-redirect", (self._prefix + quote(relative, safe="/")).encode("ascii")
        if self.mode == "x-sendfile":
            return b"x-sendfile", os.fsencode(path)
        return None
