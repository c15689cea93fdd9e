"""Who is calling: the Principal every request is made by, and which credential may reach which routes.

    credential kind   what it is                                     route families it may reach
    ───────────────   ────────────────────────────────────────────   ─────────────────────────────────────
    none              no credentials                                 /auth (sign-up/in, codes), /identity/guest,
                                                                     /cdn, ops, UI
    access_token      a user's JWT access token (Bearer)             everything a user may do: /auth/me..., /identity,
                                                                     /storage, /events, /graphql, /policy (admin)
    guest_token       a guest JWT from POST /identity/guest (Bearer) /identity/me, /identity/credentials, /storage
                                                                     (reads of public/), /events and /graphql reads
    sigv4             temporary credentials (POST /identity/credentials) signing an S3 request   /s3
    presigned         a URL presigned with the service credentials   /s3 (exactly the signed method and key)

An ID, refresh or guest token is never accepted where an access token is required (``token_use``
is checked by the verifier), and what a principal may do with a file is decided by its roles'
policies in ``files/access.py``, never by the route alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["anonymous", "guest", "user", "service"]
Credential = Literal["none", "access_token", "guest_token", "sigv4", "presigned"]

ROUTE_FAMILIES: dict[str, frozenset[Credential]] = {
    "auth-public": frozenset({"none", "access_token", "guest_token"}),
    "auth-user": frozenset({"access_token"}),
    "identity-guest": frozenset({"none"}),
    "identity": frozenset({"access_token", "guest_token"}),
    "storage": frozenset({"access_token", "guest_token"}),
    # Like the seed's @aws_iam / @aws_cognito_user_pools: a guest or a user, never nobody (401).
    "events": frozenset({"access_token", "guest_token"}),
    "graphql": frozenset({"access_token", "guest_token"}),
    "policy": frozenset({"access_token"}),
    "s3": frozenset({"sigv4", "presigned"}),
    "cdn": frozenset({"none"}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The one caller of a request.

    ``identity_id`` is set for guests and users (never the email); ``sub`` and ``email`` only for
    users; ``roles`` are what policies are looked up by (guest, authenticated, one per group).
    """

    kind: Kind
    credential: Credential
    identity_id: str | None = None
    sub: str | None = None
    email: str | None = None
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    session_id: str | None = None

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    def in_group(self, group: str) -> bool:
        return group in self.groups


ANONYMOUS = Principal(kind="anonymous", credential="none")
# The control plane itself, acting through a URL it presigned with the service credentials: it
# decided at presign time, so the data plane only checks the request is one such URL allows.
SERVICE = Principal(kind="service", credential="presigned", roles=("service",))

# Anyone, reading through /cdn: role ``cdn``, whose policy reads ``public/`` and nothing else.
CDN = Principal(kind="anonymous", credential="none", roles=("cdn",))


def may_reach(principal: Principal, family: str) -> bool:
    """Whether this principal's credential kind may reach a route family at all (policy decides the rest)."""
    return principal.credential in ROUTE_FAMILIES.get(family, frozenset())
