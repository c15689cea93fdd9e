"""The products app's table: the store catalogue (``is_live`` false is a draft)."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from updown.db.base import Base
from updown.db.models.files import KEY_LENGTH


class Product(Base):
    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    price: Mapped[float] = mapped_column(Float)
    is_live: Mapped[bool] = mapped_column(Boolean, index=True)
    img_key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
