"""State the API processes share instead of keeping it under their data dirs: token signing keys
and the service's generated secrets."""

from __future__ import annotations

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from updown.db.base import Base


class SigningKeyRow(Base):
    """One token signing key. ``generation`` orders the ring (the highest signs) and is unique, so
    processes racing to add the first or the next key end up with one."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, unique=True)
    alg: Mapped[str] = mapped_column(String(16))
    # PKCS#8 PEM, or sealed with auth.key_encryption_key (see auth/sealing.py).
    private_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    # When a newer key replaced it; it keeps verifying for the keyring's retire_after after that.
    retired_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ServiceSecretRow(Base):
    """A generated service secret (code HMAC key, credentials key, S3 service credentials), made once."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The secret, or sealed with auth.key_encryption_key (see auth/sealing.py).
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
