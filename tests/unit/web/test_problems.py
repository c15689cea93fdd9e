"""Every JSON API error is problem+json with a stable code; server errors never leak details."""

from __future__ import annotations

import asyncio

import httpx
import pydantic
from fastapi import FastAPI

from updown import errors
from updown.web import problems


class Body(pydantic.BaseModel):
    email: str
    size: int


def _app() -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.post("/echo")
    async def echo(body: Body) -> dict[str, int]:
        return {"size": body.size}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret path /etc/shadow")

    @app.get("/denied")
    async def denied() -> None:
        raise errors.AccessDenied("no")

    @app.get("/slow-down")
    async def slow_down() -> None:
        raise errors.TooManyRequests("wait", retry_after=7)

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise errors.ServiceUnavailable("db at /var/lib/secret down")

    return app


def _call(method: str, path: str, **kwargs: object) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.request(method, path, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(go())


def test_problems_malformed_json_400_invalid_request() -> None:
    r = _call("POST", "/echo", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "InvalidRequest"
    assert r.json()["detail"] == "request body is not valid JSON"


def test_problems_wrong_type_names_field_400() -> None:
    r = _call("POST", "/echo", json={"email": "a@b.c", "size": "big"})
    assert r.status_code == 400
    assert r.json()["detail"].startswith("size:")
    assert "big" not in r.json()["detail"]


def test_problems_missing_field_400() -> None:
    r = _call("POST", "/echo", json={"size": 1})
    assert r.status_code == 400
    assert r.json()["detail"].startswith("email:")


def test_problems_unhandled_exception_500_without_detail() -> None:
    r = _call("GET", "/boom")
    assert r.status_code == 500
    assert r.json() == {
        "type": "https://updown.dev/errors/InternalError",
        "title": "Internal error",
        "status": 500,
        "detail": "Internal error",
        "code": "InternalError",
    }
    assert "/etc" not in r.text


def test_problems_server_error_detail_hidden_503() -> None:
    r = _call("GET", "/unavailable")
    assert r.status_code == 503
    assert r.json()["code"] == "ServiceUnavailable"
    assert "/var" not in r.text


def test_problems_client_error_keeps_code_and_status() -> None:
    r = _call("GET", "/denied")
    assert (r.status_code, r.json()["code"]) == (403, "AccessDenied")


def test_problems_too_many_requests_has_retry_after() -> None:
    r = _call("GET", "/slow-down")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"


def test_errors_every_client_error_has_unique_code_and_4xx_status() -> None:
    classes = errors.all_client_errors()
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    assert all(400 <= c.status < 500 for c in classes)
