"""Prometheus metrics: request counts and latencies per route family, kept per process."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Route families bound label cardinality: a path's first segment if it is one of these, else "other".
FAMILIES = frozenset(
    {
        "auth",
        "identity",
        "storage",
        "s3",
        "cdn",
        "events",
        "graphql",
        "policy",
        "healthz",
        "readyz",
        "metrics",
        ".well-known",
        "docs",
        "openapi.json",
        "ui",
        "static",
    }
)


class Metrics:
    """The registry of one process and the ASGI middleware that feeds it."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "updown_http_requests", "HTTP requests served", ["family", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "updown_http_request_duration_seconds",
            "Time to the end of the response",
            ["family"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status = 500

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                family = family_of(scope["path"])
                self.requests.labels(family, scope["method"], str(status)).inc()
                self.latency.labels(family).observe(time.perf_counter() - start)

        return middleware


def family_of(path: str) -> str:
    first = path.lstrip("/").split("/", 1)[0]
    if not first:
        return "ui"
    return first if first in FAMILIES else "other"
