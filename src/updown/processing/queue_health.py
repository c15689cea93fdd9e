"""`updown worker`'s own health and metrics: a tiny HTTP/1.1 listener (stdlib asyncio, no web
framework in a worker) answering ``GET /healthz`` and Prometheus ``GET /metrics``, nothing else."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from updown.processing.queue import WorkerStats

log = logging.getLogger("updown.worker")
_MAX_REQUEST = 8192


class HealthListener:
    """Serves ``/healthz`` (200 while running, 503 once stopping) and ``/metrics`` of one worker."""

    def __init__(self, stats: WorkerStats, stopping: Callable[[], bool], *, host: str, port: int) -> None:
        self.stats = stats
        self.stopping = stopping
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Starts listening; returns the port (the chosen one when ``port`` was 0)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        port = int(self._server.sockets[0].getsockname()[1])
        log.info("worker health on http://%s:%s/healthz", self.host, port)
        return port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            if len(head) > _MAX_REQUEST:
                raise ValueError("request too large")
            method, path = _request_line(head)
            status, ctype, body = self._answer(method, path)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            status, ctype, body = 400, "text/plain", b"bad request\n"
        try:
            writer.write(
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii")
                + body
            )
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        path = path.split("?", 1)[0]
        if path == "/healthz":
            stopping = self.stopping()
            body = {"status": "stopping" if stopping else "ok", "running": self.stats.in_hand}
            return (503 if stopping else 200), "application/json", json.dumps(body).encode()
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.stats.registry)
        return 404, "text/plain", b"not found\n"


def _request_line(head: bytes) -> tuple[str, str]:
    parts = head.split(b"\r\n", 1)[0].decode("ascii").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("not an HTTP/1 request line")
    return parts[0], parts[1]


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
