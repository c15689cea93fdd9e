"""The user pool: sign-up, confirmation, sign-in (and its challenge), refresh, sign-out, password recovery.

Answers that could tell whether an email is registered (sign-up, sign-in, resend, forgot-password)
are alike for both cases in status, code and body shape, and cost one password hash either way.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from updown.auth.principal import Principal
from updown.auth.throttle import Throttle
from updown.auth.tokens import TokenService, hash_opaque, new_opaque
from updown.clock import Clock
from updown.core import passwords
from updown.core.codes import Purpose
from updown.core.emails import mask_email, normalize_email
from updown.db.engine import Database
from updown.db.models.users import AuthSession, ChallengeSession, RefreshToken, User, UserGroup
from updown.errors import ClientError, CodeMismatch, InvalidPassword, NotAuthorized, UserNotConfirmed
from updown.mail.base import Mailer, MailMessage
from updown.settings import AuthSettings
from updown.userpool import attributes as attrs
from updown.userpool.codes import CodeBook

UNCONFIRMED = "UNCONFIRMED"
CONFIRMED = "CONFIRMED"
FORCE_CHANGE_PASSWORD = "FORCE_CHANGE_PASSWORD"
BAD_CREDENTIALS = "Incorrect username or password."
# Wrong codes per address and window, across codes (each code also dies after 5 wrong tries).
_MAX_CODE_GUESSES = 15

# Given a session and a user id, returns that user's identity id (creating it on first use).
IdentityForUser = Callable[[Session, str], str]


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    id_token: str
    refresh_token: str
    expires_in: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "accessToken": self.access_token,
            "idToken": self.id_token,
            "refreshToken": self.refresh_token,
            "expiresIn": self.expires_in,
            "tokenType": "Bearer",
        }


@dataclass(frozen=True)
class Challenge:
    name: str
    session: str

    def as_dict(self) -> dict[str, Any]:
        return {"challenge": self.name, "session": self.session}


def revoke_user_tokens(s: Session, user_id: str, now: float, reason: str) -> None:
    """Cognito's global sign-out: ends the user's sessions and their refresh tokens, and refuses
    every access token issued before ``now`` (``tokens_valid_after``).

    The caller commits, then tells the token checker's cache (``SessionStates.forget_user``)."""
    s.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    s.execute(update(User).where(User.id == user_id).values(tokens_valid_after=now))


def delivery(email: str) -> dict[str, str]:
    return {"medium": "EMAIL", "destination": mask_email(email)}


