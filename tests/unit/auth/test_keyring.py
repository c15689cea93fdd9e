"""auth.keyring: keys in the database (one ring per database, on SQLite and PostgreSQL), rotation and
retirement, sharing between processes, sealing at rest, importing a pre-0006 keys directory."""

from __future__ import annotations

import multiprocessing
import secrets
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, update

from updown.auth.keyring import Keyring
from updown.auth.sealing import Sealer
from updown.clock import FrozenClock
from updown.core import jwt
from updown.core.jwt import Claims, SigningKey
from updown.core.secrets import write_private_file
from updown.db.engine import Database
from updown.db.models.cluster import SigningKeyRow
from updown.errors import ConfigError

ISS = "http://localhost"


def rows(db: Database) -> list[SigningKeyRow]:
    with db.session() as s:
        return list(s.execute(select(SigningKeyRow).order_by(SigningKeyRow.generation)).scalars())


def token(ring: Keyring, clock: FrozenClock) -> str:
    claims = Claims.issue(sub="u", iss=ISS, token_use="access", now=clock.now(), lifetime=3600)
    return jwt.sign(claims, ring.current)


def verifies(ring: Keyring, tok: str, clock: FrozenClock) -> bool:
    claims = jwt.verify(tok, keys=ring.lookup, issuer=ISS, token_use="access", now=clock.now())
    return claims["sub"] == "u"


def legacy_keys_dir(directory: Path, clock: FrozenClock, count: int) -> list[SigningKey]:
    """A keys directory as keyrings before 0006 wrote it: ``<created ms>-<kid>.pem``, 0600."""
    made = []
    for i in range(count):
        key = SigningKey.generate()
        write_private_file(directory / f"{int(clock.now() * 1000) + i:015d}-{key.kid}.pem", key.to_pem())
        made.append(key)
    return made


def test_load_or_create_first_start_makes_one_key(database: Database) -> None:
    ring = Keyring.load_or_create(database, FrozenClock())
    (row,) = rows(database)
    assert (row.kid, row.alg, row.generation, row.retired_at) == (ring.current.kid, "EdDSA", 1, None)
    assert row.private_key.startswith("-----BEGIN PRIVATE KEY-----")


def test_load_or_create_persists_across_loads(database: Database) -> None:
    clock = FrozenClock()
    first = Keyring.load_or_create(database, clock)
    tok = token(first, clock)
    again = Keyring.load_or_create(database, clock)
    assert again.current.kid == first.current.kid
    assert len(rows(database)) == 1
    assert verifies(again, tok, clock)


