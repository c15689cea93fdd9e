"""The events app on a Runtime without a server: grants and the data plane's binder, the
event-uploader role's derived credential, and the ObjectCreated step run again and again (a
redelivered job, reconcile listing the same objects, objects the data plane never saw)."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import delete, func, select

from tests.contract.bodies import chunks
from updown import settings as settings_mod
from updown.apps.events import photo_metadata
from updown.auth.principal import Principal
from updown.clock import FrozenClock
from updown.db.models.events import EventPhoto
from updown.db.models.files import FileRecord, Job
from updown.errors import AccessDenied, InvalidContentType, InvalidRequest, NotFound
from updown.policy.defaults import EVENT_UPLOADER_ROLE
from updown.processing.triggers import OBJECT_CREATED_JOB
from updown.runtime import Runtime

pytestmark = pytest.mark.anyio

START = 1_800_000_000.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    settings = settings_mod.load(data_dir=tmp_path / "data", environ={"UPDOWN_DATABASE__URL": database_url})
    # Now, frozen: reconcile compares the clock with the objects' modification times.
    runtime = Runtime(settings, clock=FrozenClock(time.time()))
    runtime.database.migrate()
    yield runtime
    runtime.close()


def person(rt: Runtime, *groups: str) -> Principal:
    made = rt.user_admin.create_user(f"u-{uuid.uuid4().hex[:12]}@example.com", "Qz7!long-enough-pw", groups=groups)
    with rt.database.session() as s:
        identity = rt.identity.identity_for_user(s, made.sub)
    return Principal(
        kind="user",
        credential="access_token",
        identity_id=identity,
        sub=made.sub,
        email=made.email,
        groups=groups,
        roles=rt.identity.roles_for_groups(groups),
    )


def jpeg(seed: int = 1) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (seed * 40 % 256, 90, 160)).save(buf, format="JPEG")
    return buf.getvalue()


def uploader(rt: Runtime) -> Principal:
    """The principal the data plane resolves the event-uploader role's key to."""
    key_id = rt.identity.role_credentials(EVENT_UPLOADER_ROLE).access_key_id
    found = rt.identity.resolve_temporary(key_id)
    assert found is not None
    return found[1]


async def photo_grant(rt: Runtime) -> tuple[str, str, str]:
    """(event id, photo id, upload key) of a fresh event and a pending photo of its attendee."""
    boss, guest_of_honour = person(rt, "admin"), person(rt)
    event = rt.events.create(boss, name="Launch", starts_at=START, ends_at=None)
    assert guest_of_honour.sub is not None
    rt.events.add_attendee(boss, event.id, guest_of_honour.sub)
    grant = await rt.events.initiate_upload(
        guest_of_honour, event.id, title="Sunset ☀", description="Pier", content_type="image/jpeg"
    )
    return event.id, grant.photo_id, grant.key


def counts(rt: Runtime) -> tuple[int, int, int]:
    """(object-created jobs, photo rows, file rows under public/)."""
    with rt.database.session() as s:
        jobs = s.scalar(select(func.count()).select_from(Job).where(Job.kind == OBJECT_CREATED_JOB))
        photos = s.scalar(select(func.count()).select_from(EventPhoto))
        files = s.scalar(select(func.count()).select_from(FileRecord).where(FileRecord.key.startswith("public/")))
    return int(jobs or 0), int(photos or 0), int(files or 0)


def photo_row(rt: Runtime, photo_id: str) -> EventPhoto:
    with rt.database.session() as s:
        row = s.get(EventPhoto, photo_id)
        assert row is not None
        s.expunge(row)
        return row


# --- grants, the binder, the role ----------------------------------------------------------------


def test_event_uploader_key_resolves_to_the_role_alone(rt: Runtime) -> None:
    principal = uploader(rt)
    assert principal.roles == (EVENT_UPLOADER_ROLE,)
    assert principal.identity_id is None
    assert principal.sub is None
    with pytest.raises(ValueError, match="not a service role"):
        rt.identity.role_credentials("admin")