class UserPool:
    """Every user-facing user pool operation. Admin operations are in :mod:`updown.userpool.admin`."""

    def __init__(
        self,
        db: Database,
        tokens: TokenService,
        mailer: Mailer,
        throttle: Throttle,
        clock: Clock,
        settings: AuthSettings,
        *,
        code_secret: bytes,
        identity_for_user: IdentityForUser,
        hasher: passwords.PasswordHasher | None = None,
    ) -> None:
        self.db = db
        self.tokens = tokens
        self.mailer = mailer
        self.throttle = throttle
        self.clock = clock
        self.settings = settings
        self.hasher = hasher or passwords.PasswordHasher()
        self.code_secret = code_secret
        self.identity_for_user = identity_for_user
        self.codes = CodeBook(
            mailer,
            clock,
            secret=code_secret,
            ttl={"confirm": settings.confirm_code_ttl, "reset": settings.reset_code_ttl},
        )

    # -- sign-up and confirmation -------------------------------------------------------------

    def sign_up(self, email: str, password: str, attributes: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Creates an unconfirmed user and mails a confirmation code.

        For an email that is taken the answer is the same shape (a stable stand-in ``userSub``)
        and the owner gets a notice instead of a code; the existing account does not change.

        Raises:
            InvalidRequest: malformed email or attributes. InvalidPassword: the policy refuses it.
            TooManyRequests: too many codes sent to this address.
        """
        address = normalize_email(email)
        passwords.check_password(password, email=address)
        changes = attrs.validate_changes(attributes or {})
        self.throttle.consume(f"mail:{address}", self.settings.max_code_requests, self.settings.throttle_window)
        password_hash = self.hasher.hash(password)  # before the lookup: same cost either way
        now = self.clock.now()
        try:
            with self.db.session() as s:
                if self._user_by_email(s, address) is not None:
                    raise _Taken
                user = User(
                    id=str(uuid.uuid4()),
                    email=address,
                    password_hash=password_hash,
                    status=UNCONFIRMED,
                    email_verified=False,
                    enabled=True,
                    attributes=attrs.apply_changes({}, changes),
                    created_at=now,
                    updated_at=now,
                )
                s.add(user)
                s.flush()
                self.identity_for_user(s, user.id)
                self.codes.send(s, user_id=user.id, email=address, purpose="confirm")
                sub = user.id
        except (_Taken, IntegrityError):
            self.mailer.send(
                MailMessage(
                    to=address,
                    subject="Someone tried to sign up with your address",
                    body="Somebody tried to create an account with this email address, which already has one.\n"
                    "If it was you, sign in or reset your password. Otherwise you can ignore this message.\n",
                )
            )
            sub = self._stand_in_sub(address)
        return {"userSub": sub, "confirmed": False, "delivery": delivery(address)}

    def confirm(self, email: str, code: str) -> dict[str, Any]:
        """Confirms the email with its code.

        Raises:
            CodeMismatch, ExpiredCode: a wrong, used, expired or exhausted code (alike for unknown emails).
            TooManyRequests: too many guesses for this address.
        """

        def apply(s: Session, user: User) -> None:
            if user.status == UNCONFIRMED:
                user.status = CONFIRMED
            user.email_verified = True
            user.updated_at = self.clock.now()

        self._redeem(normalize_email(email), "confirm", code, apply)
        return {"confirmed": True}

    def resend_code(self, email: str) -> dict[str, Any]:
        """Mails a new confirmation code to an unconfirmed user; answers alike for anyone else."""
        address = normalize_email(email)
        self.throttle.consume(f"mail:{address}", self.settings.max_code_requests, self.settings.throttle_window)
        with self.db.session() as s:
            user = self._user_by_email(s, address)
            if user is not None and user.status == UNCONFIRMED and user.enabled:
                self.codes.send(s, user_id=user.id, email=address, purpose="confirm")
        return {"delivery": delivery(address)}

    # -- sign-in ------------------------------------------------------------------------------

    def sign_in(self, email: str, password: str, *, client_address: str) -> TokenSet | Challenge:
        """Checks the password and starts a session, or a NEW_PASSWORD_REQUIRED challenge.

        Raises:
            NotAuthorized: wrong email or password (one message for both), or a disabled user.
            UserNotConfirmed: right password, email not confirmed yet.
            TooManyRequests: too many failures for this account or this client address.
        """
        address = normalize_email(email)
        window = self.settings.throttle_window
        account_key, address_key = f"signin:account:{address}", f"signin:address:{client_address}"
        self.throttle.check(account_key, self.settings.max_failed_signins, window)
        self.throttle.check(address_key, self.settings.max_failed_signins_per_address, window)
        with self.db.session() as s:
            user = self._user_by_email(s, address)
            stored = user.password_hash if user is not None else None
        ok = self.hasher.verify(stored, password) if stored is not None else self.hasher.dummy_verify(password)
        if user is None or not ok:
            self.throttle.hit(account_key, window)
            self.throttle.hit(address_key, window)
            raise NotAuthorized(BAD_CREDENTIALS)
        if not user.enabled:
            raise NotAuthorized("User is disabled.")
        if user.status == UNCONFIRMED:
            raise UserNotConfirmed("User is not confirmed.")
        self.throttle.reset(account_key)
        if user.status == FORCE_CHANGE_PASSWORD:
            session = new_opaque()
            with self.db.session() as s:
                s.add(
                    ChallengeSession(
                        token_hash=hash_opaque(session),
                        user_id=user.id,
                        expires_at=self.clock.now() + self.settings.challenge_ttl,
                    )
                )
            return Challenge("NEW_PASSWORD_REQUIRED", session)
        return self._start_session(user.id)

    def respond_new_password(self, session: str, new_password: str) -> TokenSet:
        """Answers NEW_PASSWORD_REQUIRED: sets the user's own password and signs them in.

        Raises:
            NotAuthorized: unknown, used or expired challenge session.
            InvalidPassword: the policy refuses the new password, or it is the temporary one.
        """
        with self.db.session() as s:
            challenge = s.get(ChallengeSession, hash_opaque(session))
            if challenge is None or challenge.expires_at <= self.clock.now():
                raise NotAuthorized("Invalid session for the user, session is expired.")
            user = s.get(User, challenge.user_id)
            assert user is not None
            passwords.check_password(new_password, email=user.email)
            # Raised inside the transaction, so the challenge session stays for another try.
            if self.hasher.verify(user.password_hash, new_password):
                raise InvalidPassword(
                    "The new password must differ from the temporary password: "
                    "a temporary password was sent to you by someone else, so it cannot become yours."
                )
            user.password_hash = self.hasher.hash(new_password)
            user.status = CONFIRMED
            user.email_verified = True
            user.updated_at = self.clock.now()
            s.delete(challenge)
            user_id = user.id
        return self._start_session(user_id)

    def refresh(self, refresh_token: str) -> TokenSet:
        """Rotates a refresh token: the presented one dies, a new one in the same session is returned.

        Presenting a refresh token that was already used revokes its whole session (family), since
        one of its two holders is not the user.

        Raises:
            NotAuthorized: unknown, used, revoked or expired refresh token; disabled user.
        """
        now = self.clock.now()
        reused = False
        with self.db.session() as s:
            row = s.get(RefreshToken, hash_opaque(refresh_token))
            session = s.get(AuthSession, row.session_id) if row is not None else None
            if row is None or session is None:
                raise NotAuthorized("Invalid refresh token.")
            if session.revoked_at is not None or session.expires_at <= now:
                raise NotAuthorized("Refresh token has been revoked or has expired.")
            # Compare-and-set: of two concurrent refreshes with one token, only one wins.
            done = s.execute(
                update(RefreshToken)
                .where(RefreshToken.token_hash == row.token_hash, RefreshToken.used_at.is_(None))
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                session.revoked_at, session.revoked_reason = now, "refresh_token_reuse"
                reused = True
            else:
                user = s.get(User, session.user_id)
                if user is None or not user.enabled:
                    raise NotAuthorized("User is disabled.")
                new_refresh = new_opaque()
                s.add(RefreshToken(token_hash=hash_opaque(new_refresh), session_id=session.id, issued_at=now))
                access, id_token = self._tokens_for(s, user, session.id)
        if reused:
            raise NotAuthorized("Refresh token was already used; the session is revoked.")
        return TokenSet(access, id_token, new_refresh, self.settings.access_token_ttl)

    def sign_out(self, claims: Principal, *, refresh_token: str | None = None, everywhere: bool = False) -> None:
        """Ends this session (or the one of ``refresh_token``), or with ``everywhere`` every session."""
        now = self.clock.now()
        with self.db.session() as s:
            if everywhere:
                revoke_user_tokens(s, _sub(claims), now, "global_sign_out")
            else:
                session_id = self._session_to_end(s, claims, refresh_token)
                s.execute(
                    update(AuthSession)
                    .where(
                        AuthSession.id == session_id,
                        AuthSession.user_id == _sub(claims),
                        AuthSession.revoked_at.is_(None),
                    )
                    .values(revoked_at=now, revoked_reason="sign_out")
                )
        self.tokens.sessions.forget_user(_sub(claims))

    @staticmethod
    def _session_to_end(s: Session, claims: Principal, refresh_token: str | None) -> str:
        """The caller's own session, or the one ``refresh_token`` belongs to."""
        session_id = claims.session_id or ""
        if refresh_token:
            row = s.get(RefreshToken, hash_opaque(refresh_token))
            if row is not None:
                return row.session_id
        return session_id

    # -- passwords ----------------------------------------------------------------------------

    def forgot_password(self, email: str) -> dict[str, Any]:
        """Mails a reset code to a known, enabled user; the answer is alike for any address."""
        address = normalize_email(email)
        self.throttle.consume(f"mail:{address}", self.settings.max_code_requests, self.settings.throttle_window)
        with self.db.session() as s:
            user = self._user_by_email(s, address)
            if user is not None and user.enabled:
                self.codes.send(s, user_id=user.id, email=address, purpose="reset")
        return {"delivery": delivery(address)}

    def reset_password(self, email: str, code: str, new_password: str) -> None:
        """Sets a new password with a reset code and ends every existing session.

        Raises:
            CodeMismatch, ExpiredCode: a wrong, used, expired or exhausted code.
            InvalidPassword: the policy refuses the new password.
        """
        address = normalize_email(email)
        passwords.check_password(new_password, email=address)
        new_hash = self.hasher.hash(new_password)

        def apply(s: Session, user: User) -> None:
            user.password_hash = new_hash
            # The code proves the mailbox: an unconfirmed or challenged user is now confirmed.
            user.status = CONFIRMED
            user.email_verified = True
            user.updated_at = self.clock.now()
            revoke_user_tokens(s, user.id, user.updated_at, "password_reset")
            reset_user.append(user.id)

        reset_user: list[str] = []
        self._redeem(address, "reset", code, apply)
        for user_id in reset_user:
            self.tokens.sessions.forget_user(user_id)

    def change_password(self, claims: Principal, old_password: str, new_password: str) -> TokenSet:
        """Changes the signed-in user's password after checking the old one, and ends every session
        the user had: their refresh tokens die and every access token issued before now is refused.
        The caller goes on in a new session whose tokens (refresh token too) are returned.

        Raises:
            NotAuthorized: the old password is wrong. InvalidPassword: the policy refuses the new one.
            TooManyRequests: too many wrong old passwords.
        """
        key = f"signin:account:{_email(claims)}"
        self.throttle.check(key, self.settings.max_failed_signins, self.settings.throttle_window)
        with self.db.session() as s:
            user = s.get(User, _sub(claims))
            assert user is not None
            stored = user.password_hash
        if not self.hasher.verify(stored, old_password):
            self.throttle.hit(key, self.settings.throttle_window)
            raise NotAuthorized(BAD_CREDENTIALS)
        passwords.check_password(new_password, email=_email(claims))
        new_hash = self.hasher.hash(new_password)
        with self.db.session() as s:
            user = s.get(User, _sub(claims))
            assert user is not None
            user.password_hash = new_hash
            user.updated_at = self.clock.now()
            revoke_user_tokens(s, user.id, user.updated_at, "password_change")
        self.tokens.sessions.forget_user(user.id)
        # A new session rather than the caller's old one going on: access tokens carry whole-second
        # iat, so the caller's earlier tokens could not be told from fresh ones issued this second.
        return self._start_session(user.id)

    # -- profile ------------------------------------------------------------------------------

    def me(self, claims: Principal) -> dict[str, Any]:
        with self.db.session() as s:
            user = s.get(User, _sub(claims))
            if user is None:
                raise NotAuthorized("user no longer exists")
            return self._profile(s, user)

    def update_attributes(self, claims: Principal, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Applies the user's own attribute changes (``None`` deletes).

        Raises:
            InvalidRequest: an attribute users may not edit, or a bad value.
        """
        checked = attrs.validate_changes(changes)
        with self.db.session() as s:
            user = s.get(User, _sub(claims), with_for_update=True)
            if user is None:
                raise NotAuthorized("user no longer exists")
            user.attributes = attrs.apply_changes(user.attributes or {}, checked)
            user.updated_at = self.clock.now()
            return self._profile(s, user)

    # -- helpers ------------------------------------------------------------------------------

    def _redeem(self, address: str, purpose: Purpose, code: str, apply: Callable[[Session, User], None]) -> None:
        """Redeems a user's code and applies its effect in the same transaction, or raises.

        Guesses are throttled per address; an unknown address fails like a wrong code. A spent try
        is committed before the error is raised (see CodeBook.redeem).
        """
        key = f"code:{purpose}:{address}"
        self.throttle.check(key, _MAX_CODE_GUESSES, self.settings.throttle_window)
        error: ClientError | None
        with self.db.session() as s:
            user = self._user_by_email(s, address)
            if user is None:
                error = CodeMismatch()
            else:
                error = self.codes.redeem(s, user_id=user.id, purpose=purpose, code=code)
                if error is None:
                    apply(s, user)
        if error is not None:
            self.throttle.hit(key, self.settings.throttle_window)
            raise error

    def _profile(self, s: Session, user: User) -> dict[str, Any]:
        return {
            "sub": user.id,
            "email": user.email,
            "emailVerified": user.email_verified,
            "groups": list(self._groups(s, user.id)),
            "identityId": self.identity_for_user(s, user.id),
            "attributes": dict(user.attributes or {}),
        }

    def _start_session(self, user_id: str) -> TokenSet:
        now = self.clock.now()
        refresh = new_opaque()
        with self.db.session() as s:
            user = s.get(User, user_id)
            assert user is not None
            session = AuthSession(
                id=str(uuid.uuid4()), user_id=user_id, created_at=now, expires_at=now + self.settings.refresh_token_ttl
            )
            s.add(session)
            s.flush()
            s.add(RefreshToken(token_hash=hash_opaque(refresh), session_id=session.id, issued_at=now))
            access, id_token = self._tokens_for(s, user, session.id)
        return TokenSet(access, id_token, refresh, self.settings.access_token_ttl)

    def _tokens_for(self, s: Session, user: User, session_id: str) -> tuple[str, str]:
        return self.tokens.issue_user_tokens(
            sub=user.id,
            email=user.email,
            email_verified=user.email_verified,
            groups=self._groups(s, user.id),
            identity_id=self.identity_for_user(s, user.id),
            session_id=session_id,
        )

    @staticmethod
    def _groups(s: Session, user_id: str) -> tuple[str, ...]:
        return tuple(s.scalars(select(UserGroup.group).where(UserGroup.user_id == user_id).order_by(UserGroup.group)))

    @staticmethod
    def _user_by_email(s: Session, address: str) -> User | None:
        return s.scalars(select(User).where(User.email == address)).one_or_none()

    def _stand_in_sub(self, address: str) -> str:
        """A UUID that is stable per address, so repeated sign-ups of a taken email look alike."""
        digest = hmac.new(self.code_secret, f"signup:{address}".encode(), hashlib.sha256).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))


def _sub(principal: Principal) -> str:
    if principal.sub is None:
        raise NotAuthorized("a signed-in user is required")
    return principal.sub


def _email(principal: Principal) -> str:
    if principal.email is None:
        raise NotAuthorized("a signed-in user is required")
    return principal.email


class _Taken(Exception):
    """Internal: the email is registered already (never leaves this module)."""
