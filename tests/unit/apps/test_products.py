"""The catalogue's rules on a Runtime without a server (SQLite, and PostgreSQL when set): who may
change it, what imgKey may name, and who sees drafts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from updown import settings as settings_mod
from updown.apps.products import ProductData
from updown.auth.principal import Principal
from updown.clock import FrozenClock
from updown.db.models.files import FileRecord
from updown.errors import AccessDenied, Conflict, InvalidContentType, InvalidKey, InvalidRequest, NoSuchKey, NotFound
from updown.runtime import Runtime

ADMIN = Principal(
    "user", "access_token", identity_id="us-east-1:a", sub="a", groups=("admin",), roles=("authenticated", "admin")
)
USER = Principal("user", "access_token", identity_id="us-east-1:u", sub="u", roles=("authenticated",))
GUEST = Principal("guest", "guest_token", identity_id="us-east-1:g", roles=("guest",))


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    settings = settings_mod.load(data_dir=tmp_path / "data", environ={"UPDOWN_DATABASE__URL": database_url})
    runtime = Runtime(settings, clock=FrozenClock(time.time()))
    runtime.database.migrate()
    for key, content_type in (("public/shop/mug.png", "image/png"), ("public/shop/notes.txt", "text/plain")):
        runtime.records.publish(
            FileRecord(
                key=key,
                access_level="public",
                identity_id="us-east-1:a",
                size=3,
                content_type=content_type,
                etag="0" * 32,
                metadata_={},
                cache_control=None,
                width=None,
                height=None,
                upload_id=None,
                status="ready",
                created_at=0.0,
                updated_at=0.0,
            ),
            (),
            upload_id=None,
        )
    yield runtime
    runtime.close()


def mug(**extra: object) -> ProductData:
    fields: dict[str, object] = {"name": "Mug", "img_key": "public/shop/mug.png", "price": 9.5, **extra}
    return ProductData(**fields)  # type: ignore[arg-type]


def test_products_changes_need_the_admin_role(rt: Runtime) -> None:
    made = rt.products.create(ADMIN, mug(is_live=True))
    for caller in (USER, GUEST):
        with pytest.raises(AccessDenied):
            rt.products.create(caller, mug())
        with pytest.raises(AccessDenied):
            rt.products.update(caller, made.id, mug(name="x"))
        with pytest.raises(AccessDenied):
            rt.products.delete(caller, made.id)
    assert rt.products.get(USER, made.id) == made


def test_products_img_key_must_name_a_ready_public_image(rt: Runtime) -> None:
    for key, error in (
        ("public/shop/none.png", NoSuchKey),
        ("public/shop/notes.txt", InvalidContentType),
        ("private/us-east-1:a/mug.png", InvalidKey),
        ("public/../x.png", InvalidKey),
    ):
        with pytest.raises(error):
            rt.products.create(ADMIN, mug(img_key=key))


def test_products_drafts_only_for_admins(rt: Runtime) -> None:
    draft = rt.products.create(ADMIN, mug(name="Draft"))
    live = rt.products.create(ADMIN, mug(name="Live", is_live=True))
    assert draft.is_live is False
    for caller in (USER, GUEST):
        assert rt.products.get(caller, draft.id) is None
        assert [p.id for p in rt.products.all(caller, include_drafts=True)] == [live.id]
    assert [p.id for p in rt.products.all(ADMIN)] == [live.id]
    assert {p.id for p in rt.products.all(ADMIN, include_drafts=True)} == {draft.id, live.id}


def test_products_update_keeps_what_is_left_out_and_delete_forgets(rt: Runtime) -> None:
    made = rt.products.create(ADMIN, mug(id="mug-1", description="Holds coffee", is_live=True))
    with pytest.raises(Conflict):
        rt.products.create(ADMIN, mug(id="mug-1"))
    with pytest.raises(InvalidRequest):
        rt.products.create(ADMIN, mug(id="no spaces"))
    with pytest.raises(InvalidRequest):
        rt.products.update(ADMIN, made.id, mug(id="other"))
    changed = rt.products.update(ADMIN, made.id, mug(name="Big mug", price=12.0))
    assert (changed.name, changed.price, changed.description, changed.is_live) == (
        "Big mug",
        12.0,
        "Holds coffee",
        True,
    )
    assert rt.products.delete(ADMIN, made.id) == made.id
    with pytest.raises(NotFound):
        rt.products.delete(ADMIN, made.id)
    with pytest.raises(NotFound):
        rt.products.update(ADMIN, made.id, mug())
    assert rt.products.get(ADMIN, made.id) is None
