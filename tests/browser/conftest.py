"""Browser fixtures: Playwright driving Debian's chromium against one real `updown serve`.

The browser tests skip only when /usr/bin/chromium is absent; `.ci/run` installs it. Every test
gets a fresh browser context whose console errors, page errors, CSP violations and external
requests fail the test at teardown, and a ``shot(name)`` that writes a numbered screenshot under
the session's artifacts directory (``$UPDOWN_TEST_ARTIFACTS`` or pytest's temporary directory).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.watch import Watch
from tests.support.processes import Server, clean_env

CHROMIUM = Path("/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Amplify's guest role may list public/: the default guest policy does not (yet), so the server
# of these tests adds the one statement that lets a guest browse public files.
GUEST_LIST_PUBLIC = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "GuestListPublic",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::files",
            "Condition": {"StringLike": {"s3:prefix": ["public/", "public/*"]}},
        }
    ],
}

Shot = Callable[[str], Path]
_written: list[Path] = []


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in this thread
# while it is open, which broke every async test collected after the browser tests.
@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`updown serve` on embedded defaults, plus the guest listing of public files."""
    root = tmp_path_factory.mktemp("browser-serve")
    policy = root / "guest-list-public.json"
    policy.write_text(json.dumps(GUEST_LIST_PUBLIC))
    env = clean_env(
        {
            "UPDOWN_POLICY__FILES": json.dumps([str(policy)]),
            "UPDOWN_POLICY__ROLES": json.dumps({"guest": ["guest-storage", "guest-list-public"]}),
        }
    )
    srv = Server(data_dir=root / "data", env=env).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = os.environ.get("UPDOWN_TEST_ARTIFACTS")
    where = Path(base) / "browser" if base else tmp_path_factory.getbasetemp() / "browser-screenshots"
    where.mkdir(parents=True, exist_ok=True)
    _written.append(where)
    return where


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Browser, watch: Watch, server: Server) -> Iterator[Page]:
    """A page in a fresh context (desktop size); what the watch saw fails the test at teardown."""
    context = browser.new_context(viewport=DESKTOP, base_url=server.url, accept_downloads=True)
    context.set_default_timeout(15_000)
    watch.attach(context)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
    problems = watch.problems()
    assert not problems, "\n".join(problems)


@pytest.fixture
def shot(page: Page, artifacts: Path, request: pytest.FixtureRequest) -> Shot:
    """``shot("signed-in")`` writes ``<artifacts>/<test>/NN-signed-in.png`` (full page)."""
    folder = artifacts / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    count = 0

    def take(name: str) -> Path:
        nonlocal count
        count += 1
        path = folder / f"{count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for where in _written:
        terminalreporter.write_line(f"browser screenshots: {where}")
