"""The file tables: upload intents, file records and their variants, and the job queue.

An upload intent is what ``POST /storage/uploads`` granted: who may send which bytes to which key,
until when. The bytes land at the intent's staging key (never at the file's own key), so what is
served is always a verified file: processing checks the staged object, then writes the file's key,
its variants and its row, and deletes the staged object.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from updown.db.base import Base

# Keys are at most 1024 bytes of UTF-8 (core/keys.py); a column of that many characters holds them.
KEY_LENGTH = 1024


class Upload(Base):
    """One upload intent. ``status``: pending → uploaded → processing → ready | rejected; or expired."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), index=True)
    staging_key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    access_level: Mapped[str] = mapped_column(String(16))
    identity_id: Mapped[str] = mapped_column(String(80), index=True)
    user_sub: Mapped[str | None] = mapped_column(String(36), nullable=True)
    mode: Mapped[str] = mapped_column(String(16))  # put | post | multipart
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON)
    cache_control: Mapped[str | None] = mapped_column(String(255), nullable=True)
    multipart_id: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    etag: Mapped[str | None] = mapped_column(String(80), nullable=True)
    received: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)

    # Cleanup finds pending intents past their expiry; quotas sum an identity's open reservations.
    __table_args__ = (Index("ix_uploads_status_expires_at", "status", "expires_at"),)


class FileRecord(Base):
    """A verified, ready file: its row exists only once its bytes are at ``key``."""

    __tablename__ = "files"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    access_level: Mapped[str] = mapped_column(String(16))
    identity_id: Mapped[str | None] = mapped_column(String(80), index=True, nullable=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255))
    etag: Mapped[str] = mapped_column(String(80))
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON)
    cache_control: Mapped[str | None] = mapped_column(String(255), nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    upload_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # ready
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class FileVariant(Base):
    """A derived object of a file (``thumbnail``): content-addressed, so its bytes never change."""

    __tablename__ = "file_variants"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    file_key: Mapped[str] = mapped_column(ForeignKey("files.key", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    etag: Mapped[str] = mapped_column(String(80))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)


class Job(Base):
    """Queued work, run at least once: ``dedupe`` makes enqueueing the same work twice a no-op."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    dedupe: Mapped[str] = mapped_column(String(1200), unique=True)
    payload: Mapped[dict[str, str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # queued | running | done | failed
    attempts: Mapped[int] = mapped_column(Integer)
    run_after: Mapped[float] = mapped_column(Float)
    locked_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_jobs_status_run_after", "status", "run_after"),)
