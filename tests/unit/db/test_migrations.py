"""Models and migrations agree, migrations reverse, and the engine is set up as designed."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

import updown.db.models as models
from updown.db import migrate
from updown.db.engine import Database


def test_migrations_head_matches_models_no_diff(database: Database) -> None:
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    assert diff == []


def test_migrations_downgrade_then_upgrade_roundtrips(database: Database) -> None:
    head = migrate.current(database.engine)
    assert head is not None
    migrate.downgrade(database.engine, "base")
    assert migrate.current(database.engine) is None
    database.migrate()
    assert migrate.current(database.engine) == head


def test_migrations_run_twice_change_nothing(database: Database) -> None:
    before = migrate.current(database.engine)
    database.migrate()
    assert migrate.current(database.engine) == before


def test_database_sqlite_uses_wal(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/wal.db")
    with db.engine.connect() as conn:
        mode = conn.execute(text("PRAGMA journal_mode")).scalar()
        fks = conn.execute(text("PRAGMA foreign_keys")).scalar()
    db.dispose()
    assert mode == "wal"
    assert fks == 1


def test_database_ping_answers(database: Database) -> None:
    database.ping()


def test_database_ping_unreachable_raises_service_unavailable(tmp_path: object) -> None:
    import pytest

    from updown.errors import ServiceUnavailable

    # A directory is not a database file: connecting fails like an unreachable server.
    db = Database(f"sqlite:///{tmp_path}")
    with pytest.raises(ServiceUnavailable):
        db.ping()
    db.dispose()


def test_database_unsupported_dialect_refused_by_name() -> None:
    import pytest

    from updown.errors import ConfigError

    with pytest.raises(ConfigError, match="mysql is not supported"):
        Database("mysql://localhost/x")
