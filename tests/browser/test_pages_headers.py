"""The pages' security headers and markup, read over plain HTTP (no browser needed): a strict CSP
on every page, no inline script anywhere, the docs' assets served by updown itself."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.processes import Server

pytestmark = [pytest.mark.e2e]

PAGES = ["/", "/files", "/profile", "/docs", "/redoc"]


def _directives(csp: str) -> dict[str, str]:
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else "" for d in (x.strip() for x in csp.split(";"))}


@pytest.mark.parametrize("path", PAGES)
def test_pages_strict_csp_and_no_inline_script(server: Server, path: str) -> None:
    r = httpx.get(server.url + path)
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
