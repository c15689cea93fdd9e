"""``/events``: events, attendees and photos. Thin: parse, call the events app, shape the answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

import anyio.to_thread
from fastapi import APIRouter, Depends, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from updown.apps.events import Attendee, EventInfo, PhotoInfo
from updown.auth.principal import Principal
from updown.settings import Settings
from updown.web.deps import RuntimeDep, requires

router = APIRouter(prefix="/events", tags=["events"])
CallerDep = Annotated[Principal, Depends(requires("events"))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewEvent(_Strict):
    name: str = Field(max_length=400)
    startsAt: AwareDatetime
    endsAt: AwareDatetime | None = None


class NewAttendee(_Strict):
    userSub: str = Field(min_length=1, max_length=64)


class InitiateUpload(_Strict):
    title: str = Field(max_length=1000)
    description: str = Field(max_length=5000)
    contentType: str = Field(max_length=255)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def cdn_url(settings: Settings, key: str) -> str:
    """The ``/cdn`` URL of a key under ``public/``."""
    return f"{settings.public_url}/cdn/{quote(key.removeprefix('public/'))}"


def event_json(event: EventInfo) -> dict[str, Any]:
    return {
        "id": event.id,
        "name": event.name,
        "startsAt": iso(event.starts_at),
        "endsAt": None if event.ends_at is None else iso(event.ends_at),
        "createdAt": iso(event.created_at),
        "attending": event.attending,
    }


def attendee_json(attendee: Attendee) -> dict[str, Any]:
    return {
        "eventId": attendee.event_id,
        "userSub": attendee.user_sub,
        "email": attendee.email,
        "addedAt": iso(attendee.added_at),
    }


def photo_json(settings: Settings, photo: PhotoInfo) -> dict[str, Any]:
    return {
        "id": photo.id,
        "eventId": photo.event_id,
        "title": photo.title,
        "description": photo.description,
        "contentType": photo.content_type,
        "url": cdn_url(settings, photo.file_key),
        "thumbnailUrl": cdn_url(settings, photo.thumbnail_key),
        "uploadedBy": photo.uploaded_by,
        "createdAt": iso(photo.created_at),
    }


@router.post("", status_code=201)
def create_event(body: NewEvent, runtime: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    event = runtime.events.create(
        caller,
        name=body.name,
        starts_at=body.startsAt.timestamp(),
        ends_at=None if body.endsAt is None else body.endsAt.timestamp(),
    )
    return event_json(event)


@router.get("")
def list_events(runtime: RuntimeDep, caller: CallerDep) -> list[dict[str, Any]]:
    return [event_json(e) for e in runtime.events.all(caller)]


@router.get("/{event_id}")
def get_event(event_id: str, runtime: RuntimeDep, caller: CallerDep, response: Response) -> dict[str, Any]:
    # A browser's navigation to the same URL gets the event's page (routes/pages.py).
    response.headers["Vary"] = "Accept"
    return event_json(runtime.events.get(caller, event_id))


@router.post("/{event_id}/attendees", status_code=201)
def add_attendee(event_id: str, body: NewAttendee, runtime: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    return attendee_json(runtime.events.add_attendee(caller, event_id, body.userSub))


@router.get("/{event_id}/attendees")
def list_attendees(event_id: str, runtime: RuntimeDep, caller: CallerDep) -> list[dict[str, Any]]:
    return [attendee_json(a) for a in runtime.events.attendees(caller, event_id)]


@router.post("/{event_id}/photos/initiate-upload", status_code=201)
async def initiate_upload(
    event_id: str, body: InitiateUpload, runtime: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    grant = await runtime.events.initiate_upload(
        caller, event_id, title=body.title, description=body.description, content_type=body.contentType
    )
    return {
        "photoId": grant.photo_id,
        "s3PutObjectUrl": grant.url,
        "key": grant.key,
        "expiresAt": iso(grant.expires_at),
    }


@router.get("/{event_id}/photos")
async def list_photos(event_id: str, runtime: RuntimeDep, caller: CallerDep) -> list[dict[str, Any]]:
    photos = await anyio.to_thread.run_sync(runtime.events.photos, caller, event_id)
    return [photo_json(runtime.settings, p) for p in photos]