def test_load_or_create_unmigrated_database_says_migrate(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(ConfigError, match="updown migrate"):
            Keyring.load_or_create(db, FrozenClock())
    finally:
        db.dispose()


def test_jwks_publishes_public_keys_only(database: Database) -> None:
    ring = Keyring.load_or_create(database, FrozenClock())
    doc = ring.jwks()
    (key,) = doc["keys"]
    assert key["kid"] == ring.current.kid
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert "d" not in key
    assert jwt.key_from_jwk(key).kid == ring.current.kid


def test_rotate_new_key_signs_old_key_verifies_until_retired(database: Database) -> None:
    clock = FrozenClock()
    ring = Keyring.load_or_create(database, clock, retire_after=3600)
    old = ring.current
    old_token = token(ring, clock)
    clock.advance(10)
    new = ring.rotate()
    assert ring.current.kid == new.kid != old.kid
    assert [k.kid for k in ring.verifying_keys()] == [new.kid, old.kid]
    assert {k["kid"] for k in ring.jwks()["keys"]} == {new.kid, old.kid}
    assert [r.retired_at for r in rows(database)] == [clock.now(), None]
    clock.advance(3599)
    assert ring.lookup(old.kid) is not None
    assert verifies(ring, old_token, clock)
    clock.advance(1)
    ring.reload()
    assert ring.lookup(old.kid) is None
    assert [k.kid for k in ring.verifying_keys()] == [new.kid]
    assert len(rows(database)) == 2  # retired, but rows go only at the next rotation
    ring.rotate()
    assert old.kid not in {r.kid for r in rows(database)}
    assert len(rows(database)) == 2


def test_rotate_twice_at_one_instant_keeps_order(database: Database) -> None:
    clock = FrozenClock()
    ring = Keyring.load_or_create(database, clock)
    second = ring.rotate()
    third = ring.rotate()
    assert ring.current.kid == third.kid
    again = Keyring.load_or_create(database, clock)
    assert again.current.kid == third.kid
    assert [k.kid for k in again.verifying_keys()][:2] == [third.kid, second.kid]
    assert [r.generation for r in rows(database)] == [1, 2, 3]


def test_load_or_create_alg_change_rotates(database: Database) -> None:
    clock = FrozenClock()
    ed = Keyring.load_or_create(database, clock).current
    es = Keyring.load_or_create(database, clock, alg="ES256")
    assert es.current.alg == "ES256"
    assert es.lookup(ed.kid) is not None
    assert Keyring.load_or_create(database, clock, alg="ES256").current.kid == es.current.kid


def test_current_picks_up_rotation_by_another_process(database: Database) -> None:
    clock = FrozenClock()
    a = Keyring.load_or_create(database, clock, refresh_interval=30)
    b = Keyring.load_or_create(database, clock, refresh_interval=30)
    new = a.rotate()
    assert b.current.kid != new.kid  # not reread yet
    clock.advance(30)
    assert b.current.kid == new.kid


def test_lookup_unknown_kid_rereads_rate_limited(database: Database) -> None:
    clock = FrozenClock()
    a = Keyring.load_or_create(database, clock)
    b = Keyring.load_or_create(database, clock)
    new = a.rotate()
    assert b.lookup(new.kid) is None  # read less than a second ago
    clock.advance(1)
    assert b.lookup(new.kid) is not None
    assert b.lookup("x" * 43) is None


def test_rotate_concurrent_rotations_each_add_a_key(database: Database) -> None:
    clock = FrozenClock()
    rings = [Keyring.load_or_create(database, clock) for _ in range(4)]
    added: list[str] = []
    barrier = threading.Barrier(len(rings))

    def rotate(ring: Keyring) -> None:
        barrier.wait()
        added.append(ring.rotate().kid)

    threads = [threading.Thread(target=rotate, args=(ring,)) for ring in rings]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    stored = rows(database)
    assert [r.generation for r in stored] == [1, 2, 3, 4, 5]
    assert {r.kid for r in stored[1:]} == set(added)
    assert [r.retired_at is None for r in stored] == [False] * 4 + [True]


def test_load_refuses_row_holding_another_key(database: Database) -> None:
    clock = FrozenClock()
    Keyring.load_or_create(database, clock)
    with database.session() as s:
        s.execute(update(SigningKeyRow).values(private_key=SigningKey.generate().to_pem().decode()))
    with pytest.raises(ConfigError, match="does not hold"):
        Keyring.load_or_create(database, clock)


def test_current_without_any_key_raises(database: Database) -> None:
    clock = FrozenClock()
    ring = Keyring.load_or_create(database, clock)
    with database.session() as s:
        s.query(SigningKeyRow).delete()
    clock.advance(60)
    with pytest.raises(ConfigError, match="no signing key"):
        _ = ring.current


def test_retire_after_must_be_positive(database: Database) -> None:
    with pytest.raises(ConfigError):
        Keyring.load_or_create(database, FrozenClock(), retire_after=0)


def test_secrets_not_in_repr(database: Database) -> None:
    ring = Keyring.load_or_create(database, FrozenClock())
    body = "".join(rows(database)[0].private_key.splitlines()[1:-1])
    assert body not in repr(ring.current)
    assert body not in repr(ring.current.verifying)
    assert body not in str(ring.jwks())
    assert body not in repr(ring.__dict__)


# --- sealed at rest ----------------------------------------------------------------------------


def test_sealed_keys_stored_encrypted_and_open_with_the_key(database: Database) -> None:
    clock = FrozenClock()
    sealer = Sealer(secrets.token_bytes(32))
    ring = Keyring.load_or_create(database, clock, sealer=sealer)
    tok = token(ring, clock)
    (row,) = rows(database)
    assert row.private_key.startswith("sealed:v1:")
    assert "PRIVATE KEY" not in row.private_key
    again = Keyring.load_or_create(database, clock, sealer=sealer)
    assert verifies(again, tok, clock)


def test_sealed_keys_without_or_with_another_key_refused(database: Database) -> None:
    Keyring.load_or_create(database, FrozenClock(), sealer=Sealer(secrets.token_bytes(32)))
    with pytest.raises(ConfigError, match="key_encryption_key is not set"):
        Keyring.load_or_create(database, FrozenClock())
    with pytest.raises(ConfigError, match="does not decrypt"):
        Keyring.load_or_create(database, FrozenClock(), sealer=Sealer(secrets.token_bytes(32)))


def test_sealed_value_moved_to_another_row_refused(database: Database) -> None:
    clock = FrozenClock()
    sealer = Sealer(secrets.token_bytes(32))
    ring = Keyring.load_or_create(database, clock, sealer=sealer)
    ring.rotate()
    first, second = rows(database)
    with database.session() as s:
        s.execute(update(SigningKeyRow).where(SigningKeyRow.kid == second.kid).values(private_key=first.private_key))
    with pytest.raises(ConfigError, match="does not decrypt"):
        Keyring.load_or_create(database, clock, sealer=sealer)


def test_plain_keys_sealed_once_a_key_is_configured(database: Database) -> None:
    clock = FrozenClock()
    kid = Keyring.load_or_create(database, clock).current.kid
    sealer = Sealer(secrets.token_bytes(32))
    assert Keyring.load_or_create(database, clock, sealer=sealer).current.kid == kid
    (row,) = rows(database)
    assert row.private_key.startswith("sealed:v1:")
    assert Keyring.load_or_create(database, clock, sealer=sealer).current.kid == kid


# --- importing a pre-0006 keys directory -------------------------------------------------------


def test_import_legacy_keys_directory_once_in_order(database: Database, tmp_path: Path) -> None:
    clock = FrozenClock()
    old = legacy_keys_dir(tmp_path / "keys", clock, 2)
    (tmp_path / "keys" / "README").write_text("not a key")
    claims = Claims.issue(sub="u", iss=ISS, token_use="access", now=clock.now(), lifetime=3600)
    before_upgrade = jwt.sign(claims, old[1])
    ring = Keyring.load_or_create(database, clock, import_from=tmp_path / "keys")
    assert ring.current.kid == old[1].kid
    assert [k.kid for k in ring.verifying_keys()] == [old[1].kid, old[0].kid]
    assert verifies(ring, before_upgrade, clock)
    stored = rows(database)
    assert [(r.kid, r.generation) for r in stored] == [(old[0].kid, 1), (old[1].kid, 2)]
    assert stored[0].retired_at == stored[1].created_at
    # Once: the table has keys now, so another data dir's files are not imported.
    other = legacy_keys_dir(tmp_path / "other", clock, 1)
    again = Keyring.load_or_create(database, clock, import_from=tmp_path / "other")
    assert again.current.kid == old[1].kid
    assert again.lookup(other[0].kid) is None


def test_import_missing_directory_creates_a_key(database: Database, tmp_path: Path) -> None:
    ring = Keyring.load_or_create(database, FrozenClock(), import_from=tmp_path / "nothing")
    assert [r.kid for r in rows(database)] == [ring.current.kid]


def test_import_file_under_wrong_name_refused(database: Database, tmp_path: Path) -> None:
    clock = FrozenClock()
    first, second = legacy_keys_dir(tmp_path, clock, 2)
    (tmp_path / f"{int(clock.now() * 1000) + 1:015d}-{second.kid}.pem").write_bytes(first.to_pem())
    with pytest.raises(ConfigError, match="does not hold"):
        Keyring.load_or_create(database, clock, import_from=tmp_path)
    assert rows(database) == []


def test_import_sealed_with_key_encryption_key(database: Database, tmp_path: Path) -> None:
    clock = FrozenClock()
    (old,) = legacy_keys_dir(tmp_path, clock, 1)
    sealer = Sealer(secrets.token_bytes(32))
    ring = Keyring.load_or_create(database, clock, sealer=sealer, import_from=tmp_path)
    assert ring.current.kid == old.kid
    assert rows(database)[0].private_key.startswith("sealed:v1:")


# --- processes starting together ---------------------------------------------------------------


def _start(url: str, keys_dir: str | None, queue: multiprocessing.Queue[str]) -> None:
    db = Database(url)
    try:
        ring = Keyring.load_or_create(db, FrozenClock(), import_from=Path(keys_dir) if keys_dir else None)
        queue.put(ring.current.kid)
    finally:
        db.dispose()


@pytest.mark.parametrize("legacy", [False, True], ids=["fresh", "import"])
def test_load_or_create_concurrent_first_starts_make_one_ring(database: Database, tmp_path: Path, legacy: bool) -> None:
    keys_dir = None
    if legacy:
        legacy_keys_dir(tmp_path / "keys", FrozenClock(), 2)
        keys_dir = str(tmp_path / "keys")
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[str] = ctx.Queue()
    procs = [ctx.Process(target=_start, args=(database.url, keys_dir, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    kids = {queue.get(timeout=5) for _ in procs}
    assert len(kids) == 1
    assert len(rows(database)) == (2 if legacy else 1)


def test_load_or_create_first_key_added_by_another_process_meanwhile_is_used(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race of two processes starting together: this one reads an empty table, then the other
    # adds the first key before this one adds its own. One key must be left, and both sign with it.
    clock = FrozenClock()
    other: list[Keyring] = []
    started: list[bool] = []
    real_reload = Keyring.reload

    def reload_then_lose_the_race(self: Keyring) -> None:
        real_reload(self)
        if not started:
            started.append(True)
            other.append(Keyring.load_or_create(database, clock))

    monkeypatch.setattr(Keyring, "reload", reload_then_lose_the_race)
    ring = Keyring.load_or_create(database, clock)
    assert len(rows(database)) == 1
    assert ring.current.kid == other[0].current.kid
