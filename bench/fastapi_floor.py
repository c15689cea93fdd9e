"""The least a FastAPI route shaped like ``POST /storage/uploads`` costs under granian: what
initiation can at best reach with the framework updown uses.

The same request model (`updown.web.routes.storage.Initiate`: strict Pydantic), one async
dependency that hops to a worker thread (as the bearer check does), one more hop (as recording the
intent does), and an answer of the same shape; no token check, policy, database or signing.
``/ping`` answers ``ok``. Started by `bench.servers.GranianFloor` with the settings of `updown serve`.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import Depends, FastAPI, Request

from updown.web.routes.storage import Initiate

app = FastAPI()


async def _caller(request: Request) -> str:
    return await anyio.to_thread.run_sync(lambda: request.headers.get("authorization", ""))


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/storage/uploads", status_code=201)
async def initiate(body: Initiate, caller: str = Depends(_caller)) -> dict[str, object]:
    await anyio.to_thread.run_sync(lambda: None)
    key = f"{body.accessLevel}/{body.name or 'x' * 32}"
    url = f"http://127.0.0.1/s3/files/_uploads/{'0' * 32}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={'f' * 64}"
    return {
        "uploadId": "0" * 32,
        "key": key,
        "expiresAt": "2026-01-01T00:00:00Z",
        "put": {"url": url, "headers": {"Content-Type": body.contentType, "Content-Length": str(body.size)}},
    }
