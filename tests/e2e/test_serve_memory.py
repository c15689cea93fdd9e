"""What one `updown serve` holds: the main process is granian's supervisor alone, and a worker
loads the GraphQL stack only when `/graphql` is first called (issue 15, item 9: parent <= 30 MiB,
the whole server with one worker < 130 MiB; asserted on Pss, see `proportional`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Server, clean_env

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


def resident(pid: int) -> int:
    """VmRSS of ``pid``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def proportional(pid: int) -> int:
    """Pss of ``pid`` (its private pages, plus its share of pages mapped by others), in bytes.

    What the assertions use: RSS counts every resident page of the shared libraries a process maps,
    and how many of those are mapped depends on what the page cache holds (fault-around), so the
    same supervisor reads 26.7 MiB alone and 32.0 MiB late in the full suite; Pss does not move so.
    """
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no Pss for {pid}")


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(data_dir=tmp_path_factory.mktemp("memory") / "data", env=clean_env()).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_serve_main_process_is_the_supervisor_alone_and_small(server: Server) -> None:
    assert server.proc is not None
    # Same process id as the one started (signals reach granian), now running the supervisor.
    assert cmdline(server.proc.pid)[1:3] == ["-m", "updown.web.supervisor"]
    main = server.proc.pid
    assert proportional(main) <= 30 * MIB, f"Pss {proportional(main) / MIB:.1f} MiB, RSS {resident(main) / MIB:.1f} MiB"
    with httpx.Client(base_url=server.url) as c:
        assert c.post("/identity/guest").status_code == 201
        assert c.get("/").status_code == 200
    workers = server.worker_pids()
    assert len(workers) == 1
    whole = proportional(main) + proportional(workers[0])
    rss = resident(main) + resident(workers[0])
    assert whole < 130 * MIB, f"Pss {whole / MIB:.1f} MiB, RSS {rss / MIB:.1f} MiB"


def test_graphql_built_on_first_call_then_answers(server: Server) -> None:
    with httpx.Client(base_url=server.url) as c:
        # The first call builds the surface (a bearer token is still required first).
        denied = c.post("/graphql", json={"query": "{ listProducts { id } }"})
        assert denied.status_code == 401
        assert denied.json()["code"] == "NotAuthorized"
        guest = c.post("/identity/guest").json()
        ok = c.post(
            "/graphql",
            json={"query": "{ listProducts { id } }"},
            headers={"Authorization": f"Bearer {guest['token']}"},
        )
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"data": {"listProducts": []}}
        assert (
            c.get(
                "/graphql", params={"query": "{ __typename }"}, headers={"Authorization": f"Bearer {guest['token']}"}
            ).status_code
            == 400
        )
