"""The token signing keyring: private keys in the ``signing_keys`` table, rotation, JWKS.

The newest key (the highest ``generation``) signs; an older key keeps verifying for
``retire_after`` seconds after a newer one replaced it (set that to at least the longest token
lifetime), then it is dropped. The table is the only state, so every API process, on any machine,
signs and verifies with one ring: each rereads it now and then, and at once (rate-limited) when a
token names a kid it does not know yet. Private keys are sealed with ``auth.key_encryption_key``
when one is set (``auth/sealing.py``).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, inspect, select, update

from updown.auth.sealing import Sealer
from updown.clock import Clock
from updown.core import jwt
from updown.core.jwt import Algorithm, SigningKey, VerifyingKey
from updown.db.engine import Database
from updown.db.models.cluster import SigningKeyRow
from updown.db.upsert import insert_if_absent
from updown.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_RETIRE_AFTER = 24 * 3600
DEFAULT_REFRESH_INTERVAL = 30.0
# At most one reread a second for unknown kids, so a flood of made-up kids costs little.
MISS_RESCAN_GAP = 1.0
# Concurrent rotations each take the next generation; one that lost the race tries again.
_ADD_ATTEMPTS = 5
# The PEM files of keyrings before 0006 (``<data>/keys/<created ms>-<kid>.pem``), imported once.
_LEGACY_NAME = re.compile(r"(?P<created>\d{15})-(?P<kid>[A-Za-z0-9_-]{43})\.pem")


@dataclass(frozen=True)
class KeyEntry:
    """One key of the ring, its place in the order and when it was replaced (None: it signs)."""

    key: SigningKey
    generation: int
    retired_at: float | None


class Keyring:
    """Signing keys in the database. Build it with :meth:`load_or_create`; the methods are cheap to call."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        alg: Algorithm,
        retire_after: int,
        refresh_interval: float,
        sealer: Sealer | None = None,
    ) -> None:
        if retire_after <= 0:
            raise ConfigError("key retire_after must be positive (at least the longest token lifetime)")
        self.database = database
        self.alg: Algorithm = alg
        self.retire_after = retire_after
        self.refresh_interval = refresh_interval
        self._sealer = sealer or Sealer(None)
        self._clock = clock
        self._entries: list[KeyEntry] = []
        self._scanned_at = float("-inf")
        self._known: dict[str, SigningKey] = {}  # kid -> opened key: each row is unsealed once

    @classmethod
    def load_or_create(
        cls,
        database: Database,
        clock: Clock,
        *,
        alg: Algorithm = "EdDSA",
        retire_after: int = DEFAULT_RETIRE_AFTER,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
        sealer: Sealer | None = None,
        import_from: Path | None = None,
    ) -> Keyring:
        """Load the ring, creating the first key if the table has none (the PEM files of
        ``import_from``, a pre-0006 keys directory, when there are any), or a new current key if the
        configured ``alg`` changed. Processes starting together end up with one ring.

        Raises:
            ConfigError: the schema is not migrated, or a stored key does not open or is not the key
                its row names.
        """
        ring = cls(
            database, clock, alg=alg, retire_after=retire_after, refresh_interval=refresh_interval, sealer=sealer
        )
        if not inspect(database.engine).has_table(SigningKeyRow.__tablename__):
            raise ConfigError("the database has no signing_keys table yet: run `updown migrate`")
        ring.reload()
        if not ring._entries and import_from is not None:
            ring._import(import_from)
        for _ in range(_ADD_ATTEMPTS):
            if ring._entries and ring._entries[-1].key.alg == alg:
                break
            # Only the generation after the one we saw: when another process added a key since
            # (two processes starting together), that key is the one we use, not a second one.
            seen = ring._entries[-1].generation if ring._entries else 0
            ring._add(SigningKey.generate(alg), generation=seen + 1)
            ring.reload()
        else:
            raise ConfigError("could not add a signing key: other processes kept adding theirs")
        return ring

    @property
    def current(self) -> SigningKey:
        """The key that signs new tokens (the newest one)."""
        if self._clock.now() - self._scanned_at >= self.refresh_interval:
            self.reload()
        if not self._entries:
            raise ConfigError("the signing_keys table has no signing key any more; restart to create one")
        return self._entries[-1].key

    def rotate(self) -> SigningKey:
        """Make a new current key; older ones keep verifying until retired, then are deleted.
        Every process signs with it within ``refresh_interval``. Returns the new key."""
        key = SigningKey.generate(self.alg)
        for _ in range(_ADD_ATTEMPTS):
            if self._add(key):
                break
        else:
            raise ConfigError("could not add a signing key: other processes kept adding theirs")
        self._delete_retired()
        self.reload()
        return key

    def lookup(self, kid: str) -> VerifyingKey | None:
        """The verifying key for ``kid`` if it is live; rereads the table (rate-limited) on a miss."""
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
        """Reread the table (picks up keys another process added or retired)."""
        with self.database.session() as s:
            rows = s.execute(select(SigningKeyRow).order_by(SigningKeyRow.generation)).scalars().all()
        now = self._clock.now()
        entries = []
        for i, row in enumerate(rows):
            # A key retires retire_after seconds after it was replaced; the newest never does.
            if i < len(rows) - 1 and row.retired_at is not None and now >= row.retired_at + self.retire_after:
                continue
            entries.append(KeyEntry(self._open(row), row.generation, row.retired_at))
        self._entries = entries
        self._scanned_at = now

    # --- internals ---------------------------------------------------------------------------------

    def _find(self, kid: str) -> VerifyingKey | None:
        for entry in self._entries:
            if entry.key.kid == kid:
                return entry.key.verifying
        return None

    def _open(self, row: SigningKeyRow) -> SigningKey:
        known = self._known.get(row.kid)
        if known is not None:
            return known
        pem = self._sealer.open(row.private_key, context=f"signing_key:{row.kid}")
        key = SigningKey.from_pem(pem.encode())
        if key.kid != row.kid or key.alg != row.alg:
            raise ConfigError(f"signing key {row.kid} in the database does not hold the key its row names")
        self._known[row.kid] = key
        if self._sealer.enabled and not Sealer.is_sealed(row.private_key):
            self._seal_in_place(row.kid, pem)
        return key

    def _seal_in_place(self, kid: str, pem: str) -> None:
        # A key stored before auth.key_encryption_key was set is sealed the first time it is read.
        with self.database.session() as s:
            s.execute(
                update(SigningKeyRow)
                .where(SigningKeyRow.kid == kid)
                .values(private_key=self._sealer.seal(pem, context=f"signing_key:{kid}"))
            )

    def _row(self, key: SigningKey, generation: int, created_at: float, retired_at: float | None) -> SigningKeyRow:
        return SigningKeyRow(
            kid=key.kid,
            generation=generation,
            alg=key.alg,
            private_key=self._sealer.seal(key.to_pem().decode("ascii"), context=f"signing_key:{key.kid}"),
            created_at=created_at,
            retired_at=retired_at,
        )

    def _add(self, key: SigningKey, *, generation: int | None = None) -> bool:
        """Adds ``key`` as ``generation`` (default: the next one) and retires the others; False if
        another process took that generation first (nothing changed)."""
        now = self._clock.now()
        with self.database.session() as s:
            if generation is None:
                top = s.execute(select(SigningKeyRow.generation).order_by(SigningKeyRow.generation.desc()).limit(1))
                generation = (top.scalar() or 0) + 1
            if not insert_if_absent(s, self._row(key, generation, now, None), unique="generation"):
                return False
            s.execute(
                update(SigningKeyRow)
                .where(SigningKeyRow.generation < generation, SigningKeyRow.retired_at.is_(None))
                .values(retired_at=now)
            )
        return True

    def _delete_retired(self) -> None:
        cutoff = self._clock.now() - self.retire_after
        with self.database.session() as s:
            s.execute(delete(SigningKeyRow).where(SigningKeyRow.retired_at <= cutoff))

    def _import(self, directory: Path) -> None:
        """Imports the PEM files of a pre-0006 keys directory into the empty table, in their order,
        so tokens signed before the upgrade keep verifying. The files are left where they are."""
        found = []
        try:
            paths = list(directory.iterdir()) if directory.is_dir() else []
        except OSError as exc:
            raise ConfigError(f"cannot read the old keys directory {directory}: {exc.strerror}") from exc
        for path in paths:
            match = _LEGACY_NAME.fullmatch(path.name)
            if match is None:
                continue
            key = _read_legacy(path)
            if key.kid != match["kid"]:
                raise ConfigError(f"signing key {path.name} does not hold the key its name says")
            found.append((int(match["created"]) / 1000, key))
        if not found:
            return
        found.sort(key=lambda item: item[0])
        try:
            with self.database.session() as s:
                for i, (created, key) in enumerate(found):
                    # A key was replaced when its successor was created.
                    retired = found[i + 1][0] if i + 1 < len(found) else None
                    if not insert_if_absent(s, self._row(key, i + 1, created, retired), unique="generation"):
                        raise _Lost
        except _Lost:
            pass  # another process imported (or created) a ring first: that one is the ring
        else:
            log.info("imported %d signing keys from %s into the database", len(found), directory)
        self.reload()


class _Lost(Exception):
    """Rolls the import back: another process wrote the first generation first."""


def _read_legacy(path: Path) -> SigningKey:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(f"cannot read signing key {path.name}") from exc
    with os.fdopen(fd, "rb") as f:
        return SigningKey.from_pem(f.read())
