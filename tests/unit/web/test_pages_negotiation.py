"""The page/API split of a shared path: only a request that weighs HTML above JSON gets the page
(RFC 9110 Accept: the most specific matching range's q decides; a tie goes to the JSON API)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from updown.web.routes.pages import BrowserPageRoute, prefers_html, quality

CHROMIUM = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7"
)
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("accept", [CHROMIUM, FIREFOX, "text/html", "TEXT/HTML", "application/json;q=0.5, text/html"])
def test_prefers_html_browser_navigations_true(accept: str) -> None:
    assert prefers_html(accept)


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "*/*",
        "application/json",
        "application/json, text/plain, */*",
        "text/html, application/json",
        "text/html;q=0.5, application/json",
        "text/*;q=0.9, */*",
        "text/html;q=0, */*;q=0.1",
        "text/html;q=nan",
        "text/html;q=bogus, application/json;q=0.1",
        ",,;;",
    ],
)
def test_prefers_html_api_clients_and_ties_false(accept: str | None) -> None:
    assert not prefers_html(accept)


def test_quality_most_specific_range_wins() -> None:
    assert quality("text/*;q=0.3, text/html;q=0.7, */*;q=0.1", "text/html") == 0.7
    assert quality("text/*;q=0.3, */*;q=0.1", "text/html") == 0.3
    assert quality("*/*;q=0.1", "application/json") == 0.1
    assert quality("image/png", "text/html") == 0.0
    assert quality("text/html;q=7", "text/html") == 1.0


def _app() -> FastAPI:
    """A page and an API route on one path, the page's router included first (as web/app.py does)."""
    app = FastAPI()
    pages = APIRouter(route_class=BrowserPageRoute)

    @pages.get("/things/{thing_id}")
    async def page(thing_id: str) -> dict[str, str]:
        return {"served": "page", "id": thing_id}

    api = APIRouter()

    @api.get("/things/{thing_id}")
    async def json_api(thing_id: str) -> dict[str, str]:
        return {"served": "api", "id": thing_id}

    app.include_router(pages)
    app.include_router(api)
    return app


def _served(accept: str | None) -> object:
    async def go() -> object:
        transport = httpx.ASGITransport(app=_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            request = c.build_request("GET", "/things/7")
            del request.headers["accept"]
            if accept is not None:
                request.headers["accept"] = accept
            return (await c.send(request)).json()

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("accept", "served"), [(CHROMIUM, "page"), ("application/json", "api"), ("*/*", "api"), (None, "api")]
)
def test_browser_page_route_matches_only_html_preferring_requests(accept: str | None, served: str) -> None:
    assert _served(accept) == {"served": served, "id": "7"}
