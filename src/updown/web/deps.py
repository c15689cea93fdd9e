"""FastAPI dependencies: this process's runtime, and the Principal every request is made by.

One dependency turns the request's credential into a :class:`~updown.auth.principal.Principal`;
route families then say which credential kinds they take (``auth/principal.py`` holds the table).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from updown.auth.principal import ANONYMOUS, Principal, may_reach
from updown.errors import NotAuthorized
from updown.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_principal(request: Request, runtime: RuntimeDep) -> Principal:
    """The caller: anonymous without credentials, else the guest or user its bearer token names.

    Raises:
        NotAuthorized: a malformed Authorization header, or a bad, expired or revoked token.
    """
    header = request.headers.get("authorization")
    if header is None:
        return ANONYMOUS
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorized("Authorization must be 'Bearer <token>'")
    return runtime.identity.principal_for_bearer(token.strip())


def requires(family: str) -> Callable[[Principal], Principal]:
    """A dependency admitting only the credential kinds the route family takes."""

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not may_reach(principal, family):
            # Like Cognito: a token of the wrong kind (a guest's where a user's access token is
            # needed) is not a credential for this call at all, so 401 rather than 403.
            if principal.credential == "none":
                raise NotAuthorized("sign in first: this call needs a bearer token")
            raise NotAuthorized("this call needs a signed-in user's access token")
        return principal

    return check


UserDep = Annotated[Principal, Depends(requires("auth-user"))]
IdentityCallerDep = Annotated[Principal, Depends(requires("identity"))]
AnyPrincipalDep = Annotated[Principal, Depends(get_principal)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
