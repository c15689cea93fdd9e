"""The web UI's pages and the offline API docs. Thin: each renders one template.

Pages carry no user data: they are the same for everyone, and their ES modules fetch what the
signed-in user (or a guest) may see from the JSON API with a bearer token. A page on a path the
JSON API answers too (``/events/{eventId}``) is served by content negotiation: it is registered
on :data:`negotiated`, whose routes match only a request that prefers HTML (a browser's
navigation), so every other client reaches the API's route on the same path.
"""

from __future__ import annotations

import math

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.responses import HTMLResponse
from starlette.routing import Match
from starlette.types import Scope

from updown.apps import events, products
from updown.web.deps import RuntimeDep
from updown.web.ui.rendering import render

router = APIRouter(include_in_schema=False)

HTML = "text/html"
JSON = "application/json"


def quality(accept: str, media: str) -> float:
    """The weight ``accept`` gives ``media``: the q of its most specific matching range
    (RFC 9110 §12.5.1); 0 when no range matches (or there is no header at all)."""
    kind = media.split("/", 1)[0]
    specific, weight = -1, 0.0
    for item in accept.split(","):
        media_range, *params = (part.strip() for part in item.split(";"))
        media_range = media_range.lower()
        rank = {media: 2, f"{kind}/*": 1, "*/*": 0}.get(media_range)
        if rank is None or rank <= specific:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        specific = rank
        weight = min(1.0, max(0.0, q)) if math.isfinite(q) else 0.0
    return weight


def prefers_html(accept: str | None) -> bool:
    """Whether a request wants the page rather than the JSON: only if it weighs HTML strictly
    higher. Browsers navigate with ``text/html,…,*/*;q=0.8``; API clients send ``application/json``,
    ``*/*`` or nothing, and a tie goes to the JSON API."""
    return bool(accept) and quality(accept or "", HTML) > quality(accept or "", JSON)


class BrowserPageRoute(APIRoute):
    """A page route that matches only when the request prefers HTML over JSON."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not prefers_html(Headers(scope=scope).get("accept")):
            return Match.NONE, {}
        return super().matches(scope)


# Registered before the API routers whose paths it shares (web/app.py).
negotiated = APIRouter(include_in_schema=False, route_class=BrowserPageRoute)


@router.get("/")
def home(runtime: RuntimeDep) -> HTMLResponse:
    return render(runtime.settings, "index.html", page="home")


@router.get("/files")
def files(runtime: RuntimeDep) -> HTMLResponse:
    return render(runtime.settings, "files.html", page="files")


@router.get("/profile")
def profile(runtime: RuntimeDep) -> HTMLResponse:
    return render(runtime.settings, "profile.html", page="profile")


@router.get("/shop")
def shop(runtime: RuntimeDep) -> HTMLResponse:
    return render(runtime.settings, "shop.html", page="shop")


@router.get("/admin")
def admin(runtime: RuntimeDep) -> HTMLResponse:
    return render(
        runtime.settings,
        "admin.html",
        page="admin",
        product_name_max=products.MAX_NAME,
        product_description_max=products.MAX_DESCRIPTION,
        event_name_max=events.MAX_NAME,
    )


@negotiated.get("/events/{event_id}")
def event(event_id: str, runtime: RuntimeDep) -> HTMLResponse:
    # The photo uploader refuses early what initiate-upload and the data plane would refuse.
    response = render(
        runtime.settings,
        "event.html",
        page="event",
        event_id=event_id,
        photo_types=tuple(events.PHOTO_TYPES),
        photo_max_size=runtime.settings.apps.event_photo_max_size,
        title_max=events.MAX_TITLE,
        description_max=events.MAX_DESCRIPTION,
    )
    # The same URL answers JSON to API clients: caches must keep the two apart.
    response.headers["Vary"] = "Accept"
    return response


@router.get("/docs")
def swagger_ui(runtime: RuntimeDep) -> HTMLResponse:
    return render(runtime.settings, "docs.html", page="docs", openapi_url="/openapi.json")


@router.get("/redoc")
def redoc(runtime: RuntimeDep) -> HTMLResponse:
    return render(runtime.settings, "redoc.html", redoc=True, page="redoc", openapi_url="/openapi.json")