async def test_initiate_upload_rules(rt: Runtime) -> None:
    boss, attendee, other = person(rt, "admin"), person(rt), person(rt)
    event = rt.events.create(boss, name="Launch", starts_at=START, ends_at=None)
    assert attendee.sub is not None
    with pytest.raises(AccessDenied):
        rt.events.add_attendee(attendee, event.id, attendee.sub)
    rt.events.add_attendee(boss, event.id, attendee.sub)
    ask = {"title": "t", "description": "d", "content_type": "image/png"}
    with pytest.raises(NotFound):
        await rt.events.initiate_upload(attendee, "nope", **ask)
    with pytest.raises(AccessDenied):
        await rt.events.initiate_upload(other, event.id, **ask)
    with pytest.raises(InvalidContentType):
        await rt.events.initiate_upload(attendee, event.id, **{**ask, "content_type": "image/svg+xml"})
    with pytest.raises(InvalidRequest):
        await rt.events.initiate_upload(attendee, event.id, **{**ask, "title": "x" * 201})
    with pytest.raises(InvalidRequest, match="too long"):
        await rt.events.initiate_upload(attendee, event.id, **{**ask, "description": "é" * 900})
    grant = await rt.events.initiate_upload(attendee, event.id, **{**ask, "content_type": "image/jpg"})
    assert grant.key == f"uploads/event_{event.id}/{grant.photo_id}.jpg"


async def test_bound_write_lives_as_long_as_the_grant(rt: Runtime) -> None:
    event_id, photo_id, key = await photo_grant(rt)
    bound = rt.events.bound_write(key)
    assert bound is not None
    assert bound.content_type == "image/jpeg"
    assert bound.metadata == {
        "title": "Sunset %E2%98%80",
        "description": "Pier",
        "eventid": event_id,
        "photoid": photo_id,
        "contenttype": "image/jpeg",
    }
    assert rt.events.bound_write(key.replace(photo_id, "someone-else")) is None
    assert rt.events.bound_write("uploads/other/x.jpg") is None
    assert isinstance(rt.clock, FrozenClock)
    rt.clock.advance(rt.settings.apps.event_upload_expires + 1)
    assert rt.events.bound_write(key) is None


async def test_objects_put_under_uploads_needs_a_grant_and_takes_its_metadata(rt: Runtime) -> None:
    _event_id, _photo_id, key = await photo_grant(rt)
    data = jpeg()
    with pytest.raises(AccessDenied):  # the grant's type, not another
        await rt.objects.put(
            uploader(rt), key, chunks(data), content_type="image/png", metadata={}, content_length=None
        )
    with pytest.raises(AccessDenied):  # no grant for this key
        await rt.objects.put(
            uploader(rt), key + "x.jpg", chunks(data), content_type="image/jpeg", metadata={}, content_length=None
        )
    info = await rt.objects.put(
        uploader(rt), key, chunks(data), content_type="image/jpeg", metadata={"title": "forged"}, content_length=None
    )
    stored = await rt.storage.head(key)
    assert stored.metadata["title"] == "Sunset %E2%98%80"
    assert stored.etag == info.etag
    assert counts(rt)[0] == 1  # queued with the row, in one transaction


# --- the step, again and again -----------------------------------------------------------------


