"""The storage contract for listings with a delimiter and a start: common prefixes, markers and
pages, the same on every backend (local disk, S3 via moto, with and without prefix probes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.bodies import chunks
from updown.storage.base import ListPage, StorageBackend
from updown.storage.local import LocalBackend
from updown.storage.local import backend as backend_module

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["local", "s3", "s3_probing"])
def backend(request: pytest.FixtureRequest) -> StorageBackend:
    """Every backend of the contract, and the S3 one probing its common prefixes (``s3.probe_prefixes``)."""
    fixture: StorageBackend = request.getfixturevalue(f"{request.param}_backend")
    return fixture


TREE = [
    "asdf",
    "boo/bar",
    "boo/baz/xyzzy",
    "cquux/thud",
    "cquux/bla",
    "d/e/f/g",
    "d/e/h",
    "d/i",
    "d/j/k",
    "d-k",
    "é/x",
    "z",
]


async def _put_tree(backend: StorageBackend, keys: list[str] = TREE) -> None:
    for key in keys:
        await backend.put(key, chunks(key.encode()))


def _entries(page: ListPage) -> list[str]:
    return sorted([i.key for i in page.items] + list(page.prefixes))


def _expected(keys: list[str], prefix: str, delimiter: str) -> tuple[list[str], list[str]]:
    """What S3 answers, computed the obvious way."""
    plain: list[str] = []
    common: set[str] = set()
    for key in keys:
        if not key.startswith(prefix):
            continue
        at = key.find(delimiter, len(prefix))
        if at >= 0:
            common.add(key[: at + len(delimiter)])
        else:
            plain.append(key)
    return sorted(plain), sorted(common)


@pytest.mark.parametrize(
    ("prefix", "delimiter"),
    [("", "/"), ("d/", "/"), ("d", "/"), ("d/e/", "/"), ("bo", "/"), ("", "a"), ("d/", "e/"), ("nothing/", "/")],
)
async def test_list_with_delimiter_rolls_keys_up_into_common_prefixes(
    backend: StorageBackend, prefix: str, delimiter: str
) -> None:
    await _put_tree(backend)
    page = await backend.list(prefix, delimiter=delimiter)
    plain, common = _expected(TREE, prefix, delimiter)
    assert [i.key for i in page.items] == plain
    assert list(page.prefixes) == common
    assert page.next_token is None


async def test_list_with_delimiter_counts_prefixes_against_the_page_and_pages_without_repeats(
    backend: StorageBackend,
) -> None:
    await _put_tree(backend)
    plain, common = _expected(TREE, "", "/")
    expected = sorted(plain + common)
    for limit in (1, 2, 3):
        seen: list[str] = []
        token: str | None = None
        while True:
            page = await backend.list("", limit=limit, delimiter="/", continuation_token=token)
            assert len(page.items) + len(page.prefixes) <= limit
            seen += _entries(page)
            token = page.next_token
            if token is None:
                break
            assert page.last == seen[-1]
        assert seen == expected, limit


async def test_list_start_after_skips_keys_and_a_common_prefix_it_names(backend: StorageBackend) -> None:
    await _put_tree(backend)
    # The s3-tests sequence: a marker naming a common prefix moves past all of it.
    first = await backend.list("", limit=1, delimiter="/")
    assert _entries(first) == ["asdf"]
    assert first.last == "asdf"
    second = await backend.list("", limit=1, delimiter="/", start_after="asdf")
    assert list(second.prefixes) == ["boo/"]
    assert second.next_token is not None
    third = await backend.list("", limit=1, delimiter="/", start_after="boo/")
    assert list(third.prefixes) == ["cquux/"]
    # Without a delimiter, start-after is plain "keys after".
    rest = await backend.list("", start_after="d/e/h")
    assert [i.key for i in rest.items] == [k for k in sorted(TREE) if k > "d/e/h"]
    last = await backend.list("", start_after="é/y")
    assert last.items == ()
    assert last.next_token is None


async def test_list_delimiter_many_keys_below_a_prefix_stays_one_entry(backend: StorageBackend) -> None:
    keys = [f"big/{n:03d}/x" for n in range(40)] + ["big/z"]
    await _put_tree(backend, keys)
    page = await backend.list("big/", delimiter="/", limit=5)
    assert list(page.prefixes) == [f"big/{n:03d}/" for n in range(5)]
    assert page.next_token is not None
    seen = _entries(page)
    while page.next_token is not None:
        page = await backend.list("big/", delimiter="/", limit=7, continuation_token=page.next_token)
        seen += _entries(page)
    assert seen == [f"big/{n:03d}/" for n in range(40)] + ["big/z"]


async def test_list_empty_delimiter_is_no_delimiter(backend: StorageBackend) -> None:
    await _put_tree(backend)
    page = await backend.list("d/", delimiter="")
    assert [i.key for i in page.items] == sorted(k for k in TREE if k.startswith("d/"))
    assert page.prefixes == ()


async def test_local_list_with_delimiter_reads_one_object_per_common_prefix(
    local_backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [f"wide/{d:02d}/{n:02d}" for d in range(10) for n in range(30)]
    await _put_tree(local_backend, keys)
    reads: list[str] = []
    original = backend_module._read_record

    def counting(obj_dir: Path) -> object:
        reads.append(obj_dir.name)
        return original(obj_dir)

    monkeypatch.setattr(backend_module, "_read_record", counting)
    page = await local_backend.list("wide/", delimiter="/")
    assert list(page.prefixes) == [f"wide/{d:02d}/" for d in range(10)]
    assert len(reads) == 10  # not 300: the rest of each prefix is never visited
