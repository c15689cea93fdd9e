"""Generated secrets and the private files they live in (0600, written atomically, never logged)."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import string
from collections.abc import Callable
from pathlib import Path

_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits


def new_access_key_id(prefix: str = "UPD") -> str:
    """An access key id shaped like AWS's: 20 upper-case letters and digits."""
    return prefix + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(20 - len(prefix)))


def new_secret_access_key() -> str:
    """A 40-character secret access key (240 bits), URL- and header-safe."""
    return secrets.token_urlsafe(30)


def new_hmac_key() -> str:
    """A 256-bit key for HMACs (hex)."""
    return secrets.token_hex(32)


def write_private_file(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` with mode 0600: temp file, fsync, rename, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_or_create_json(path: Path, create: Callable[[], dict[str, str]]) -> dict[str, str]:
    """Reads a private JSON file, first creating it from ``create()`` if it does not exist.

    Missing keys (a file from an older version) are filled from ``create()`` and written back.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Several processes may start at once (server workers, `updown worker`): the lock makes the
    # first one create the secrets and the others read them, never two different sets.
    lock_fd = os.open(path.with_name(f".{path.name}.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            current: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            current = {}
        fresh = create()
        missing = {k: v for k, v in fresh.items() if k not in current}
        if missing:
            current.update(missing)
            write_private_file(path, json.dumps(current, indent=2).encode())
        return current
    finally:
        os.close(lock_fd)
