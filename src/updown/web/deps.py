"""FastAPI dependencies: the runtime of this process (and, with the user pool, the principal)."""

from __future__ import annotations

from fastapi import Request

from updown.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime
