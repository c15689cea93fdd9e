"""Issuing and checking the pool's tokens: access/ID JWTs, opaque refresh tokens, guest tokens.

An access token names its sign-in session (``sid``); checking one verifies the JWT (pinned key,
issuer, ``token_use``, expiry) and then that the session is live, the user enabled and the token
issued after the user's "tokens valid after" time. Those facts come from
:class:`~updown.auth.revocation.SessionStates`: at once where ``fresh`` is asked for, else within
its short cache lifetime.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from updown.auth.keyring import Keyring
from updown.auth.revocation import SessionStates
from updown.clock import Clock
from updown.core import jwt
from updown.db.engine import Database
from updown.errors import NotAuthorized

GROUPS_CLAIM = "cognito:groups"
IDENTITY_CLAIM = "updown:identity_id"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says about its bearer."""

    sub: str
    email: str
    groups: tuple[str, ...]
    identity_id: str
    session_id: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class GuestClaims:
    """What a verified guest token says: the guest's identity id."""

    identity_id: str
    expires_at: int


def hash_opaque(token: str) -> str:
    """Opaque tokens (refresh, challenge session) are stored by their SHA-256, never in clear."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_opaque() -> str:
    return secrets.token_urlsafe(32)


class TokenService:
    """Signs and verifies the pool's JWTs with the keyring; checks revocation in the database."""

    def __init__(
        self,
        keyring: Keyring,
        db: Database,
        clock: Clock,
        *,
        issuer: str,
        client_id: str,
        access_ttl: int,
        guest_ttl: int,
        revocation_cache_ttl: int = 0,
    ) -> None:
        self.keyring = keyring
        self.db = db
        self.clock = clock
        self.sessions = SessionStates(db, clock, ttl=revocation_cache_ttl)
        self.issuer = issuer
        self.client_id = client_id
        self.access_ttl = access_ttl
        self.guest_ttl = guest_ttl

    def issue_user_tokens(
        self, *, sub: str, email: str, email_verified: bool, groups: tuple[str, ...], identity_id: str, session_id: str
    ) -> tuple[str, str]:
        """An access token and an ID token for one sign-in session."""
        now = self.clock.now()
        key = self.keyring.current
        common: dict[str, Any] = {GROUPS_CLAIM: list(groups), "sid": session_id, IDENTITY_CLAIM: identity_id}
        access = jwt.Claims.issue(
            sub=sub,
            iss=self.issuer,
            token_use="access",
            now=now,
            lifetime=self.access_ttl,
            client_id=self.client_id,
            extra={**common, "scope": "openid email profile", "username": sub},
        )
        id_token = jwt.Claims.issue(
            sub=sub,
            iss=self.issuer,
            token_use="id",
            now=now,
            lifetime=self.access_ttl,
            aud=self.client_id,
            extra={**common, "email": email, "email_verified": email_verified},
        )
        return jwt.sign(access, key), jwt.sign(id_token, key)

    def issue_guest_token(self, identity_id: str) -> str:
        claims = jwt.Claims.issue(
            sub=identity_id,
            iss=self.issuer,
            token_use="guest",
            now=self.clock.now(),
            lifetime=self.guest_ttl,
            aud=self.client_id,
        )
        return jwt.sign(claims, self.keyring.current)

    def verify_access(self, token: str, *, fresh: bool = False) -> AccessClaims:
        """A live access token's claims.

        Args:
            fresh: read the session's revocation state from the database now, not from the cache.

        Raises:
            NotAuthorized: bad or expired token, wrong ``token_use``, signed-out session, disabled
                user, or issued before the user's tokens were revoked (password change or reset).
        """
        claims = jwt.verify(
            token,
            keys=self.keyring.lookup,
            issuer=self.issuer,
            token_use="access",
            now=self.clock.now(),
            audience=self.client_id,
            max_lifetime=self.access_ttl,
        )
        sid = claims.get("sid")
        identity_id = claims.get(IDENTITY_CLAIM)
        groups = claims.get(GROUPS_CLAIM, [])
        if not isinstance(sid, str) or not isinstance(identity_id, str) or not isinstance(groups, list):
            raise NotAuthorized("token lacks its session")
        state = self.sessions.get(sid, claims["sub"], fresh=fresh)
        if state is None:
            raise NotAuthorized("token has been revoked")
        refused = state.refuses(int(claims["iat"]))
        if refused is not None:
            raise NotAuthorized(refused)
        return AccessClaims(
            sub=claims["sub"],
            email=state.email,
            groups=tuple(str(g) for g in groups),
            identity_id=identity_id,
            session_id=sid,
            expires_at=int(claims["exp"]),
        )

    def verify_guest(self, token: str) -> GuestClaims:
        """A guest token's identity.

        Raises:
            NotAuthorized: bad or expired token, or not a guest token.
        """
        claims = jwt.verify(
            token,
            keys=self.keyring.lookup,
            issuer=self.issuer,
            token_use="guest",
            now=self.clock.now(),
            audience=self.client_id,
            max_lifetime=self.guest_ttl,
        )
        return GuestClaims(identity_id=claims["sub"], expires_at=int(claims["exp"]))

    @staticmethod
    def token_use(token: str) -> str | None:
        """The *unverified* ``token_use`` of a token, only to pick the verifier; never trusted beyond that."""
        parts = token.split(".")
        if len(parts) != 3 or len(token) > jwt.MAX_TOKEN_CHARS:
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except (ValueError, binascii.Error):
            return None
        use = payload.get("token_use") if isinstance(payload, dict) else None
        return use if isinstance(use, str) else None

    def jwks(self) -> dict[str, Any]:
        return self.keyring.jwks()
