"""The local backend's offload header: the mapped path, encoded for nginx; bad settings refused."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.contract.bodies import chunks
from updown.errors import ConfigError
from updown.storage.local import LocalBackend

pytestmark = pytest.mark.anyio


def _contents(path: Path) -> bytes:
    return path.read_bytes()


async def test_offload_accel_redirect_names_the_pinned_version_under_the_prefix(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path, offload="x-accel-redirect", offload_prefix="/_o/")
    await store.put("Dir A/ü#?.bin", chunks(b"hello"))
    async with await store.get("Dir A/ü#?.bin") as stream:
        assert stream.offload is not None
        name, value = stream.offload
        assert name == b"x-accel-redirect"
        text = value.decode("ascii")
        assert text.startswith("/_o/")
        # nginx decodes once: the result is the version file's path under <root>/objects.
        on_disk = store.root / "objects" / unquote(text[len("/_o/") :])
        assert on_disk.parent == store.object_dir("Dir A/ü#?.bin")
        assert _contents(on_disk) == b"hello"


async def test_offload_sendfile_names_the_absolute_path(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path, offload="x-sendfile")
    await store.put("k", chunks(b"bytes"))
    async with await store.get("k", byte_range=(1, 2)) as stream:
        assert stream.offload is not None
        path = Path(os.fsdecode(stream.offload[1]))
        assert path.is_absolute()
        assert _contents(path) == b"bytes"
        assert stream.byte_range == (1, 2)  # the range was checked; the front server applies it


async def test_offload_none_gives_no_header(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path)
    await store.put("k", chunks(b"x"))
    async with await store.get("k") as stream:
        assert stream.offload is None


@pytest.mark.parametrize(
    ("mode", "prefix"),
    [("nginx", "/_o/"), ("x-accel-redirect", "_o/"), ("x-accel-redirect", "/_o"), ("x-accel-redirect", "/a b/")],
)
def test_offload_bad_settings_are_refused(tmp_path: Path, mode: str, prefix: str) -> None:
    with pytest.raises(ConfigError):
        LocalBackend(tmp_path, offload=mode, offload_prefix=prefix)
