"""The seeds' apps: events, their attendees and photos; the product catalogue.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("starts_at", sa.Float(), nullable=False),
        sa.Column("ends_at", sa.Float(), nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_starts_at"), "events", ["starts_at"], unique=False)
    op.create_table(
        "event_attendees",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("user_sub", sa.String(length=36), nullable=False),
        sa.Column("added_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_attendees_event_id_events"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_sub"], ["users.id"], name=op.f("fk_event_attendees_user_sub_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("event_id", "user_sub", name=op.f("pk_event_attendees")),
    )
    op.create_index(op.f("ix_event_attendees_user_sub"), "event_attendees", ["user_sub"], unique=False)
    op.create_table(
        "event_photos",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("upload_key", sa.String(length=1024), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("uploaded_by", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("source_etag", sa.String(length=80), nullable=True),
        sa.Column("file_key", sa.String(length=1024), nullable=True),
        sa.Column("thumbnail_key", sa.String(length=1024), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_photos_event_id_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_photos")),
        sa.UniqueConstraint("upload_key", name=op.f("uq_event_photos_upload_key")),
    )
    op.create_index(
        "ix_event_photos_event_id_status_created_at",
        "event_photos",
        ["event_id", "status", "created_at"],
        unique=False,
    )
    op.create_table(
        "products",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("is_live", sa.Boolean(), nullable=False),
        sa.Column("img_key", sa.String(length=1024), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
    )
    op.create_index(op.f("ix_products_is_live"), "products", ["is_live"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_products_is_live"), table_name="products")
    op.drop_table("products")
    op.drop_index("ix_event_photos_event_id_status_created_at", table_name="event_photos")
    op.drop_table("event_photos")
    op.drop_index(op.f("ix_event_attendees_user_sub"), table_name="event_attendees")
    op.drop_table("event_attendees")
    op.drop_index(op.f("ix_events_starts_at"), table_name="events")
    op.drop_table("events")