async def test_object_created_redelivered_writes_one_row_and_changes_nothing(rt: Runtime) -> None:
    event_id, photo_id, key = await photo_grant(rt)
    info = await rt.objects.put(
        uploader(rt), key, chunks(jpeg()), content_type="image/jpeg", metadata={}, content_length=None
    )
    worker = rt.worker()
    await worker.drain()
    ready = photo_row(rt, photo_id)
    assert ready.status == "ready"
    assert ready.title == "Sunset ☀"
    assert ready.file_key is not None
    assert ready.file_key.startswith(f"public/events/{event_id}/{photo_id}-")
    before = counts(rt)
    assert before == (1, 1, 1)
    # The same event delivered twice more (a worker that died after the step, before `done`).
    payload = {"key": key, "etag": info.etag}
    await rt.triggers.run(payload)
    await rt.triggers.run(payload)
    assert counts(rt) == before
    again = photo_row(rt, photo_id)
    assert (again.updated_at, again.file_key, again.thumbnail_key) == (
        ready.updated_at,
        ready.file_key,
        ready.thumbnail_key,
    )
    # Reconcile lists uploads/ and finds every version queued already, however often it runs.
    assert await rt.triggers.reconcile() == 0
    assert await rt.triggers.reconcile() == 0
    # Even with its row gone from the queue (finished jobs are purged), the step changes nothing.
    with rt.database.session() as s:
        s.execute(delete(Job))
    assert await rt.triggers.reconcile() == 1
    await worker.drain()
    assert photo_row(rt, photo_id).updated_at == ready.updated_at
    assert counts(rt)[1:] == (1, 1)
    photos = rt.events.photos(person(rt), event_id)
    assert [p.id for p in photos] == [photo_id]


async def test_reconcile_finds_objects_the_data_plane_never_saw(rt: Runtime) -> None:
    """The S3 backend: the client PUTs straight to the store, which keeps the URL's metadata."""
    _event_id, photo_id, key = await photo_grant(rt)
    metadata = photo_metadata(photo_row(rt, photo_id))
    await rt.storage.put(key, chunks(jpeg(2)), content_type="image/jpeg", metadata=metadata)
    assert counts(rt)[0] == 0
    assert await rt.triggers.reconcile() == 1
    assert await rt.triggers.reconcile() == 0
    await rt.worker().drain()
    assert photo_row(rt, photo_id).status == "ready"


async def test_reconcile_looks_back_only_as_far_as_finished_jobs_are_kept(rt: Runtime) -> None:
    _event_id, photo_id, key = await photo_grant(rt)
    metadata = photo_metadata(photo_row(rt, photo_id))
    await rt.storage.put(key, chunks(jpeg(2)), content_type="image/jpeg", metadata=metadata)
    assert isinstance(rt.clock, FrozenClock)
    rt.clock.advance(rt.triggers.window + 3600)
    assert await rt.triggers.reconcile() == 0


async def test_step_reads_the_object_not_the_grant(rt: Runtime) -> None:
    _event_id, photo_id, key = await photo_grant(rt)
    metadata = {**photo_metadata(photo_row(rt, photo_id)), "photoid": "another-photo"}
    await rt.storage.put(key, chunks(jpeg(3)), content_type="image/jpeg", metadata=metadata)
    await rt.triggers.reconcile()
    await rt.worker().drain()
    row = photo_row(rt, photo_id)
    assert row.status == "rejected"
    assert row.reason == "the uploaded object's metadata does not name this photo"
    # Metadata missing altogether (a store that dropped it): refused the same way.
    _e, other_id, other_key = await photo_grant(rt)
    await rt.storage.put(other_key, chunks(jpeg(4)), content_type="image/jpeg", metadata={})
    await rt.triggers.reconcile()
    await rt.worker().drain()
    assert photo_row(rt, other_id).status == "rejected"


async def test_step_leaves_objects_nobody_granted_alone(rt: Runtime) -> None:
    event_id, _photo_id, _key = await photo_grant(rt)
    stray = f"uploads/event_{event_id}/00000000-0000-4000-8000-000000000000.jpg"
    await rt.storage.put(stray, chunks(jpeg()), content_type="image/jpeg", metadata={"eventid": event_id})
    await rt.storage.put("uploads/elsewhere/x.jpg", chunks(jpeg()), content_type="image/jpeg")
    assert await rt.triggers.reconcile() == 2
    await rt.worker().drain()
    assert counts(rt)[1:] == (1, 0)  # only the grant's pending row; nothing published
