"""FastAPI dependencies: this process's runtime, and the Principal every request is made by.

One dependency turns the request's credential into a :class:`~updown.auth.principal.Principal`;
route families then say which credential kinds they take (``auth/principal.py`` holds the table).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request, Response

from updown.auth.principal import ANONYMOUS, Principal, may_reach
from updown.core import forwarded
from updown.errors import NotAuthorized
from updown.runtime import Runtime

# Dependencies are ``async def``: FastAPI runs a plain ``def`` one in its thread pool, a hop that
# cost more than the work of most of these. The one that may read the database hops on purpose.


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _principal(request: Request, runtime: Runtime, *, fresh: bool) -> Principal:
    header = request.headers.get("authorization")
    if header is None:
        return ANONYMOUS
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorized("Authorization must be 'Bearer <token>'")
    return runtime.identity.principal_for_bearer(token.strip(), fresh=fresh)


async def get_principal(request: Request, runtime: RuntimeDep) -> Principal:
    """The caller: anonymous without credentials, else the guest or user its bearer token names.

    A revocation made in another process reaches this check within ``auth.revocation_cache_ttl``.

    Raises:
        NotAuthorized: a malformed Authorization header, or a bad, expired or revoked token.
    """
    return await anyio.to_thread.run_sync(lambda: _principal(request, runtime, fresh=False))


async def get_fresh_principal(request: Request, runtime: RuntimeDep) -> Principal:
    """Like :func:`get_principal`, with the token's session checked in the database now: for calls
    that read the user's row anyway, and those that hand out credentials."""
    return await anyio.to_thread.run_sync(lambda: _principal(request, runtime, fresh=True))


async def no_store(response: Response) -> None:
    """Answers that carry tokens, codes, credentials or personal data are never cached (RFC 6749 5.1)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


def requires(family: str, *, fresh: bool = False) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only the credential kinds the route family takes."""
    source = get_fresh_principal if fresh else get_principal

    # A default rather than an Annotated[...]: the annotation is a string (future import) that
    # FastAPI resolves in module globals, where the closure's ``source`` is not.
    async def check(principal: Principal = Depends(source)) -> Principal:
        if not may_reach(principal, family):
            # Like Cognito: a token of the wrong kind (a guest's where a user's access token is
            # needed) is not a credential for this call at all, so 401 rather than 403.
            if principal.credential == "none":
                raise NotAuthorized("sign in first: this call needs a bearer token")
            raise NotAuthorized("this call needs a signed-in user's access token")
        return principal

    return check


# Every /auth call of a signed-in user reads the user's row, so it sees revocations at once.
UserDep = Annotated[Principal, Depends(requires("auth-user", fresh=True))]
IdentityCallerDep = Annotated[Principal, Depends(requires("identity"))]
FreshIdentityCallerDep = Annotated[Principal, Depends(requires("identity", fresh=True))]
AnyPrincipalDep = Annotated[Principal, Depends(get_principal)]


def client_address(request: Request) -> str:
    """The address per-address throttles count: the socket peer, or behind a proxy in
    ``server.trusted_proxies`` the client it names in X-Forwarded-For (core/forwarded.py)."""
    peer = request.client.host if request.client else "unknown"
    runtime: Runtime = request.app.state.runtime
    trusted = runtime.settings.server.trusted_proxies
    if not trusted:
        return peer
    return forwarded.client_address(peer, request.headers.getlist("x-forwarded-for"), forwarded.networks(trusted))
