"""An ASGI app built on its first request, for surfaces most deployments never call.

`/graphql` (the product catalogue) is one: Strawberry and graphql-core weigh ~9 MiB resident in
every server worker (measured with ``/proc/self/status`` after import, beside FastAPI and
SQLAlchemy). Built once, in a worker thread (the imports take ~0.3 s), while other requests go on.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send


class LazyApp:
    """Calls ``build()`` once, on the first request, and hands every request to what it built."""

    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self._build = build
        self._app: ASGIApp | None = None
        self._lock: anyio.Lock | None = None

    @property
    def built(self) -> bool:
        return self._app is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            # Made here, not in __init__: the lock belongs to the event loop that serves requests.
            if self._lock is None:
                self._lock = anyio.Lock()
            async with self._lock:
                if self._app is None:
                    self._app = await anyio.to_thread.run_sync(self._build)
                app = self._app
        await app(scope, receive, send)
