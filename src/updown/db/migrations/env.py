"""Alembic environment: runs on the connection the caller (db/migrate.py) hands in."""

from __future__ import annotations

from alembic import context

import updown.db.models as models

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=models.Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
