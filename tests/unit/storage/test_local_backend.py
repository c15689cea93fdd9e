"""Local-disk backend: layout, containment, atomic replace, crash leftovers and their sweep."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import stat
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.contract.bodies import chunks, failing_body, read_all
from updown.errors import IncompleteBody, InvalidArgument, InvalidKey, NoSuchKey, ServiceUnavailable
from updown.storage.local import META, LocalBackend, reaper, spool
from updown.storage.local import reader as local

pytestmark = pytest.mark.anyio

ALPHABET = set("abcdefghijklmnopqrstuvwxyz0123456789-_.!%#@")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path / "store")


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def leftover_temp(store: LocalBackend) -> list[Path]:
    """The temp directory's files once the background unlinks queued so far are done."""
    store._reaper.drain()
    return list((store.root / "tmp").iterdir())


def versions_in(obj_dir: Path) -> list[str]:
    return sorted(p.name for p in obj_dir.iterdir() if p.name != META)


async def test_local_file_and_directory_of_same_name_coexist(store: LocalBackend) -> None:
    await store.put("a", chunks(b"file"))
    await store.put("a/b", chunks(b"below"))
    await store.put("a/b/c", chunks(b"deeper"))
    assert (await read_all(store, "a"), await read_all(store, "a/b"), await read_all(store, "a/b/c")) == (
        b"file",
        b"below",
        b"deeper",
    )
    assert [item.key for item in (await store.list()).items] == ["a", "a/b", "a/b/c"]
    await store.delete("a/b")
    assert await read_all(store, "a/b/c") == b"deeper"


async def test_local_keys_differing_in_case_get_distinct_paths(store: LocalBackend) -> None:
    upper, lower = store.object_dir("Photo.JPG"), store.object_dir("photo.jpg")
    # Distinct even on a case-insensitive file system.
    assert upper.name.lower() != lower.name.lower()
    await store.put("Photo.JPG", chunks(b"1"))
    await store.put("photo.jpg", chunks(b"2"))
    assert (await read_all(store, "Photo.JPG"), await read_all(store, "photo.jpg")) == (b"1", b"2")


def test_local_object_dir_encodes_every_segment(store: LocalBackend) -> None:
    path = store.object_dir("Up/.dot/ü b/x@y")
    assert path.relative_to(store.root / "objects").parts == ("!up", "%2edot", "%c3%bc%20b", "x%40y@")


@settings(max_examples=300, deadline=None)
@given(
    key=st.lists(
        st.one_of(st.text(max_size=30), st.sampled_from(["..", ".", "/", "%2e%2e", "\\", "@", "#", "!"])),
        min_size=1,
        max_size=10,
    ).map("".join),
)
def test_local_object_dir_any_key_stays_under_root(tmp_path_factory: pytest.TempPathFactory, key: str) -> None:
    store = LocalBackend(tmp_path_factory.mktemp("store", numbered=True))
    try:
        path = store.object_dir(key)
    except InvalidKey:
        return
    objects = store.root / "objects"
    relative = path.relative_to(objects)
    assert path.resolve() == path
    assert all(part not in (".", "..") and set(part) <= ALPHABET for part in relative.parts)
    assert all(len(part) <= 201 for part in relative.parts)
    assert relative.parts[-1].endswith("@")
    assert not any(part.endswith("@") for part in relative.parts[:-1])


async def test_local_symlink_planted_in_tree_is_refused(store: LocalBackend, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "objects" / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidKey):
        await store.put("evil/x", chunks(b"escape"))
    with pytest.raises(InvalidKey):
        await store.head("evil/x")
    assert list(outside.iterdir()) == []


async def test_local_put_leaves_only_meta_and_current_version(store: LocalBackend) -> None:
    for body in (b"1", b"22", b"333"):
        await store.put("k", chunks(body))
    obj_dir = store.object_dir("k")
    record = json.loads((obj_dir / META).read_bytes())
    assert versions_in(obj_dir) == [record["version"]]
    assert (obj_dir / record["version"]).read_bytes() == b"333"
    assert record["etag"] == md5(b"333")
    assert leftover_temp(store) == []


async def test_local_files_are_private_to_the_owner(store: LocalBackend) -> None:
    await store.put("a/b", chunks(b"x"))
    obj_dir = store.object_dir("a/b")
    for path in [obj_dir, obj_dir.parent]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    for path in obj_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_local_open_stream_keeps_reading_its_version_after_replace(store: LocalBackend) -> None:
    old = os.urandom(3 * 1024 * 1024)
    await store.put("k", chunks(old))
    async with await store.get("k") as stream:
        await store.put("k", chunks(b"new"))
        await store.delete("k")
        assert b"".join([c async for c in stream]) == old
    with pytest.raises(NoSuchKey):
        await store.head("k")


