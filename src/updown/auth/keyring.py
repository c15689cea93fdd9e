"""The token signing keyring: private keys as 0600 PEM files under ``<data_dir>/keys/``, rotation, JWKS.

The newest key signs; an older key keeps verifying for ``retire_after`` seconds after a newer one
replaced it (set that to at least the longest token lifetime), then it is dropped. The directory is
the only state, so several server processes share one keyring: each rescans it now and then, and at
once when a token names a kid it does not know yet.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from updown.clock import Clock
from updown.core import jwt
from updown.core.jwt import Algorithm, SigningKey, VerifyingKey
from updown.core.secrets import write_private_file
from updown.errors import ConfigError

DEFAULT_RETIRE_AFTER = 24 * 3600
DEFAULT_REFRESH_INTERVAL = 30.0
# At most one rescan a second for unknown kids, so a flood of made-up kids costs little.
MISS_RESCAN_GAP = 1.0
_NAME = re.compile(r"(?P<created>\d{15})-(?P<kid>[A-Za-z0-9_-]{43})\.pem")


@dataclass(frozen=True)
class KeyEntry:
    """One key of the ring and when it was created (ms since the epoch, from its file name)."""

    key: SigningKey
    created_ms: int


class Keyring:
    """Signing keys on disk. Build it with :meth:`load_or_create`; the methods are cheap to call."""

    def __init__(
        self, directory: Path, clock: Clock, *, alg: Algorithm, retire_after: int, refresh_interval: float
    ) -> None:
        if retire_after <= 0:
            raise ConfigError("key retire_after must be positive (at least the longest token lifetime)")
        self.directory = directory
        self.alg: Algorithm = alg
        self.retire_after = retire_after
        self.refresh_interval = refresh_interval
        self._clock = clock
        self._entries: list[KeyEntry] = []
        self._scanned_at = float("-inf")

    @classmethod
    def load_or_create(
        cls,
        directory: Path | str,
        clock: Clock,
        *,
        alg: Algorithm = "EdDSA",
        retire_after: int = DEFAULT_RETIRE_AFTER,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
    ) -> Keyring:
        """Load the keyring in ``directory``, creating the directory (0700) and a first key (0600) if
        there is none, or a new current key if the configured ``alg`` changed.

        Raises:
            ConfigError: a key file is readable by other users, unreadable, or not named by its kid.
        """
        ring = cls(Path(directory), clock, alg=alg, retire_after=retire_after, refresh_interval=refresh_interval)
        ring._prepare_directory()
        with ring._locked():
            ring._scan()
            if not ring._entries or ring._entries[-1].key.alg != alg:
                ring._add_key()
        return ring

    @property
    def current(self) -> SigningKey:
        """The key that signs new tokens (the newest one)."""
        if self._clock.now() - self._scanned_at >= self.refresh_interval:
            self.reload()
        if not self._entries:
            raise ConfigError("the keys directory has no signing key any more; restart to create one")
        return self._entries[-1].key

    def rotate(self) -> SigningKey:
        """Make a new current key; older ones keep verifying until retired. Returns the new key."""
        with self._locked():
            self._scan()
            key = self._add_key()
            self._delete_retired()
        return key

    def lookup(self, kid: str) -> VerifyingKey | None:
        """The verifying key for ``kid`` if it is live; rescans the directory (rate-limited) on a miss."""
        now = self._clock.now()
        if now - self._scanned_at >= self.refresh_interval:
            self.reload()
        found = self._find(kid)
        if found is None and now - self._scanned_at >= MISS_RESCAN_GAP:
            self.reload()
            found = self._find(kid)
        return found

    def verifying_keys(self) -> list[VerifyingKey]:
        """Every live key, newest first."""
        return [entry.key.verifying for entry in reversed(self._entries)]

    def jwks(self) -> dict[str, Any]:
        """The JWK Set for ``/.well-known/jwks.json``: public members only."""
        return jwt.jwks(self.verifying_keys())

    def reload(self) -> None:
        """Rescan the directory (picks up keys another process added or retired)."""
        with self._locked(shared=True):
            self._scan()

    # --- internals ---------------------------------------------------------------------------------

    def _find(self, kid: str) -> VerifyingKey | None:
        for entry in self._entries:
            if entry.key.kid == kid:
                return entry.key.verifying
        return None

    def _prepare_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.directory.is_symlink() or not self.directory.is_dir():
            raise ConfigError("the keys directory must be a real directory")
        # Only the owner may list, add or remove keys; mkdir's mode is filtered by the umask.
        os.chmod(self.directory, 0o700)

    @contextlib.contextmanager
    def _locked(self, *, shared: bool = False) -> Iterator[None]:
        # One writer at a time across processes, so two servers starting together make one key.
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _scan(self) -> None:
        found: list[KeyEntry] = []
        for path in self.directory.iterdir():
            match = _NAME.fullmatch(path.name)
            if match is None:
                continue
            found.append(KeyEntry(self._read(path, match["kid"]), int(match["created"])))
        found.sort(key=lambda entry: entry.created_ms)
        now_ms = self._clock.now() * 1000
        # A key retires retire_after seconds after its successor was created; the newest never does.
        self._entries = [
            entry
            for i, entry in enumerate(found)
            if i == len(found) - 1 or now_ms < found[i + 1].created_ms + self.retire_after * 1000
        ]
        self._scanned_at = self._clock.now()

    def _read(self, path: Path, kid: str) -> SigningKey:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise ConfigError(f"cannot read signing key {path.name}") from exc
        with os.fdopen(fd, "rb") as f:
            if os.fstat(f.fileno()).st_mode & 0o077:
                raise ConfigError(f"signing key {path.name} is accessible by other users; chmod 600 it")
            key = SigningKey.from_pem(f.read())
        if key.kid != kid:
            raise ConfigError(f"signing key {path.name} does not hold the key its name says")
        return key

    def _add_key(self) -> SigningKey:
        key = SigningKey.generate(self.alg)
        created = int(self._clock.now() * 1000)
        if self._entries and created <= self._entries[-1].created_ms:
            created = self._entries[-1].created_ms + 1  # keep the order strict within one millisecond
        try:
            write_private_file(self.directory / f"{created:015d}-{key.kid}.pem", key.to_pem())
        except OSError as exc:
            raise ConfigError(f"cannot write a signing key into the keys directory: {exc.strerror}") from exc
        self._entries.append(KeyEntry(key, created))
        return key

    def _delete_retired(self) -> None:
        live = {entry.key.kid for entry in self._entries}
        for path in self.directory.iterdir():
            match = _NAME.fullmatch(path.name)
            if match is not None and match["kid"] not in live:
                path.unlink(missing_ok=True)
