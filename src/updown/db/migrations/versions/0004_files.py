"""Files: upload intents, file records and variants, and the job queue.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("access_level", sa.String(length=16), nullable=False),
        sa.Column("identity_id", sa.String(length=80), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("etag", sa.String(length=80), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("cache_control", sa.String(length=255), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("upload_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_files")),
    )
    op.create_index(op.f("ix_files_identity_id"), "files", ["identity_id"], unique=False)
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("dedupe", sa.String(length=1200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.Float(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("dedupe", name=op.f("uq_jobs_dedupe")),
    )
    op.create_index("ix_jobs_status_run_after", "jobs", ["status", "run_after"], unique=False)
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("staging_key", sa.String(length=1024), nullable=False),
        sa.Column("access_level", sa.String(length=16), nullable=False),
        sa.Column("identity_id", sa.String(length=80), nullable=False),
        sa.Column("user_sub", sa.String(length=36), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("cache_control", sa.String(length=255), nullable=True),
        sa.Column("multipart_id", sa.String(length=1024), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("etag", sa.String(length=80), nullable=True),
        sa.Column("received", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    op.create_index(op.f("ix_uploads_identity_id"), "uploads", ["identity_id"], unique=False)
    op.create_index(op.f("ix_uploads_key"), "uploads", ["key"], unique=False)
    op.create_index("ix_uploads_status_expires_at", "uploads", ["status", "expires_at"], unique=False)
    op.create_table(
        "file_variants",
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("file_key", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.String(length=80), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_key"], ["files.key"], name=op.f("fk_file_variants_file_key_files"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_file_variants")),
    )
    op.create_index(op.f("ix_file_variants_file_key"), "file_variants", ["file_key"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_file_variants_file_key"), table_name="file_variants")
    op.drop_table("file_variants")
    op.drop_index("ix_uploads_status_expires_at", table_name="uploads")
    op.drop_index(op.f("ix_uploads_key"), table_name="uploads")
    op.drop_index(op.f("ix_uploads_identity_id"), table_name="uploads")
    op.drop_table("uploads")
    op.drop_index("ix_jobs_status_run_after", table_name="jobs")
    op.drop_table("jobs")
    op.drop_index(op.f("ix_files_identity_id"), table_name="files")
    op.drop_table("files")
