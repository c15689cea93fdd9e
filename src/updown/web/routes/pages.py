"""The web UI's pages and the offline API docs. Thin: each renders one template.

Pages carry no user data: they are the same for everyone, and their ES modules fetch what the
signed-in user (or a guest) may see from the JSON API with a bearer token.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import HTMLResponse

from updown.web.deps import RuntimeDep
from updown.web.ui.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(runtime: RuntimeDep) -> HTMLResponse:
    return render(runtime.settings, "index.html", page="home")


@router.get("/files")
def files(runtime: RuntimeDep) -> HTMLResponse:
    return render(runtime.settings, "files.html", page="files")


@router.get("/profile")
def profile(runtime: RuntimeDep) -> HTMLResponse:
    return render(runtime.settings, "profile.html", page="profile")


@router.get("/docs")
def swagger_ui(runtime: RuntimeDep) -> HTMLResponse:
    return render(runtime.settings, "docs.html", page="docs", openapi_url="/openapi.json")


@router.get("/redoc")
def redoc(runtime: RuntimeDep) -> HTMLResponse:
    return render(runtime.settings, "redoc.html", redoc=True, page="redoc", openapi_url="/openapi.json")
