"""auth.service_secrets and runtime.load_secrets: generated once per database, configured values
winning, an old secrets.json imported once, sealed at rest, processes racing to one value."""

from __future__ import annotations

import json
import multiprocessing
import secrets
from pathlib import Path

import pytest
from sqlalchemy import select

from updown import settings as settings_mod
from updown.auth import service_secrets
from updown.auth.sealing import Sealer
from updown.clock import FrozenClock
from updown.core import secrets as secret_files
from updown.db.engine import Database
from updown.db.models.cluster import ServiceSecretRow
from updown.errors import ConfigError
from updown.runtime import load_secrets

WANTED = {"code_hmac_key": secret_files.new_hmac_key, "credentials_key": secret_files.new_hmac_key}


def stored(db: Database) -> dict[str, str]:
    with db.session() as s:
        return {r.name: r.value for r in s.execute(select(ServiceSecretRow)).scalars()}


def test_load_or_create_generates_once(database: Database) -> None:
    first = service_secrets.load_or_create(database, FrozenClock(), Sealer(), WANTED)
    again = service_secrets.load_or_create(database, FrozenClock(), Sealer(), WANTED)
    assert first == again == stored(database)
    assert len(bytes.fromhex(first["code_hmac_key"])) == 32
    assert first["code_hmac_key"] != first["credentials_key"]


def test_load_or_create_imports_legacy_file_once(database: Database, tmp_path: Path) -> None:
    legacy = tmp_path / "secrets.json"
    legacy.write_text(json.dumps({"code_hmac_key": "ab" * 32, "s3_access_key_id": "UPDOLD"}))
    got = service_secrets.load_or_create(database, FrozenClock(), Sealer(), WANTED, import_from=legacy)
    assert got["code_hmac_key"] == "ab" * 32  # kept: codes mailed before the upgrade stay valid
    assert got["credentials_key"] != "ab" * 32  # not in the file: generated
    legacy.write_text(json.dumps({"code_hmac_key": "cd" * 32}))
    again = service_secrets.load_or_create(database, FrozenClock(), Sealer(), WANTED, import_from=legacy)
    assert again == got  # the database's value stays the cluster's


def test_load_or_create_bad_legacy_file_refused(database: Database, tmp_path: Path) -> None:
    legacy = tmp_path / "secrets.json"
    legacy.write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        service_secrets.load_or_create(database, FrozenClock(), Sealer(), WANTED, import_from=legacy)


def test_load_or_create_sealed_at_rest(database: Database) -> None:
    sealer = Sealer(secrets.token_bytes(32))
    got = service_secrets.load_or_create(database, FrozenClock(), sealer, WANTED)
    raw = stored(database)
    assert all(v.startswith("sealed:v1:") for v in raw.values())
    assert got["code_hmac_key"] not in " ".join(raw.values())
    assert service_secrets.load_or_create(database, FrozenClock(), sealer, WANTED) == got
    with pytest.raises(ConfigError, match="key_encryption_key is not set"):
        service_secrets.load_or_create(database, FrozenClock(), Sealer(), WANTED)


def test_load_or_create_plain_values_sealed_once_key_configured(database: Database) -> None:
    plain = service_secrets.load_or_create(database, FrozenClock(), Sealer(), WANTED)
    sealer = Sealer(secrets.token_bytes(32))
    assert service_secrets.load_or_create(database, FrozenClock(), sealer, WANTED) == plain
    assert all(v.startswith("sealed:v1:") for v in stored(database).values())


def test_load_or_create_unmigrated_database_says_migrate(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(ConfigError, match="updown migrate"):
            service_secrets.load_or_create(db, FrozenClock(), Sealer(), WANTED)
    finally:
        db.dispose()


def _load(url: str, queue: multiprocessing.Queue[str]) -> None:
    db = Database(url)
    try:
        queue.put(json.dumps(service_secrets.load_or_create(db, FrozenClock(), Sealer(), WANTED)))
    finally:
        db.dispose()


def test_load_or_create_concurrent_processes_one_value(database: Database) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[str] = ctx.Queue()
    procs = [ctx.Process(target=_load, args=(database.url, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len({queue.get(timeout=5) for _ in procs}) == 1


# --- runtime.load_secrets ----------------------------------------------------------------------


def settings_for(tmp_path: Path, database: Database, **env: str) -> settings_mod.Settings:
    environ = {"UPDOWN_DATABASE__URL": database.url, **env}
    return settings_mod.load(data_dir=str(tmp_path / "data"), config=None, environ=environ)


def test_load_secrets_shared_by_data_dirs_on_one_database(database: Database, tmp_path: Path) -> None:
    a = load_secrets(settings_for(tmp_path / "a", database), database, FrozenClock(), Sealer())
    b = load_secrets(settings_for(tmp_path / "b", database), database, FrozenClock(), Sealer())
    assert a == b
    assert a.code_hmac_key == b.code_hmac_key
    assert a.credentials_key == b.credentials_key
    # The generated S3 keys are shown to people in each data dir; nothing else is written there.
    for side in ("a", "b"):
        exported = json.loads((tmp_path / side / "data" / "secrets.json").read_text())
        assert exported == {"s3_access_key_id": a.s3_access_key_id, "s3_secret_access_key": a.s3_secret_access_key}
        assert (tmp_path / side / "data" / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_load_secrets_configured_values_win_and_are_not_stored(database: Database, tmp_path: Path) -> None:
    s = settings_for(
        tmp_path,
        database,
        UPDOWN_AUTH__CODE_HMAC_KEY="12" * 32,
        UPDOWN_IDENTITY__CREDENTIALS_KEY="34" * 32,
        UPDOWN_S3__ACCESS_KEY_ID="AKIDCONFIGURED",
        UPDOWN_S3__SECRET_ACCESS_KEY="configured-secret",
    )
    got = load_secrets(s, database, FrozenClock(), Sealer())
    assert (got.code_hmac_key, got.credentials_key) == ("12" * 32, "34" * 32)
    assert (got.s3_access_key_id, got.s3_secret_access_key) == ("AKIDCONFIGURED", "configured-secret")
    assert stored(database) == {}
    assert not (tmp_path / "data" / "secrets.json").exists()


def test_load_secrets_imports_old_secrets_json(database: Database, tmp_path: Path) -> None:
    old = {
        "s3_access_key_id": "UPDOLDKEYID000000000",
        "s3_secret_access_key": "old-secret",
        "code_hmac_key": "ab" * 32,
        "credentials_key": "cd" * 32,
    }
    data = tmp_path / "data"
    data.mkdir()
    (data / "secrets.json").write_text(json.dumps(old))
    got = load_secrets(settings_for(tmp_path, database), database, FrozenClock(), Sealer())
    assert (got.s3_access_key_id, got.s3_secret_access_key, got.code_hmac_key, got.credentials_key) == tuple(
        old.values()
    )
    assert json.loads((data / "secrets.json").read_text()) == old  # left as it was


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("UPDOWN_AUTH__CODE_HMAC_KEY", "short"),
        ("UPDOWN_IDENTITY__CREDENTIALS_KEY", "zz" * 32),
        ("UPDOWN_AUTH__KEY_ENCRYPTION_KEY", "ab" * 31),
    ],
)
def test_settings_bad_secret_refused_without_echo(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match="bad value") as caught:
        settings_mod.load(data_dir=str(tmp_path), config=None, environ={name: value})
    assert value not in str(caught.value)
