"""What a browser test watches besides its own assertions: console errors, uncaught page errors,
CSP violations and any request that would leave 127.0.0.1 (aborted, so nothing reaches a CDN)."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, ConsoleMessage, Error, Route

# Reported by the page (document listener) through an exposed binding, not via the page's own scripts.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__updownCspViolation(`${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@dataclass
class Watch:
    """Collects what went wrong in one browser context; :meth:`problems` lists what was not allowed."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        context.expose_function("__updownCspViolation", self._csp)
        context.add_init_script(CSP_LISTENER)
        context.route("**/*", self._route)
        context.on("console", self._console)
        context.on("weberror", lambda e: self.page_errors.append(str(e.error)))

    def allow(self, pattern: str) -> None:
        """Console errors matching ``pattern`` are expected (e.g. the 401 of a wrong password)."""
        self.allowed.append(re.compile(pattern))

    def problems(self) -> list[str]:
        console = [m for m in self.console_errors if not any(p.search(m) for p in self.allowed)]
        return (
            [f"console error: {m}" for m in console]
            + [f"page error: {m}" for m in self.page_errors]
            + [f"CSP violation: {m}" for m in self.csp_violations]
            + [f"external request: {u}" for u in self.external_requests]
        )

    def _csp(self, violation: str) -> None:
        self.csp_violations.append(violation)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            self.console_errors.append(f"{message.text} ({where})")

    def _route(self, route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith(("blob:", "data:")) or host == "127.0.0.1":
            with contextlib.suppress(Error):  # the page went away while the request was paused
                route.continue_()
            return
        self.external_requests.append(route.request.url)
        route.abort("blockedbyclient")
