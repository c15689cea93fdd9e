"""What a process knows of sign-in sessions' revocation state, read from the database and kept briefly.

Checking an access token needs its session (revoked?) and its user (enabled? tokens valid after
when?). Reading them on every request would put a database query on every call's hot path, so a
process keeps what it read for ``ttl`` seconds: a revocation made in this process is seen at once
(:meth:`SessionStates.forget_user`), one made by another process within ``ttl``. Calls that read the
user's row anyway ask with ``fresh=True`` and see every revocation at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import select

from updown.clock import Clock
from updown.db.engine import Database
from updown.db.models.users import AuthSession, User

# Past this many cached sessions the oldest entries are dropped (memory stays bounded).
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class SessionState:
    """One session's revocation facts, as read at ``read_at``."""

    user_id: str
    email: str
    revoked: bool
    enabled: bool
    tokens_valid_after: float | None
    read_at: float

    def refuses(self, issued_at: int) -> str | None:
        """Why a token of this session issued at ``issued_at`` is refused, or None."""
        if self.revoked:
            return "token has been revoked"
        if not self.enabled:
            return "user is disabled"
        # iat has whole seconds: a token issued in the second of the revocation (the fresh tokens
        # a password change hands back) passes; the sessions revoked with it are refused above.
        if self.tokens_valid_after is not None and issued_at < int(self.tokens_valid_after):
            return "token was issued before the user's tokens were revoked"
        return None


class SessionStates:
    """A small per-process cache of :class:`SessionState` by session id."""

    def __init__(self, db: Database, clock: Clock, *, ttl: int) -> None:
        self.db = db
        self.clock = clock
        self.ttl = ttl
        self._entries: dict[str, SessionState] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str, user_id: str, *, fresh: bool = False) -> SessionState | None:
        """The state of ``session_id`` belonging to ``user_id``; None when there is no such session."""
        now = self.clock.now()
        if not fresh:
            cached = self._entries.get(session_id)
            if cached is not None and now - cached.read_at < self.ttl and cached.user_id == user_id:
                return cached
        state = self._read(session_id, user_id, now)
        with self._lock:
            if state is None:
                self._entries.pop(session_id, None)
            elif self.ttl > 0:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.pop(next(iter(self._entries)))
                self._entries[session_id] = state
        return state

    def forget_user(self, user_id: str) -> None:
        """Drops what this process knows of the user's sessions (called on every revocation)."""
        with self._lock:
            for sid in [sid for sid, state in self._entries.items() if state.user_id == user_id]:
                del self._entries[sid]

    def _read(self, session_id: str, user_id: str, now: float) -> SessionState | None:
        with self.db.session() as s:
            row = s.execute(
                select(AuthSession.revoked_at, User.enabled, User.email, User.tokens_valid_after)
                .join(User, User.id == AuthSession.user_id)
                .where(AuthSession.id == session_id, AuthSession.user_id == user_id)
            ).one_or_none()
        if row is None:
            return None
        return SessionState(
            user_id=user_id,
            email=row.email,
            revoked=row.revoked_at is not None,
            enabled=row.enabled,
            tokens_valid_after=row.tokens_valid_after,
            read_at=now,
        )
