"""auth.keyring: keys on disk (modes, persistence), rotation and retirement, sharing between processes."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from updown.auth.keyring import Keyring
from updown.clock import FrozenClock
from updown.core import jwt
from updown.core.jwt import Claims
from updown.errors import ConfigError

ISS = "http://localhost"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def pems(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.pem"))


def token(ring: Keyring, clock: FrozenClock) -> str:
    claims = Claims.issue(sub="u", iss=ISS, token_use="access", now=clock.now(), lifetime=3600)
    return jwt.sign(claims, ring.current)


def verifies(ring: Keyring, tok: str, clock: FrozenClock) -> bool:
    claims = jwt.verify(tok, keys=ring.lookup, issuer=ISS, token_use="access", now=clock.now())
    return claims["sub"] == "u"


def test_load_or_create_first_start_makes_private_files(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "keys"
    old_umask = os.umask(0o022)
    try:
        ring = Keyring.load_or_create(directory, FrozenClock())
    finally:
        os.umask(old_umask)
    assert mode(directory) == 0o700
    (pem,) = pems(directory)
    assert mode(pem) == 0o600
    assert mode(directory / ".lock") == 0o600
    assert ring.current.kid in pem.name
    assert pem.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert not list(directory.glob(".tmp-*"))


def test_load_or_create_tightens_existing_directory(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    directory.mkdir()
    os.chmod(directory, 0o750)  # noqa: S103 - the looser mode is what the keyring must fix
    Keyring.load_or_create(directory, FrozenClock())
    assert mode(directory) == 0o700


def test_load_or_create_persists_across_loads(tmp_path: Path) -> None:
    clock = FrozenClock()
    first = Keyring.load_or_create(tmp_path, clock)
    tok = token(first, clock)
    again = Keyring.load_or_create(tmp_path, clock)
    assert again.current.kid == first.current.kid
    assert len(pems(tmp_path)) == 1
    assert verifies(again, tok, clock)


def test_jwks_publishes_public_keys_only(tmp_path: Path) -> None:
    ring = Keyring.load_or_create(tmp_path, FrozenClock())
    doc = ring.jwks()
    (key,) = doc["keys"]
    assert key["kid"] == ring.current.kid
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert "d" not in key
    assert jwt.key_from_jwk(key).kid == ring.current.kid


def test_rotate_new_key_signs_old_key_verifies_until_retired(tmp_path: Path) -> None:
    clock = FrozenClock()
    ring = Keyring.load_or_create(tmp_path, clock, retire_after=3600)
    old = ring.current
    old_token = token(ring, clock)
    clock.advance(10)
    new = ring.rotate()
    assert ring.current.kid == new.kid != old.kid
    assert [k.kid for k in ring.verifying_keys()] == [new.kid, old.kid]
    assert {k["kid"] for k in ring.jwks()["keys"]} == {new.kid, old.kid}
    clock.advance(3599)
    assert ring.lookup(old.kid) is not None
    assert verifies(ring, old_token, clock)
    clock.advance(1)
    ring.reload()
    assert ring.lookup(old.kid) is None
    assert [k.kid for k in ring.verifying_keys()] == [new.kid]
    assert len(pems(tmp_path)) == 2  # retired, but files go only at the next rotation
    ring.rotate()
    assert len(pems(tmp_path)) == 2
    assert old.kid not in " ".join(p.name for p in pems(tmp_path))


def test_rotate_twice_in_one_millisecond_keeps_order(tmp_path: Path) -> None:
    clock = FrozenClock()
    ring = Keyring.load_or_create(tmp_path, clock)
    second = ring.rotate()
    third = ring.rotate()
    assert ring.current.kid == third.kid
    again = Keyring.load_or_create(tmp_path, clock)
    assert again.current.kid == third.kid
    assert [k.kid for k in again.verifying_keys()][:2] == [third.kid, second.kid]


def test_load_or_create_alg_change_rotates(tmp_path: Path) -> None:
    clock = FrozenClock()
    ed = Keyring.load_or_create(tmp_path, clock).current
    es = Keyring.load_or_create(tmp_path, clock, alg="ES256")
    assert es.current.alg == "ES256"
    assert es.lookup(ed.kid) is not None


def test_current_picks_up_rotation_by_another_process(tmp_path: Path) -> None:
    clock = FrozenClock()
    a = Keyring.load_or_create(tmp_path, clock, refresh_interval=30)
    b = Keyring.load_or_create(tmp_path, clock, refresh_interval=30)
    new = a.rotate()
    assert b.current.kid != new.kid  # not rescanned yet
    clock.advance(30)
    assert b.current.kid == new.kid


def test_lookup_unknown_kid_rescans_rate_limited(tmp_path: Path) -> None:
    clock = FrozenClock()
    a = Keyring.load_or_create(tmp_path, clock)
    b = Keyring.load_or_create(tmp_path, clock)
    new = a.rotate()
    assert b.lookup(new.kid) is None  # scanned less than a second ago
    clock.advance(1)
    assert b.lookup(new.kid) is not None
    assert b.lookup("x" * 43) is None


def test_load_refuses_key_readable_by_others(tmp_path: Path) -> None:
    Keyring.load_or_create(tmp_path, FrozenClock())
    (pem,) = pems(tmp_path)
    os.chmod(pem, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        Keyring.load_or_create(tmp_path, FrozenClock())


def test_load_refuses_key_under_wrong_name(tmp_path: Path) -> None:
    clock = FrozenClock()
    ring = Keyring.load_or_create(tmp_path, clock)
    ring.rotate()
    first, second = pems(tmp_path)
    second.write_bytes(first.read_bytes())
    with pytest.raises(ConfigError, match="does not hold"):
        Keyring.load_or_create(tmp_path, clock)


def test_load_refuses_symlinked_key(tmp_path: Path) -> None:
    Keyring.load_or_create(tmp_path, FrozenClock())
    (pem,) = pems(tmp_path)
    target = tmp_path / "elsewhere"
    pem.rename(target)
    pem.symlink_to(target)
    with pytest.raises(ConfigError, match="cannot read"):
        Keyring.load_or_create(tmp_path, FrozenClock())


def test_load_refuses_keys_directory_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "keys"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="real directory"):
        Keyring.load_or_create(link, FrozenClock())


def test_rotate_write_failure_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ring = Keyring.load_or_create(tmp_path, FrozenClock())

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ConfigError, match="No space left"):
        ring.rotate()
    assert len(pems(tmp_path)) == 1
    assert not list(tmp_path.glob(".tmp-*"))


def test_keyring_ignores_other_files(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("not a key")
    (tmp_path / ".tmp-abcdef").write_bytes(b"partial")
    ring = Keyring.load_or_create(tmp_path, FrozenClock())
    assert len(ring.verifying_keys()) == 1


def test_current_without_any_key_file_raises(tmp_path: Path) -> None:
    clock = FrozenClock()
    ring = Keyring.load_or_create(tmp_path, clock)
    for pem in pems(tmp_path):
        pem.unlink()
    clock.advance(60)
    with pytest.raises(ConfigError, match="no signing key"):
        _ = ring.current


def test_retire_after_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        Keyring.load_or_create(tmp_path, FrozenClock(), retire_after=0)


def test_secrets_not_in_repr(tmp_path: Path) -> None:
    ring = Keyring.load_or_create(tmp_path, FrozenClock())
    pem = pems(tmp_path)[0].read_text()
    body = "".join(pem.splitlines()[1:-1])
    assert body not in repr(ring.current)
    assert body not in repr(ring.current.verifying)
    assert body not in str(ring.jwks())


def _start(directory: str, queue: multiprocessing.Queue[str]) -> None:
    queue.put(Keyring.load_or_create(directory, FrozenClock()).current.kid)


def test_load_or_create_concurrent_first_starts_make_one_key(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[str] = ctx.Queue()
    procs = [ctx.Process(target=_start, args=(str(tmp_path), queue)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    kids = {queue.get(timeout=5) for _ in procs}
    assert len(kids) == 1
    assert len(pems(tmp_path)) == 1
