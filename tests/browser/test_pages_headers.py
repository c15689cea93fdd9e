"""The pages' security headers and markup, read over plain HTTP (no browser needed): a strict CSP
on every page, no inline script anywhere, the docs' assets served by updown itself; and the path
that is both a page and an API route (``/events/{eventId}``) negotiated on Accept: a browser's
navigation gets the page, every JSON client (``application/json``, ``*/*``, no Accept) the JSON."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.apps_helpers import admin
from tests.e2e.files_helpers import guest
from tests.support.processes import Server

pytestmark = [pytest.mark.e2e]

# An event page renders for any id: the page's module asks the API what the event is.
PAGES = ["/", "/files", "/profile", "/shop", "/admin", "/events/some-event-id", "/docs", "/redoc"]
# What Chromium sends when it navigates to a page.
BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7"
)


def _directives(csp: str) -> dict[str, str]:
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else "" for d in (x.strip() for x in csp.split(";"))}


@pytest.mark.parametrize("path", PAGES)
def test_pages_strict_csp_and_no_inline_script(server: Server, path: str) -> None:
    r = httpx.get(server.url + path, headers={"Accept": BROWSER_ACCEPT})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = _directives(r.headers["content-security-policy"])
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'"
    assert csp["img-src"].startswith("'self' blob: data:")
    assert csp["connect-src"].startswith("'self'")
    assert "unsafe-eval" not in r.headers["content-security-policy"]
    # Only ReDoc's bundle needs inline styles (and a blob worker); every other page has neither.
    assert ("'unsafe-inline'" in csp["style-src"]) == (path == "/redoc")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", r.text, re.S)
    assert scripts
    for attributes, body in scripts:
        assert "src=" in attributes, attributes
        assert not body.strip(), body
    assert not re.search(r"\son[a-z]+=", r.text), "inline event handler"
    assert "cdn.jsdelivr.net" not in r.text
    assert "fonts.googleapis.com" not in r.text


def test_pages_static_assets_served_with_revalidation(server: Server) -> None:
    for asset in [
        "/static/app.css",
        "/static/uploader.js",
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/redoc/redoc.standalone.js",
    ]:
        r = httpx.get(server.url + asset)
        assert r.status_code == 200, asset
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["etag"]
    js = httpx.get(server.url + "/static/uploader.js")
    assert js.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert httpx.get(server.url + "/static/nope.js").status_code == 404
    assert httpx.get(server.url + "/openapi.json").json()["info"]["title"] == "updown"


@pytest.fixture(scope="module")
def event_path(server: Server) -> str:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        boss = admin(client, server)
        r = client.post(
            "/events", headers=boss.headers, json={"name": "Negotiated", "startsAt": "2026-06-01T18:00:00Z"}
        )
        assert r.status_code == 201, r.text
        return f"/events/{r.json()['id']}"


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "*/*",
        None,
        "application/json, text/html;q=0.5",
        "text/html, application/json",
        "text/*, application/json",
        "text/html;q=0.2, */*;q=0.2",
    ],
)
def test_pages_event_path_json_clients_get_json(server: Server, event_path: str, accept: str | None) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        who = guest(client)
        request = client.build_request("GET", event_path, headers=who.headers)
        del request.headers["accept"]
        if accept is not None:
            request.headers["accept"] = accept
        r = client.send(request)
        assert "accept" not in request.headers or request.headers["accept"] == accept
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["vary"] == "Accept"
    assert r.json()["name"] == "Negotiated"
    assert r.json()["attending"] is False


def test_pages_event_path_without_token_json_is_401_problem(server: Server, event_path: str) -> None:
    for accept in ("application/json", "*/*"):
        r = httpx.get(server.url + event_path, headers={"Accept": accept})
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "NotAuthorized"


@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "text/html", "application/json;q=0.5, text/html"])
def test_pages_event_path_browser_gets_the_page(server: Server, event_path: str, accept: str) -> None:
    # No token: a browser's navigation carries none; the page's module asks the API with one.
    r = httpx.get(server.url + event_path, headers={"Accept": accept})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in r.headers
    assert "accept" in r.headers["vary"].lower()
    event_id = event_path.rsplit("/", 1)[1]
    assert f'data-event-id="{event_id}"' in r.text
    assert '<script type="module" src="/static/event.js' in r.text


def test_pages_event_page_shadows_no_other_api_route(server: Server, event_path: str) -> None:
    for path in ("/events", f"{event_path}/photos", f"{event_path}/attendees"):
        r = httpx.get(server.url + path, headers={"Accept": BROWSER_ACCEPT})
        assert r.status_code == 401, path
        assert r.headers["content-type"].startswith("application/problem+json"), path
    # Other methods on the page's path reach the API as before.
    r = httpx.post(server.url + event_path, headers={"Accept": BROWSER_ACCEPT})
    assert r.status_code == 405
    assert not r.headers["content-type"].startswith("text/html")


def test_pages_event_page_escapes_the_id(server: Server) -> None:
    r = httpx.get(server.url + '/events/x"><b>', headers={"Accept": BROWSER_ACCEPT})
    assert r.status_code == 200
    assert '"><b>' not in r.text
    assert 'data-event-id="x&#34;&gt;&lt;b&gt;"' in r.text
