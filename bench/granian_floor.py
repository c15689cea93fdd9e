"""The least an ASGI app can do under granian to serve a file: what the data plane's GET can at best reach.

Streams ``BENCH_FILE`` for any GET in 256 KiB ``os.pread`` pieces (the data plane's piece size),
with no signature, policy, storage layer or headers beyond ``content-length``; ``/ping`` answers
``ok``. Started by `bench.servers.GranianFloor` with the same HTTP/1 settings as `updown serve`.
"""

from __future__ import annotations

import os
from typing import Any

PIECE = 256 * 1024
# Opened once at import: a floor has no per-request file work to do (the data plane does more).
_FD = os.open(os.environ["BENCH_FILE"], os.O_RDONLY) if "BENCH_FILE" in os.environ else -1


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/ping":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    size = os.fstat(_FD).st_size
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(size).encode())]})
    position = 0
    while position < size:
        piece = os.pread(_FD, PIECE, position)
        position += len(piece)
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
