"""``/identity``: guest identities, who-am-I, and short-lived credentials."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from updown.identity.service import IdentityPool
from updown.web.deps import FreshIdentityCallerDep, IdentityCallerDep, RuntimeDep, client_address, no_store

router = APIRouter(prefix="/identity", tags=["identity pool"], dependencies=[Depends(no_store)])


@router.post("/guest", status_code=201)
def guest(runtime: RuntimeDep, request: Request) -> dict[str, Any]:
    return runtime.identity.create_guest(client_address=client_address(request))


@router.get("/me")
def me(principal: IdentityCallerDep) -> dict[str, Any]:
    return IdentityPool.describe(principal)


@router.post("/credentials")
def credentials(runtime: RuntimeDep, principal: FreshIdentityCallerDep) -> dict[str, Any]:
    return runtime.identity.issue_credentials(principal).as_dict()
