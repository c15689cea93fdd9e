"""E2E fixtures: a real `updown serve` per test module, with its log shown when a test fails.

With ``UPDOWN_TEST_CLUSTER`` naming a cluster description (tests/cluster writes it), ``server`` is
that cluster's nginx front instead, and the tests marked ``embedded`` are deselected.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Server, clean_env

CLUSTER_ENV = "UPDOWN_TEST_CLUSTER"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`updown serve` on a free loopback port with a throwaway data dir (embedded defaults); in
    the cluster run, the cluster's front (3 API processes, 2 workers, PostgreSQL, SeaweedFS)."""
    if os.environ.get(CLUSTER_ENV):
        from tests.cluster.stack import ClusterFront

        yield ClusterFront.attach(Path(os.environ[CLUSTER_ENV]))
        return
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the cluster run, keeps the tests that talk to this conftest's ``server``: deselected are
    those marked ``embedded`` (they check what only one embedded process has) and those that do
    not use it (their own ``server`` fixture or ``Server``, with settings of their own: they run
    in the embedded suite)."""
    if not os.environ.get(CLUSTER_ENV):
        return
    keep, drop = [], []
    for item in items:
        (keep if cluster_runs(item) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def cluster_runs(item: pytest.Item) -> bool:
    """Whether ``item`` runs against the cluster: it uses this conftest's ``server`` and is not ``embedded``."""
    if item.get_closest_marker("embedded") is not None:
        return False
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get("server", ()) if info is not None else ()
    # The closest definition wins; a test module's own ``server`` has the module's node id.
    return bool(defs) and not defs[-1].baseid.endswith(".py")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    rep = yield
    if call.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep
