"""web.app's JSON body limit: 413 problem+json, declared or streamed, with the rest of the body read
first (up to DRAIN_MAX) so a proxy still sending gets the answer, and Connection: close past that."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import anyio
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.types import Message

from updown.web import problems
from updown.web.app import DRAIN_MAX, Dispatcher, _ProblemGuard

LIMIT = 1000
CHUNK = 64 * 1024


class Body(BaseModel):
    text: str


def make_app() -> _ProblemGuard:
    api = FastAPI()
    problems.install(api)

    @api.post("/echo")
    async def echo(body: Body) -> dict[str, int]:
        return {"length": len(body.text)}

    @api.get("/ping")
    async def ping() -> dict[str, str]:
        return {"ok": "yes"}

    return _ProblemGuard(Dispatcher(api, {}, LIMIT))


@dataclass
class Exchange:
    """One request played into the app: the body in ``chunks``, then what came back."""

    chunks: list[bytes]
    read: int = 0
    read_past_end: bool = False
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""

    async def receive(self) -> Message:
        if self.read >= len(self.chunks):
            self.read_past_end = True
            await anyio.sleep(3600)  # a server waits for the disconnect that never comes here
        self.read += 1
        return {
            "type": "http.request",
            "body": self.chunks[self.read - 1],
            "more_body": self.read < len(self.chunks),
        }

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = dict(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    @property
    def drained(self) -> bool:
        return self.read == len(self.chunks)


def play(method: str, path: str, chunks: list[bytes], *, declare: bool) -> Exchange:
    ex = Exchange(chunks)
    headers = [(b"content-type", b"application/json")]
    if declare:
        headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
    elif chunks:
        headers.append((b"transfer-encoding", b"chunked"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 8000),
    }

    async def main() -> None:
        with anyio.fail_after(10):
            await make_app()(scope, ex.receive, ex.send)

    anyio.run(main)
    assert not ex.read_past_end, "read on after the body ended"
    return ex


def body_of(size: int) -> list[bytes]:
    data = json.dumps({"text": "x" * size}).encode()
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]


def assert_413(ex: Exchange) -> None:
    assert ex.status == 413
    assert ex.headers[b"content-type"] == b"application/problem+json"
    assert json.loads(ex.body)["code"] == "EntityTooLarge"


def test_under_the_limit_the_route_answers() -> None:
    ex = play("POST", "/echo", body_of(100), declare=True)
    assert ex.status == 200
    assert json.loads(ex.body) == {"length": 100}
    assert b"connection" not in ex.headers


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "chunked"])
def test_over_the_limit_413_after_the_whole_body_is_read(declare: bool) -> None:
    ex = play("POST", "/echo", body_of(2_000_000), declare=declare)
    assert_413(ex)
    assert ex.drained
    assert b"connection" not in ex.headers


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "chunked"])
def test_far_over_the_limit_413_with_connection_close_and_not_read_on(declare: bool) -> None:
    ex = play("POST", "/echo", body_of(DRAIN_MAX + 4 * CHUNK), declare=declare)
    assert_413(ex)
    assert ex.headers[b"connection"] == b"close"
    assert not ex.drained
    # Declared: nothing read at all; streamed: about DRAIN_MAX past the limit, no more.
    assert ex.read * CHUNK <= (0 if declare else LIMIT + DRAIN_MAX + 2 * CHUNK)


def test_an_answer_made_without_reading_the_body_drains_it_first() -> None:
    # GET /ping and a POST to no route never read the body; it is read before the answer goes out.
    ex = play("GET", "/ping", body_of(500), declare=True)
    assert ex.status == 200
    assert ex.drained
    missing = play("POST", "/no/such/route", body_of(500), declare=False)
    assert missing.status == 404
    assert missing.drained
    assert b"connection" not in missing.headers


def test_no_body_nothing_read() -> None:
    ex = play("GET", "/ping", [], declare=False)
    assert ex.status == 200
    assert ex.read == 0
