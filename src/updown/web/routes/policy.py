"""``POST /policy/simulate`` (admin): what the engine decides, the same answer as ``updown policy simulate``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from updown.auth.principal import Principal
from updown.files.access import SIMULATE_POLICY
from updown.policy import simulate as simulate_policy
from updown.web.deps import RuntimeDep, requires

router = APIRouter(prefix="/policy", tags=["policy"])


class Simulate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Annotated[str, Field(min_length=1, max_length=128)]
    action: Annotated[str, Field(min_length=1, max_length=256)]
    resource: Annotated[str, Field(min_length=1, max_length=2048)]
    identityId: Annotated[str, Field(max_length=128)] | None = None
    context: dict[str, str | list[str]] | None = None


@router.post("/simulate")
def simulate(
    body: Simulate, runtime: RuntimeDep, principal: Annotated[Principal, Depends(requires("policy"))]
) -> dict[str, Any]:
    runtime.gate.check_api(principal, SIMULATE_POLICY, "policy")
    decision = simulate_policy(
        runtime.policies,
        role=body.role,
        action=body.action,
        resource=body.resource,
        identity_id=body.identityId,
        context=body.context,
    )
    return decision.as_dict()
