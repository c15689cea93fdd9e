"""The database: engine, sessions, migrations and the readiness ping, for SQLite (WAL) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from updown.errors import ConfigError, ServiceUnavailable


class Database:
    """One engine and its session factory; built once per process by the runtime."""

    def __init__(self, url: str, *, pool_size: int = 5, echo: bool = False) -> None:
        try:
            parsed = make_url(url)
        except Exception as exc:  # SQLAlchemy raises ArgumentError or ValueError here
            raise ConfigError(f"bad value for database.url: {exc}") from None
        self.url = url
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        elif self.dialect == "postgresql":
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        else:
            raise ConfigError(f"bad value for database.url: {self.dialect} is not supported (sqlite, postgresql)")
        self.engine: Engine = create_engine(url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer; a second one waits in SQLite's busy handler, which sleeps 1, 2, 5,
        # 10 … 100 ms between tries: 32 concurrent initiates spent most of their time asleep
        # there. Threads of this process take turns here instead, at once (processes sharing the
        # file still meet the busy handler). Python code holds the GIL anyway, so little
        # parallelism is lost.
        self._turns: threading.RLock | None = threading.RLock() if self.dialect == "sqlite" else None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on any exception."""
        if self._turns is None:
            with self.sessions.begin() as s:
                yield s
            return
        with self._turns, self.sessions.begin() as s:
            yield s

    def ping(self) -> None:
        """Raises ServiceUnavailable unless the database answers ``SELECT 1``."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise ServiceUnavailable("database unreachable") from exc

    def migrate(self, revision: str = "head") -> None:
        """Applies migrations up to ``revision`` (Alembic), under a lock on PostgreSQL."""
        from updown.db.migrate import upgrade

        upgrade(self.engine, revision)

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; NORMAL is durable across application crashes in
    # WAL mode; busy_timeout makes concurrent writers wait instead of failing at once.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
