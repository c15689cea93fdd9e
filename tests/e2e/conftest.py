"""E2E fixtures: a real `updown serve` per test module, with its log shown when a test fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Server, clean_env

_failed_logs: dict[str, Server] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`updown serve` on a free loopback port with a throwaway data dir (embedded defaults)."""
    root: Path = tmp_path_factory.mktemp("serve")
    srv = Server(data_dir=root / "data", env=clean_env()).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server: Server, request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"\n--- updown serve log ({server.log}) ---\n{server.log_tail()}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    rep = yield
    if call.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep
