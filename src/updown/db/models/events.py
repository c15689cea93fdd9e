"""The events app's tables: events, their attendees, and the photos attendees upload.

A photo row is made when an attendee is granted an upload (``pending``: what the presigned URL
binds, and until when); the ObjectCreated step makes it ``ready`` (with the keys of the published
copy and thumbnail) or ``rejected`` once it has read the uploaded object.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from updown.db.base import Base
from updown.db.models.files import KEY_LENGTH


class Event(Base):
    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[float] = mapped_column(Float, index=True)
    ends_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class EventAttendee(Base):
    """A user (by ``sub``) registered for an event: only they may upload its photos."""

    __tablename__ = "event_attendees"

    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    user_sub: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    added_at: Mapped[float] = mapped_column(Float)


class EventPhoto(Base):
    """One photo of an event. ``status``: pending → ready | rejected (a new upload may follow a rejection)."""

    __tablename__ = "event_photos"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    upload_key: Mapped[str] = mapped_column(String(KEY_LENGTH), unique=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(255))
    uploaded_by: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The uploaded object's version the published copies were made from (redeliveries match it).
    source_etag: Mapped[str | None] = mapped_column(String(80), nullable=True)
    file_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH), nullable=True)
    thumbnail_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH), nullable=True)
    expires_at: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)

    # The listing: one event's ready photos, newest first.
    __table_args__ = (Index("ix_event_photos_event_id_status_created_at", "event_id", "status", "created_at"),)
