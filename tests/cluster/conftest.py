"""The cluster, once per session: tests/cluster/stack.py, torn down (and its database dropped) after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.stack import Cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start()
        yield c
    finally:
        c.stop()
