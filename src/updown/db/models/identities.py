"""The identity pool's tables: identities (guest or user) and the short-lived credentials issued to them."""

from __future__ import annotations

from sqlalchemy import JSON, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from updown.db.base import Base


class Identity(Base):
    """A stable identity id (``<region>:<uuid>``): one per user, or one per guest."""

    __tablename__ = "identities"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "guest" | "user"
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)

    # Expired guest identities are found by age.
    __table_args__ = (Index("ix_identities_kind_created_at", "kind", "created_at"),)


class TemporaryCredential(Base):
    """Short-lived SigV4 credentials. Secret and session token are derived (HMAC of the id), never stored."""

    __tablename__ = "temporary_credentials"

    access_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    # The sign-in session the credentials came from (None for guests): they end with it.
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True, nullable=True
    )
    roles: Mapped[list[str]] = mapped_column(JSON)
    groups: Mapped[list[str]] = mapped_column(JSON)
    issued_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
