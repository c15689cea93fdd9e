"""Generated secrets have the promised shape; private files are 0600, atomic, and created once."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from updown.core import secrets


def test_secrets_access_key_id_shaped_like_aws() -> None:
    ids = {secrets.new_access_key_id() for _ in range(50)}
    assert len(ids) == 50
    for key_id in ids:
        assert len(key_id) == 20
        assert key_id.startswith("UPD")
        assert key_id.isalnum()
        assert key_id.upper() == key_id


def test_secrets_secret_key_and_hmac_key_fresh_and_long() -> None:
    assert len(secrets.new_secret_access_key()) == 40
    assert secrets.new_secret_access_key() != secrets.new_secret_access_key()
    assert len(bytes.fromhex(secrets.new_hmac_key())) == 32


def test_write_private_file_mode_0600_and_content(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "s.json"
    secrets.write_private_file(path, b"hello")
    assert path.read_bytes() == b"hello"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["s.json"]  # no temp file left


def test_write_private_file_failure_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        secrets.write_private_file(tmp_path / "s.json", b"x")
    assert list(tmp_path.iterdir()) == []


def test_load_or_create_json_creates_once_then_reads(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    first = secrets.load_or_create_json(path, lambda: {"a": secrets.new_hmac_key()})
    second = secrets.load_or_create_json(path, lambda: {"a": secrets.new_hmac_key()})
    assert first == second
    assert json.loads(path.read_text()) == first


def test_load_or_create_json_fills_missing_keys_keeps_old(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    secrets.load_or_create_json(path, lambda: {"a": "1"})
    both = secrets.load_or_create_json(path, lambda: {"a": "2", "b": "3"})
    assert both == {"a": "1", "b": "3"}


def _create(path: str, out: multiprocessing.Queue[dict[str, str]]) -> None:
    out.put(secrets.load_or_create_json(Path(path), lambda: {"k": secrets.new_hmac_key()}))


def test_load_or_create_json_concurrent_processes_agree(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[dict[str, str]] = ctx.Queue()
    procs = [ctx.Process(target=_create, args=(str(path), out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(r == results[0] for r in results)
