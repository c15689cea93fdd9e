"""One-time codes in the database: issue (replacing the previous one) and check with compare-and-set."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from updown.clock import Clock
from updown.core import codes as core_codes
from updown.db.models.users import OneTimeCode
from updown.errors import ClientError, ExpiredCode
from updown.mail.base import Mailer, code_message


class CodeBook:
    """Codes per (user, purpose): one outstanding code each, stored hashed, mailed in clear once."""

    def __init__(self, mailer: Mailer, clock: Clock, *, secret: bytes, ttl: dict[str, int]) -> None:
        self.mailer = mailer
        self.clock = clock
        self.secret = secret
        self.ttl = ttl

    def send(self, s: Session, *, user_id: str, email: str, purpose: core_codes.Purpose) -> None:
        """Issues a fresh code (the previous one dies) and mails it."""
        code = core_codes.new_code()
        state = core_codes.issue(
            code, user_id=user_id, purpose=purpose, secret=self.secret, now=self.clock.now(), ttl=self.ttl[purpose]
        )
        row = s.get(OneTimeCode, (user_id, purpose))
        if row is None:
            row = OneTimeCode(user_id=user_id, purpose=purpose)
            s.add(row)
        row.code_hash, row.expires_at, row.tries_left, row.used = (
            state.hash,
            state.expires_at,
            state.tries_left,
            state.used,
        )
        s.flush()
        self.mailer.send(code_message(to=email, code=code, purpose=purpose, lifetime=self.ttl[purpose]))

    def redeem(self, s: Session, *, user_id: str, purpose: core_codes.Purpose, code: str) -> ClientError | None:
        """Uses the code; returns None on success, else the error to raise *after* committing ``s``.

        The error is returned, not raised, so that a spent try is committed: raising inside the
        transaction would roll it back and make guesses free.

        Returns:
            None, CodeMismatch (wrong code, one try spent) or ExpiredCode (no code, used, expired,
            out of tries).
        """
        row = s.get(OneTimeCode, (user_id, purpose))
        if row is None:
            return ExpiredCode("no outstanding code; request a new one")
        state = core_codes.CodeState(
            hash=row.code_hash, purpose=purpose, expires_at=row.expires_at, tries_left=row.tries_left, used=row.used
        )
        verdict = core_codes.check(state, code, self.clock.now(), user_id=user_id, purpose=purpose, secret=self.secret)
        if verdict.state != state:
            # Compare-and-set: two concurrent checks cannot both spend one try or both use the code.
            done = s.execute(
                update(OneTimeCode)
                .where(
                    OneTimeCode.user_id == user_id,
                    OneTimeCode.purpose == purpose,
                    OneTimeCode.tries_left == state.tries_left,
                    OneTimeCode.used == state.used,
                )
                .values(tries_left=verdict.state.tries_left, used=verdict.state.used)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                return ExpiredCode("the code was used or changed meanwhile; request a new one")
        if not verdict.ok:
            assert verdict.error is not None
            return verdict.error()
        return None
