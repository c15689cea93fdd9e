"""Shared fixtures: the databases every database test runs on (SQLite always, PostgreSQL when set)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from updown.db.engine import Database

PG_ENV = "UPDOWN_TEST_DATABASE_URL"


def _database_params() -> list[object]:
    params: list[object] = ["sqlite"]
    if os.environ.get(PG_ENV):
        params.append(pytest.param("postgresql", marks=pytest.mark.postgres))
    return params


@pytest.fixture(params=_database_params())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a fresh SQLite file, or a fresh schema on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with postgres_schema() as url:
        yield url


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL to a fresh, empty schema on the PostgreSQL of UPDOWN_TEST_DATABASE_URL, dropped after."""
    base = os.environ[PG_ENV]
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A URL to a new, empty database on the PostgreSQL of UPDOWN_TEST_DATABASE_URL, dropped after
    (for tests whose processes need a whole database: several servers, procrastinate's schema)."""
    base = make_url(os.environ[PG_ENV])
    name = f"{prefix}_{secrets.token_hex(5)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database (SQLite, and PostgreSQL when UPDOWN_TEST_DATABASE_URL is set)."""
    db = Database(database_url)
    db.migrate()
    yield db
    db.dispose()
