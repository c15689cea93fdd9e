"""One row written whether or not it is there yet, race-free on SQLite and PostgreSQL.

``INSERT … ON CONFLICT (pk) DO UPDATE`` takes the row's lock in the same statement, so two
transactions writing the same key one after the other each succeed (the second waits, then
updates); a read-then-insert would let both see "absent" and the second fail on the key.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Table, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session


def upsert(s: Session, row: DeclarativeBase, *, keep: Collection[str] = ()) -> None:
    """Inserts ``row`` or, if its primary key exists, overwrites every column but ``keep``
    (column names) with the new values. ``row`` is not added to the session."""
    table, values, stmt = _insert(s, row)
    primary = [col.name for col in table.primary_key]
    changed = {name: stmt.excluded[name] for name in values if name not in keep and name not in primary}
    s.execute(stmt.on_conflict_do_update(index_elements=primary, set_=changed))


def insert_if_absent(s: Session, row: DeclarativeBase, *, unique: str) -> bool:
    """Inserts ``row`` unless one with the same value in the unique column ``unique`` exists;
    True when it was inserted. Concurrent callers with one value: exactly one inserts."""
    table, _values, stmt = _insert(s, row)
    # RETURNING, not rowcount: the driver's rowcount is not reliable for this on every database.
    inserted = s.execute(stmt.on_conflict_do_nothing(index_elements=[unique]).returning(table.c[unique]))
    return inserted.first() is not None


def _insert(s: Session, row: DeclarativeBase) -> tuple[Table, dict[str, Any], Any]:
    mapper = inspect(type(row))
    table = mapper.local_table
    assert isinstance(table, Table)
    values = {col.name: getattr(row, attr.key) for attr in mapper.column_attrs for col in attr.columns}
    # A primary key left None is the database's to fill (an autoincrement id).
    values = {k: v for k, v in values.items() if v is not None or not table.c[k].primary_key}
    insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    return table, values, insert(table).values(values)