async def test_local_replace_and_delete_retire_old_versions_off_the_request_path(store: LocalBackend) -> None:
    await store.put("k", chunks(b"one"))
    await store.put("k", chunks(b"two"))
    obj_dir = store.object_dir("k")
    assert len(versions_in(obj_dir)) == 1  # the replaced version left the object tree at once
    await store.put("gone", chunks(b"x"))
    await store.delete("gone")
    assert not store.object_dir("gone").exists()
    assert leftover_temp(store) == []  # and was unlinked in the background
    assert await read_all(store, "k") == b"two"


async def test_local_retired_file_left_by_a_crash_is_swept(store: LocalBackend) -> None:
    await store.put("k", chunks(b"one"))
    parked = store.root / "tmp" / "0123.retired"
    parked.write_bytes(b"old version whose unlink never ran")
    os.utime(parked, (0, 0))
    assert await store.sweep_temp(older_than_seconds=60) >= 1
    assert not parked.exists()


async def test_local_get_reads_cached_bytes_inline_and_others_in_a_thread(store: LocalBackend) -> None:
    data = os.urandom(700 * 1024)
    await store.put("k", chunks(data))
    version = store.object_dir("k") / versions_in(store.object_dir("k"))[0]
    reader = local.Reader(version)
    try:
        fd = os.open(version, os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # clean pages leave the page cache
        os.close(fd)
        if local.RWF_NOWAIT:
            assert reader.read_cached(4096, 0) is None  # would wait for the disk
        assert reader.read(4096, 0) == data[:4096]  # the thread's read brings it in
        if local.RWF_NOWAIT:
            assert reader.read_cached(4096, 0) == data[:4096]
    finally:
        reader.close()
    assert reader.read_cached(10, 0) in (None, b"")  # closed: nothing more
    assert await read_all(store, "k") == data


async def test_local_get_without_rwf_nowait_reads_in_threads(
    store: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "RWF_NOWAIT", 0)
    data = os.urandom(600 * 1024 + 3)
    await store.put("k", chunks(data))
    assert await read_all(store, "k") == data
    async with await store.get("k", byte_range=(1000, 300_000)) as stream:
        assert b"".join([c async for c in stream]) == data[1000:300_001]


async def test_local_failed_puts_leave_no_temp_files(store: LocalBackend) -> None:
    big = os.urandom(3 * 1024 * 1024)
    with pytest.raises(IncompleteBody):
        await store.put("k", chunks(big), content_length=len(big) + 1)
    with pytest.raises(ConnectionResetError):
        await store.put("k", failing_body(big))

    async def stalled() -> AsyncIterator[bytes]:
        yield big
        await asyncio.Event().wait()

    task = asyncio.create_task(store.put("k", stalled()))
    for _ in range(500):  # wait until the first batch reached the temp file
        if any((store.root / "tmp").iterdir()):
            break
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftover_temp(store) == []
    assert files_under(store.root / "objects") == []


async def test_local_crash_before_commit_is_invisible_and_swept(store: LocalBackend) -> None:
    await store.put("k", chunks(b"committed"))
    obj_dir = store.object_dir("k")
    # What a crash leaves: a temp write, and a version placed but never committed.
    (store.root / "tmp" / ("a" * 32 + ".data")).write_bytes(b"partial")
    (store.root / "tmp" / ("a" * 32 + ".meta")).write_bytes(b"{}")
    (obj_dir / ("b" * 32)).write_bytes(b"uncommitted")
    assert await read_all(store, "k") == b"committed"
    assert [item.key for item in (await store.list()).items] == ["k"]
    assert await store.sweep_temp(3600) == 0
    assert await store.sweep_temp(0) == 3
    assert leftover_temp(store) == []
    assert len(versions_in(obj_dir)) == 1
    assert await read_all(store, "k") == b"committed"


async def test_local_failure_during_commit_keeps_previous(store: LocalBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    await store.put("k", chunks(b"previous"), metadata={"v": "1"})
    real_rename = os.rename

    def failing_rename(src: object, dst: object) -> None:
        if str(dst).endswith("/" + META):
            raise OSError(errno.EIO, "I/O error")
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(ServiceUnavailable):
        await store.put("k", chunks(b"next"), metadata={"v": "2"})
    monkeypatch.undo()
    head = await store.head("k")
    assert (head.etag, dict(head.metadata)) == (md5(b"previous"), {"v": "1"})
    assert len(versions_in(store.object_dir("k"))) == 1
    assert leftover_temp(store) == []


async def test_local_disk_full_raises_service_unavailable(store: LocalBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(ServiceUnavailable) as caught:
        await store.put("k", chunks(b"x" * 10))
    monkeypatch.undo()
    assert "full" in caught.value.detail
    assert str(store.root) not in caught.value.detail
    assert leftover_temp(store) == []


async def test_local_delete_prunes_empty_directories(store: LocalBackend) -> None:
    await store.put("a/b/c/d", chunks(b"x"))
    await store.put("a/keep", chunks(b"y"))
    await store.delete("a/b/c/d")
    assert sorted(p.name for p in (store.root / "objects" / "a").iterdir()) == ["keep@"]


async def test_local_copy_links_the_version_instead_of_copying(store: LocalBackend) -> None:
    await store.put("src", chunks(b"data"))
    await store.copy("src", "dst")
    src_dir, dst_dir = store.object_dir("src"), store.object_dir("dst")
    src_file = src_dir / versions_in(src_dir)[0]
    dst_file = dst_dir / versions_in(dst_dir)[0]
    assert src_file.stat().st_ino == dst_file.stat().st_ino


async def test_local_list_ignores_foreign_entries(store: LocalBackend) -> None:
    await store.put("k", chunks(b"x"))
    (store.root / "objects" / "Not Ours@").mkdir()
    (store.root / "objects" / "stray.txt").write_bytes(b"")
    assert [item.key for item in (await store.list()).items] == ["k"]


async def test_local_list_bad_token_raises_invalid_argument(store: LocalBackend) -> None:
    with pytest.raises(InvalidArgument):
        await store.list("", continuation_token="!!!")


async def test_local_concurrent_puts_to_one_key_leave_one_consistent_object(store: LocalBackend) -> None:
    bodies = [bytes([i]) * (1000 + i) for i in range(16)]
    await asyncio.gather(*(store.put("k", chunks(body), metadata={"i": str(i)}) for i, body in enumerate(bodies)))
    head = await store.head("k")
    data = await read_all(store, "k")
    assert data == bodies[int(head.metadata["i"])]
    assert head.etag == md5(data)
    assert len(versions_in(store.object_dir("k"))) >= 1
    await store.sweep_temp(0)
    assert len(versions_in(store.object_dir("k"))) == 1
    assert await read_all(store, "k") == data


async def test_local_put_and_get_of_large_body_keep_memory_flat(store: LocalBackend) -> None:
    chunk = os.urandom(64 * 1024)
    count = 512  # 32 MiB

    async def body() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield chunk

    tracemalloc.start()
    try:
        info = await store.put("big", body(), content_length=count * len(chunk))
        async with await store.get("big") as stream:
            total = sum([len(c) async for c in stream])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (info.size, total) == (32 * 1024 * 1024, 32 * 1024 * 1024)
    assert peak < 8 * 1024 * 1024


SIZES = [0, 1, 4095, 4096, 4097, 2 * 1024 * 1024, 2 * 1024 * 1024 + 5, 5 * 1024 * 1024 + 123]


@pytest.mark.parametrize("direct", [True, False], ids=["o_direct", "buffered"])
async def test_local_put_block_boundary_sizes_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct: bool
) -> None:
    if not direct:
        monkeypatch.setattr(spool, "_O_DIRECT", 0)
    store = LocalBackend(tmp_path / "root")
    for size in SIZES:
        data = os.urandom(size)
        step = 1000 if size < 10_000 else 65536
        info = await store.put(f"s/{size}", chunks(*(data[i : i + step] for i in range(0, size, step))))
        assert info.size == size
        assert info.etag == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert await read_all(store, f"s/{size}") == data
        versions = [p for p in store.object_dir(f"s/{size}").iterdir() if p.name != META]
        assert [p.stat().st_size for p in versions] == [size]  # no block padding left on disk


async def test_local_put_o_direct_refused_falls_back_to_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open
    calls: list[int] = []

    def open_without_direct(path: object, flags: int, *args: object) -> int:
        calls.append(flags)
        if spool._O_DIRECT and flags & spool._O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(spool.os, "open", open_without_direct)
    store = LocalBackend(tmp_path / "root")
    data = os.urandom(3 * 1024 * 1024 + 7)
    await store.put("k", chunks(data))
    assert await read_all(store, "k") == data
    assert any(f & spool._O_DIRECT for f in calls) or not spool._O_DIRECT


def test_reaper_thread_ends_when_idle_and_restarts_on_demand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reaper, "_IDLE_SECONDS", 0.05)
    r = reaper.Reaper(tmp_path)
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(b"x")
        r.retire(tmp_path / name)
        r.drain()
        assert not (tmp_path / name).exists()
        assert list(tmp_path.iterdir()) == []
        for _ in range(200):  # polls until the idle thread has gone
            if r._thread is None:
                break
            time.sleep(0.01)
        assert r._thread is None
    r.retire(tmp_path / "never-existed")  # nothing to do, nothing started
    assert r._thread is None
