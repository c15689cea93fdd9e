"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from updown.errors import ServiceUnavailable
from updown.runtime import Runtime
from updown.web.deps import get_runtime
from updown.web.problems import problem_response

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(runtime: Annotated[Runtime, Depends(get_runtime)]) -> dict[str, str] | Response:
    """Readiness: the database and storage answer."""
    failures = await runtime.check_ready()
    if failures:
        return problem_response(ServiceUnavailable(f"not ready: {', '.join(failures)} unreachable"))
    return {"status": "ready"}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format for this process."""
    m = request.app.state.metrics
    return Response(m.render(), media_type=m.content_type)
