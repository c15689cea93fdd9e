"""The identity pool: stable identity ids for guests and users, their roles, and short-lived credentials.

Temporary SigV4 credentials are derived, not stored: the secret and the session token are HMACs
of the access key id under a service key, so the database holds only who they belong to and when
they expire, and a leaked database row grants nothing. Service roles (``service_roles``, e.g. the
events app's ``event-uploader``) get one long-lived key each, derived the same way from the role's
name and stored nowhere: only the control plane signs with it (presigned URLs), and the data plane
resolves it to a principal holding that role alone.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from updown.auth.principal import ANONYMOUS, Principal
from updown.auth.throttle import Throttle
from updown.auth.tokens import TokenService
from updown.clock import Clock
from updown.core.sigv4 import Credentials
from updown.db.engine import Database
from updown.db.models.identities import Identity, TemporaryCredential
from updown.db.models.users import AuthSession, User
from updown.errors import NotAuthorized
from updown.settings import IdentitySettings

_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits
# Each new guest expires at most this many dead ones: enough to outpace any allowed creation rate.
_GUESTS_EXPIRED_PER_CALL = 20
# Past both lifetimes a guest is kept this much longer: more than the token checker's clock leeway.
_EXPIRY_MARGIN = 120


@dataclass(frozen=True)
class IssuedCredentials:
    credentials: Credentials
    identity_id: str
    expires_at: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "accessKeyId": self.credentials.access_key_id,
            "secretAccessKey": self.credentials.secret_access_key,
            "sessionToken": self.credentials.session_token,
            "expiration": datetime.fromtimestamp(self.expires_at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "identityId": self.identity_id,
        }


class IdentityPool:
    """Identities, roles and temporary credentials."""

    def __init__(
        self,
        db: Database,
        tokens: TokenService,
        throttle: Throttle,
        clock: Clock,
        settings: IdentitySettings,
        *,
        credentials_key: bytes,
        service_roles: tuple[str, ...] = (),
    ) -> None:
        self.db = db
        self.tokens = tokens
        self.throttle = throttle
        self.clock = clock
        self.settings = settings
        self._key = credentials_key
        self._role_keys = {self._role_key_id(role): role for role in service_roles}

    # -- identities ---------------------------------------------------------------------------

    def new_identity_id(self) -> str:
        return f"{self.settings.region}:{uuid.uuid4()}"

    def identity_for_user(self, s: Session, user_id: str) -> str:
        """The user's one identity id, created on first use (same session as the caller)."""
        found = s.scalars(select(Identity.id).where(Identity.user_id == user_id)).one_or_none()
        if found is not None:
            return found
        identity = Identity(id=self.new_identity_id(), kind="user", user_id=user_id, created_at=self.clock.now())
        s.add(identity)
        s.flush()
        return identity.id

    def create_guest(self, *, client_address: str) -> dict[str, Any]:
        """A new guest identity and its bearer token, at most ``guest_rate_per_minute`` per address.

        Each call also expires a batch of guest identities nobody can use any more, so the table
        holds about as many rows as there are live guests, however many are asked for.

        Raises:
            TooManyRequests: this client address asked too often (``Retry-After`` says when to retry).
        """
        self.throttle.take(f"guest:{client_address}", self.settings.guest_rate_per_minute, self.settings.guest_burst)
        self.expire_guests(limit=_GUESTS_EXPIRED_PER_CALL)
        with self.db.session() as s:
            identity = Identity(id=self.new_identity_id(), kind="guest", user_id=None, created_at=self.clock.now())
            s.add(identity)
        return {
            "identityId": identity.id,
            "token": self.tokens.issue_guest_token(identity.id),
            "expiresIn": self.settings.guest_token_ttl,
        }

    def expire_guests(self, *, limit: int = 1000) -> int:
        """Deletes up to ``limit`` guest identities that no token or credential can reach any more.

        A guest identity is reachable only through its guest token (``guest_token_ttl``) and the
        temporary credentials issued while that token lived (``credentials_ttl``); past both it is
        never used again. Returns how many were deleted (their credentials go with them).
        """
        ttls = self.settings.guest_token_ttl + self.settings.credentials_ttl
        cutoff = self.clock.now() - ttls - _EXPIRY_MARGIN
        with self.db.session() as s:
            ids = list(
                s.scalars(
                    select(Identity.id)
                    .where(Identity.kind == "guest", Identity.created_at < cutoff)
                    .order_by(Identity.created_at)
                    .limit(limit)
                )
            )
            if ids:
                s.execute(delete(TemporaryCredential).where(TemporaryCredential.identity_id.in_(ids)))
                s.execute(delete(Identity).where(Identity.id.in_(ids)))
        return len(ids)

    def roles_for_groups(self, groups: tuple[str, ...]) -> tuple[str, ...]:
        """The signed-in role, then one role per mapped group, in group order."""
        extra = [self.settings.group_roles[g] for g in groups if g in self.settings.group_roles]
        return (self.settings.authenticated_role, *dict.fromkeys(extra))

    # -- principals ---------------------------------------------------------------------------

    def principal_for_bearer(self, token: str, *, fresh: bool = False) -> Principal:
        """The principal a bearer token stands for.

        Args:
            fresh: check an access token's revocation state in the database now (see TokenService).

        Raises:
            NotAuthorized: the token is bad, expired, revoked, or not an access or guest token.
        """
        if TokenService.token_use(token) == "guest":
            guest = self.tokens.verify_guest(token)
            return Principal(
                kind="guest",
                credential="guest_token",
                identity_id=guest.identity_id,
                roles=(self.settings.guest_role,),
            )
        claims = self.tokens.verify_access(token, fresh=fresh)
        return Principal(
            kind="user",
            credential="access_token",
            identity_id=claims.identity_id,
            sub=claims.sub,
            email=claims.email,
            groups=claims.groups,
            roles=self.roles_for_groups(claims.groups),
            session_id=claims.session_id,
        )

    @staticmethod
    def describe(principal: Principal) -> dict[str, Any]:
        """``GET /identity/me``."""
        if principal.identity_id is None:
            raise NotAuthorized("no identity: sign in or get a guest identity first")
        return {"identityId": principal.identity_id, "role": principal.roles[0], "roles": list(principal.roles)}

    # -- temporary credentials ----------------------------------------------------------------

    def issue_credentials(self, principal: Principal) -> IssuedCredentials:
        """Short-lived SigV4 credentials carrying the caller's identity and roles.

        Raises:
            NotAuthorized: anonymous callers get none.
        """
        if principal is ANONYMOUS or principal.identity_id is None:
            raise NotAuthorized("credentials need a guest or signed-in identity")
        now = self.clock.now()
        key_id = "ASIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
        expires_at = now + self.settings.credentials_ttl
        with self.db.session() as s:
            s.add(
                TemporaryCredential(
                    access_key_id=key_id,
                    identity_id=principal.identity_id,
                    user_id=principal.sub,
                    session_id=principal.session_id,
                    roles=list(principal.roles),
                    groups=list(principal.groups),
                    issued_at=now,
                    expires_at=expires_at,
                )
            )
        return IssuedCredentials(self._derive(key_id), principal.identity_id, expires_at)

    def role_credentials(self, role: str) -> Credentials:
        """The derived credentials of a service role (``service_roles``), for presigning only.

        Raises:
            ValueError: ``role`` is not one of this pool's service roles.
        """
        key_id = self._role_key_id(role)
        if self._role_keys.get(key_id) != role:
            raise ValueError(f"{role!r} is not a service role")
        return self._derive(key_id)

    def _role_key_id(self, role: str) -> str:
        digest = hmac.new(self._key, f"role:{role}".encode(), "sha256").digest()
        return "AKIA" + base64.b32encode(digest).decode()[:16]

    def resolve_temporary(self, access_key_id: str) -> tuple[Credentials, Principal] | None:
        """The credentials and principal behind a temporary access key id, if live, or behind a
        service role's key (a principal holding that role and no identity).

        None for unknown or expired keys, for users disabled since the keys were issued, and for
        keys whose sign-in session has ended (sign-out, a password change or reset).
        """
        role = self._role_keys.get(access_key_id)
        if role is not None:
            return self._derive(access_key_id), Principal(kind="service", credential="sigv4", roles=(role,))
        if not access_key_id.startswith("ASIA") or len(access_key_id) != 20:
            return None
        with self.db.session() as s:
            row = s.get(TemporaryCredential, access_key_id)
            if row is None or row.expires_at <= self.clock.now():
                return None
            email = None
            if row.user_id is not None:
                user = s.get(User, row.user_id)
                if user is None or not user.enabled:
                    return None
                if row.session_id is not None:
                    session = s.get(AuthSession, row.session_id)
                    if session is None or session.revoked_at is not None:
                        return None
                email = user.email
            principal = Principal(
                kind="user" if row.user_id else "guest",
                credential="sigv4",
                identity_id=row.identity_id,
                sub=row.user_id,
                email=email,
                groups=tuple(row.groups),
                roles=tuple(row.roles),
            )
        return self._derive(access_key_id), principal

    def _derive(self, key_id: str) -> Credentials:
        secret = hmac.new(self._key, f"secret:{key_id}".encode(), "sha256").digest()
        token = hmac.new(self._key, f"token:{key_id}".encode(), "sha256").digest()
        return Credentials(
            access_key_id=key_id,
            secret_access_key=base64.urlsafe_b64encode(secret).decode()[:40],
            session_token=base64.urlsafe_b64encode(token).decode().rstrip("="),
        )
