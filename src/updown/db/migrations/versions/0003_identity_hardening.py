"""Identity hardening: a per-user "tokens valid after" time, credentials tied to their session, guest expiry index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tokens_valid_after", sa.Float(), nullable=True))
    with op.batch_alter_table("temporary_credentials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_temporary_credentials_session_id"), ["session_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_temporary_credentials_session_id_auth_sessions"),
            "auth_sessions",
            ["session_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index("ix_identities_kind_created_at", ["kind", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index("ix_identities_kind_created_at")
    with op.batch_alter_table("temporary_credentials", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_temporary_credentials_session_id_auth_sessions"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_temporary_credentials_session_id"))
        batch_op.drop_column("session_id")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("tokens_valid_after")
