"""One row written whether or not it is there yet, race-free on SQLite and PostgreSQL.

``INSERT … ON CONFLICT (pk) DO UPDATE`` takes the row's lock in the same statement, so two
transactions writing the same key one after the other each succeed (the second waits, then
updates); a read-then-insert would let both see "absent" and the second fail on the key.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Table, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session


def upsert(s: Session, row: DeclarativeBase, *, keep: Collection[str] = ()) -> None:
    """Inserts ``row`` or, if its primary key exists, overwrites every column but ``keep``
    (column names) with the new values. ``row`` is not added to the session."""
    mapper = inspect(type(row))
    table = mapper.local_table
    assert isinstance(table, Table)
    values = {col.name: getattr(row, attr.key) for attr in mapper.column_attrs for col in attr.columns}
    dialect = s.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(values)
    primary = [col.name for col in table.primary_key]
    changed = {name: stmt.excluded[name] for name in values if name not in keep and name not in primary}
    s.execute(stmt.on_conflict_do_update(index_elements=primary, set_=changed))
