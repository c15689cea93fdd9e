"""``/identity``: guest identities, who-am-I, and short-lived credentials."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from updown.identity.service import IdentityPool
from updown.web.deps import IdentityCallerDep, RuntimeDep

router = APIRouter(prefix="/identity", tags=["identity pool"])


@router.post("/guest", status_code=201)
def guest(runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.identity.create_guest()


@router.get("/me")
def me(principal: IdentityCallerDep) -> dict[str, Any]:
    return IdentityPool.describe(principal)


@router.post("/credentials")
def credentials(runtime: RuntimeDep, principal: IdentityCallerDep) -> dict[str, Any]:
    return runtime.identity.issue_credentials(principal).as_dict()
