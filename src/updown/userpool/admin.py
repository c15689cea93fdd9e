"""Admin operations on the user pool (the `updown user …` commands): create, groups, list, disable."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from updown.clock import Clock
from updown.core import passwords
from updown.core.emails import normalize_email
from updown.db.engine import Database
from updown.db.models.users import User, UserGroup
from updown.errors import InvalidRequest, NotFound, UsernameExists
from updown.userpool.service import CONFIRMED, FORCE_CHANGE_PASSWORD, UNCONFIRMED, IdentityForUser, revoke_user_tokens

_GROUP = re.compile(r"[A-Za-z0-9_.-]{1,128}")


@dataclass(frozen=True)
class UserSummary:
    sub: str
    email: str
    status: str
    enabled: bool
    groups: tuple[str, ...]


class UserAdmin:
    """What an operator may do that users may not: create users, manage groups, disable."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        identity_for_user: IdentityForUser,
        hasher: passwords.PasswordHasher | None = None,
        forget_user: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.identity_for_user = identity_for_user
        # Tells this process's token checker at once (another process learns within its cache ttl).
        self.forget_user = forget_user
        self.hasher = hasher or passwords.PasswordHasher()

    def create_user(
        self,
        email: str,
        password: str,
        *,
        groups: tuple[str, ...] = (),
        temporary: bool = False,
        unconfirmed: bool = False,
    ) -> UserSummary:
        """Creates a user. ``temporary``: must set a new password at first sign-in.

        Raises:
            UsernameExists: the email is registered. InvalidPassword, InvalidRequest: bad input.
        """
        address = normalize_email(email)
        passwords.check_password(password, email=address)
        for group in groups:
            _check_group(group)
        status = FORCE_CHANGE_PASSWORD if temporary else (UNCONFIRMED if unconfirmed else CONFIRMED)
        now = self.clock.now()
        try:
            with self.db.session() as s:
                user = User(
                    id=str(uuid.uuid4()),
                    email=address,
                    password_hash=self.hasher.hash(password),
                    status=status,
                    email_verified=not unconfirmed,
                    enabled=True,
                    attributes={},
                    created_at=now,
                    updated_at=now,
                )
                s.add(user)
                s.flush()
                for group in sorted(set(groups)):
                    s.add(UserGroup(user_id=user.id, group=group))
                self.identity_for_user(s, user.id)
        except IntegrityError:
            raise UsernameExists(f"a user with email {address} exists already") from None
        return UserSummary(user.id, address, status, True, tuple(sorted(set(groups))))

    def add_to_group(self, email: str, group: str) -> None:
        _check_group(group)
        with self.db.session() as s:
            user = self._user(s, email)
            if s.get(UserGroup, (user.id, group)) is None:
                s.add(UserGroup(user_id=user.id, group=group))

    def remove_from_group(self, email: str, group: str) -> None:
        with self.db.session() as s:
            user = self._user(s, email)
            s.execute(delete(UserGroup).where(UserGroup.user_id == user.id, UserGroup.group == group))

    def list_users(self) -> list[UserSummary]:
        with self.db.session() as s:
            users = s.scalars(select(User).order_by(User.email)).all()
            memberships: dict[str, list[str]] = {}
            for m in s.scalars(select(UserGroup).order_by(UserGroup.group)):
                memberships.setdefault(m.user_id, []).append(m.group)
            return [UserSummary(u.id, u.email, u.status, u.enabled, tuple(memberships.get(u.id, ()))) for u in users]

    def set_enabled(self, email: str, enabled: bool) -> None:
        """Disables (every session ends, tokens stop working at once) or re-enables a user."""
        with self.db.session() as s:
            user = self._user(s, email)
            user.enabled = enabled
            user.updated_at = self.clock.now()
            if not enabled:
                revoke_user_tokens(s, user.id, user.updated_at, "disabled")
            user_id = user.id
        if not enabled and self.forget_user is not None:
            self.forget_user(user_id)

    @staticmethod
    def _user(s: Session, email: str) -> User:
        user = s.scalars(select(User).where(User.email == normalize_email(email))).one_or_none()
        if user is None:
            raise NotFound(f"no user with email {email}")
        return user


def _check_group(group: str) -> None:
    if not _GROUP.fullmatch(group):
        raise InvalidRequest(f"group name {group[:64]!r} must be 1-128 letters, digits, '_', '.' or '-'")
