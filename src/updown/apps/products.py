"""The store catalogue: products with an image from ``public/``, managed by admins, read by everyone signed in.

The rules, whatever surface asks (GraphQL in ``web/graphql.py``):
- reads are for guests and users; a draft (``is_live`` false) is shown only to those who may manage
  products (the ``admin`` group's role: ``updown:ManageProducts`` on ``products``, decided by the gate);
- create, update and delete need that same right (AccessDenied otherwise);
- ``img_key`` must name a ready image under ``public/`` (a file record whose type is ``image/*``),
  so the storefront's ``imgUrl`` (its ``/cdn`` URL) always serves an image.
"""

from __future__ import annotations

import math
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select

from updown.auth.principal import Principal
from updown.clock import Clock
from updown.core.keys import validate_key
from updown.db.engine import Database
from updown.db.models.products import Product
from updown.errors import Conflict, InvalidContentType, InvalidKey, InvalidRequest, NoSuchKey, NotFound
from updown.files import access
from updown.files.access import AccessGate
from updown.files.records import Records

MANAGE_PRODUCTS: Final = "updown:ManageProducts"
MAX_NAME: Final = 200
MAX_DESCRIPTION: Final = 5000
MAX_PRICE: Final = 1e12
_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class ProductInfo:
    id: str
    name: str
    description: str | None
    price: float
    is_live: bool
    img_key: str


@dataclass(frozen=True, slots=True)
class ProductData:
    """What a create or update gives; ``description`` and ``is_live`` None keep the current value
    on update (a new product: no description, a draft)."""

    name: str
    img_key: str
    price: float
    description: str | None = None
    is_live: bool | None = None
    id: str | None = None


class Products:
    """The ``products`` table behind the catalogue's rules."""

    def __init__(self, db: Database, gate: AccessGate, records: Records, clock: Clock) -> None:
        self.db = db
        self.gate = gate
        self.records = records
        self.clock = clock

    def may_manage(self, principal: Principal) -> bool:
        return self.gate.decide_api(principal, MANAGE_PRODUCTS, "products").allowed

    # -- reading -----------------------------------------------------------------------------

    def get(self, principal: Principal, product_id: str) -> ProductInfo | None:
        """The product, or None when there is none the caller may see (a draft, for non-admins)."""
        with self.db.session() as s:
            row = s.get(Product, product_id) if _ID.fullmatch(product_id) else None
            if row is None or (not row.is_live and not self.may_manage(principal)):
                return None
            return _info(row)

    def all(self, principal: Principal, *, include_drafts: bool = False) -> list[ProductInfo]:
        """Live products, newest first; with ``include_drafts``, drafts too for those who may manage
        products (for anyone else the flag changes nothing: drafts stay invisible)."""
        query = select(Product).order_by(Product.created_at.desc(), Product.id)
        if not (include_drafts and self.may_manage(principal)):
            query = query.where(Product.is_live.is_(True))
        with self.db.session() as s:
            return [_info(row) for row in s.scalars(query)]

    # -- changing ----------------------------------------------------------------------------

    def create(self, principal: Principal, data: ProductData) -> ProductInfo:
        """Raises: AccessDenied, InvalidRequest, InvalidKey / NoSuchKey / InvalidContentType (the
        image), Conflict (a product with the given id exists)."""
        self.gate.check_api(principal, MANAGE_PRODUCTS, "products")
        product_id = _check_id(data.id) if data.id is not None else str(uuid.uuid4())
        img_key = self._check_image(principal, data.img_key)
        now = self.clock.now()
        row = Product(
            id=product_id,
            name=_name(data.name),
            description=_description(data.description),
            price=_price(data.price),
            is_live=bool(data.is_live),
            img_key=img_key,
            created_at=now,
            updated_at=now,
        )
        with self.db.session() as s:
            if s.get(Product, product_id) is not None:
                raise Conflict("a product with that id exists already")
            s.add(row)
        return _info(row)

    def update(self, principal: Principal, product_id: str, data: ProductData) -> ProductInfo:
        """Replaces name, image and price (and description and is_live when given).

        Raises: AccessDenied, NotFound, InvalidRequest, and the image's errors as for create.
        """
        self.gate.check_api(principal, MANAGE_PRODUCTS, "products")
        if data.id is not None and data.id != product_id:
            raise InvalidRequest("input.id must be the id of the product being updated (or left out)")
        img_key = self._check_image(principal, data.img_key)
        with self.db.session() as s:
            row = s.get(Product, product_id) if _ID.fullmatch(product_id) else None
            if row is None:
                raise NotFound("no such product")
            row.name, row.price, row.img_key = _name(data.name), _price(data.price), img_key
            if data.description is not None:
                row.description = _description(data.description)
            if data.is_live is not None:
                row.is_live = data.is_live
            row.updated_at = self.clock.now()
            s.flush()
            return _info(row)

    def delete(self, principal: Principal, product_id: str) -> str:
        """Raises: AccessDenied, NotFound."""
        self.gate.check_api(principal, MANAGE_PRODUCTS, "products")
        with self.db.session() as s:
            row = s.get(Product, product_id) if _ID.fullmatch(product_id) else None
            if row is None:
                raise NotFound("no such product")
            s.delete(row)
        return product_id

    def _check_image(self, principal: Principal, key: str) -> str:
        """``key`` if it names a ready image under ``public/``."""
        key = validate_key(key)
        if not key.startswith("public/"):
            raise InvalidKey("imgKey must name a file under public/ (products are shown to everyone)")
        self.gate.check(principal, access.GET, key)
        found = self.records.ready(key)
        if found is None or found.status != "ready":
            raise NoSuchKey("imgKey names no ready file: upload the image first and wait until it is ready")
        if not found.content_type.startswith("image/"):
            raise InvalidContentType(f"imgKey names a {found.content_type} file, not an image")
        return key


def _check_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise InvalidRequest("id must be 1 to 64 letters, digits, '-' or '_'")
    return value


def _name(value: str) -> str:
    name = unicodedata.normalize("NFC", value.strip())
    if not name or len(name) > MAX_NAME:
        raise InvalidRequest(f"name must be 1 to {MAX_NAME} characters")
    return name


def _description(value: str | None) -> str | None:
    if value is None:
        return None
    text = unicodedata.normalize("NFC", value.strip())
    if len(text) > MAX_DESCRIPTION:
        raise InvalidRequest(f"description must be at most {MAX_DESCRIPTION} characters")
    return text


def _price(value: float) -> float:
    if not math.isfinite(value) or not 0 <= value <= MAX_PRICE:
        raise InvalidRequest("price must be a number from 0 up")
    return float(value)


def _info(row: Product) -> ProductInfo:
    return ProductInfo(row.id, row.name, row.description, row.price, row.is_live, row.img_key)
