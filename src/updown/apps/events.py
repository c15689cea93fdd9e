"""Events and their photos: admins create events and register attendees, attendees upload photos
straight to storage through presigned URLs, and everyone signed in (users and guests) sees them.

An upload is granted only to a registered attendee. The grant is a ``pending`` photo row and a
presigned PUT for ``uploads/event_{eventId}/{photoId}.{ext}`` signed for the narrow
``event-uploader`` role (``s3:PutObject`` on ``uploads/*`` only): it binds the content type (the one
header the client sends) and the object's metadata ``title``, ``description``, ``eventid``,
``photoid`` and ``contenttype`` (in the signed query). :meth:`Events.bound_write` is the data plane's
check that an object under ``uploads/`` was granted (see ``files.objects.Objects.bind``). The
ObjectCreated step (``apps/photos.py``) reads the metadata back from the object, publishes an
optimized copy and a thumbnail under ``public/events/{eventId}/`` and makes the row ``ready``.

Metadata values travel in HTTP headers (printable ASCII): text is stored percent-encoded (UTF-8),
and decoded again by the step.
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session

from updown.auth.principal import Principal
from updown.clock import Clock
from updown.db.engine import Database
from updown.db.models.events import Event, EventAttendee, EventPhoto
from updown.db.models.users import User
from updown.errors import AccessDenied, InvalidContentType, InvalidRequest, NotFound
from updown.files.access import AccessGate
from updown.files.objects import BoundWrite
from updown.files.presign import Presigner
from updown.files.uploads import canonical_type
from updown.settings import AppsSettings
from updown.storage.base import MAX_METADATA_BYTES

MANAGE_EVENTS: Final = "updown:ManageEvents"
UPLOAD_PREFIX: Final = "uploads/"
PUBLIC_PREFIX: Final = "public/events/"
# What the seed asks the stored object to be served with; the published copies carry it.
CACHE_CONTROL: Final = "max-age=31557600"
# Types an event photo may be, with the extension of its upload key.
PHOTO_TYPES: Final = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
MAX_NAME: Final = 200
MAX_TITLE: Final = 200
MAX_DESCRIPTION: Final = 1000
# Every printable ASCII character but "%" stays as it is in a metadata value.
_SAFE: Final = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "%")


@dataclass(frozen=True, slots=True)
class EventInfo:
    id: str
    name: str
    starts_at: float
    ends_at: float | None
    created_at: float
    attending: bool


@dataclass(frozen=True, slots=True)
class Attendee:
    event_id: str
    user_sub: str
    email: str | None
    added_at: float


@dataclass(frozen=True, slots=True)
class PhotoGrant:
    """What ``initiate-upload`` answers: the photo's id and the presigned PUT for its bytes."""

    photo_id: str
    key: str
    url: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class PhotoInfo:
    """A ready photo; ``file_key`` and ``thumbnail_key`` are under ``public/`` (served by /cdn)."""

    id: str
    event_id: str
    title: str
    description: str
    content_type: str
    file_key: str
    thumbnail_key: str
    uploaded_by: str
    created_at: float


def upload_key(event_id: str, photo_id: str, content_type: str) -> str:
    return f"{UPLOAD_PREFIX}event_{event_id}/{photo_id}.{PHOTO_TYPES[content_type]}"


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """``(eventId, photoId)`` of ``uploads/event_{eventId}/{photoId}.{ext}``, or None for any other key."""
    if not key.startswith(UPLOAD_PREFIX + "event_"):
        return None
    folder, _, name = key[len(UPLOAD_PREFIX) + len("event_") :].partition("/")
    photo_id, dot, ext = name.rpartition(".")
    if not folder or not photo_id or not dot or "/" in name or ext not in PHOTO_TYPES.values():
        return None
    return folder, photo_id


def encode_text(value: str) -> str:
    """Text as a metadata value: printable ASCII as is, anything else (and ``%``) percent-encoded."""
    return quote(value, safe=_SAFE)


def decode_text(value: str) -> str:
    return unquote(value)


def photo_metadata(row: EventPhoto) -> dict[str, str]:
    """The object metadata a photo's upload binds (names lower-case, without ``x-amz-meta-``)."""
    return {
        "title": encode_text(row.title),
        "description": encode_text(row.description),
        "eventid": row.event_id,
        "photoid": row.id,
        "contenttype": row.content_type,
    }


class Events:
    """Events, attendees and photo upload grants."""

    def __init__(
        self,
        db: Database,
        gate: AccessGate,
        presigner: Presigner,
        clock: Clock,
        settings: AppsSettings,
    ) -> None:
        """``presigner`` signs with the ``event-uploader`` role's credentials (or the S3 service's)."""
        self.db = db
        self.gate = gate
        self.presigner = presigner
        self.clock = clock
        self.settings = settings

    # -- events ------------------------------------------------------------------------------

    def create(self, principal: Principal, *, name: str, starts_at: float, ends_at: float | None) -> EventInfo:
        """Raises: AccessDenied (not an admin), InvalidRequest (empty name, ends before it starts)."""
        self.gate.check_api(principal, MANAGE_EVENTS, "events")
        name = _text(name, "name", MAX_NAME)
        if not name:
            raise InvalidRequest("name must not be empty")
        if ends_at is not None and ends_at < starts_at:
            raise InvalidRequest("endsAt must not be before startsAt")
        row = Event(
            id=str(uuid.uuid4()),
            name=name,
            starts_at=starts_at,
            ends_at=ends_at,
            created_by=principal.sub,
            created_at=self.clock.now(),
        )
        with self.db.session() as s:
            s.add(row)
        return _event(row, attending=False)

    def all(self, principal: Principal) -> list[EventInfo]:
        """Every event, latest start first."""
        with self.db.session() as s:
            rows = list(s.scalars(select(Event).order_by(Event.starts_at.desc(), Event.id)))
            mine = self._attending(s, principal)
            return [_event(row, attending=row.id in mine) for row in rows]

    def get(self, principal: Principal, event_id: str) -> EventInfo:
        """Raises: NotFound."""
        with self.db.session() as s:
            row = _find(s, event_id)
            return _event(row, attending=self._is_attendee(s, event_id, principal))

    # -- attendees ---------------------------------------------------------------------------

    def add_attendee(self, principal: Principal, event_id: str, user_sub: str) -> Attendee:
        """Registers a user (by ``sub``) for the event; registering twice changes nothing.

        Raises: AccessDenied (not an admin), NotFound (no such event or user).
        """
        self.gate.check_api(principal, MANAGE_EVENTS, "events")
        with self.db.session() as s:
            _find(s, event_id)
            user = s.get(User, user_sub) if len(user_sub) <= 36 else None
            if user is None:
                raise NotFound("no such user")
            row = s.get(EventAttendee, (event_id, user_sub))
            if row is None:
                row = EventAttendee(event_id=event_id, user_sub=user_sub, added_at=self.clock.now())
                s.add(row)
                s.flush()
            return Attendee(event_id, user_sub, user.email, row.added_at)

    def attendees(self, principal: Principal, event_id: str) -> list[Attendee]:
        """Raises: AccessDenied (not an admin), NotFound."""
        self.gate.check_api(principal, MANAGE_EVENTS, "events")
        with self.db.session() as s:
            _find(s, event_id)
            rows = s.execute(
                select(EventAttendee, User.email)
                .join(User, User.id == EventAttendee.user_sub)
                .where(EventAttendee.event_id == event_id)
                .order_by(EventAttendee.added_at, EventAttendee.user_sub)
            ).all()
            return [Attendee(a.event_id, a.user_sub, email, a.added_at) for a, email in rows]

    # -- photos ------------------------------------------------------------------------------

    async def initiate_upload(
        self, principal: Principal, event_id: str, *, title: str, description: str, content_type: str
    ) -> PhotoGrant:
        """A pending photo and the presigned PUT its bytes go to.

        Raises:
            NotFound: no such event. AccessDenied: the caller is not a registered attendee.
            InvalidContentType: not an image type photos may be. InvalidRequest: text too long.
        """
        return await anyio.to_thread.run_sync(
            lambda: self._initiate(principal, event_id, title=title, description=description, content_type=content_type)
        )

    def _initiate(
        self, principal: Principal, event_id: str, *, title: str, description: str, content_type: str
    ) -> PhotoGrant:
        now = self.clock.now()
        with self.db.session() as s:
            _find(s, event_id)
            if not self._is_attendee(s, event_id, principal):
                raise AccessDenied("only the event's registered attendees may upload its photos")
            assert principal.sub is not None
            media = canonical_type(content_type)
            if media not in PHOTO_TYPES:
                raise InvalidContentType(f"{media or 'that'} is not a photo type: use one of {', '.join(PHOTO_TYPES)}")
            photo_id = str(uuid.uuid4())
            row = EventPhoto(
                id=photo_id,
                event_id=event_id,
                upload_key=upload_key(event_id, photo_id, media),
                title=_text(title, "title", MAX_TITLE),
                description=_text(description, "description", MAX_DESCRIPTION),
                content_type=media,
                uploaded_by=principal.sub,
                status="pending",
                expires_at=now + self.settings.event_upload_expires,
                created_at=now,
                updated_at=now,
            )
            metadata = photo_metadata(row)
            if sum(len(k) + len(v) for k, v in metadata.items()) > MAX_METADATA_BYTES:
                raise InvalidRequest(
                    f"title and description together are too long: they travel as object metadata, "
                    f"at most {MAX_METADATA_BYTES} bytes once encoded"
                )
            s.add(row)
        url = self.presigner.put_hoisted(
            row.upload_key, content_type=media, metadata=metadata, expires=self.settings.event_upload_expires
        )
        return PhotoGrant(photo_id, row.upload_key, url, row.expires_at)

    def photos(self, principal: Principal, event_id: str) -> list[PhotoInfo]:
        """The event's ready photos, newest first. Raises: NotFound."""
        with self.db.session() as s:
            _find(s, event_id)
            rows = s.scalars(
                select(EventPhoto)
                .where(EventPhoto.event_id == event_id, EventPhoto.status == "ready")
                .order_by(EventPhoto.created_at.desc(), EventPhoto.id)
            )
            return [_photo(row) for row in rows]

    def bound_write(self, key: str) -> BoundWrite | None:
        """The data plane's binder for ``uploads/``: what a PUT to ``key`` may store, while its grant lives.

        A photo may be sent again while its URL lives (as S3 allows); its step then runs again.
        """
        if parse_upload_key(key) is None:
            return None
        with self.db.session() as s:
            row = s.scalars(select(EventPhoto).where(EventPhoto.upload_key == key)).one_or_none()
            if row is None or row.expires_at <= self.clock.now():
                return None
            return BoundWrite(row.content_type, photo_metadata(row), self.settings.event_photo_max_size)

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _is_attendee(s: Session, event_id: str, principal: Principal) -> bool:
        if principal.sub is None or not principal.is_user:
            return False
        return s.get(EventAttendee, (event_id, principal.sub)) is not None

    @staticmethod
    def _attending(s: Session, principal: Principal) -> set[str]:
        if principal.sub is None or not principal.is_user:
            return set()
        return set(s.scalars(select(EventAttendee.event_id).where(EventAttendee.user_sub == principal.sub)))


def _find(s: Session, event_id: str) -> Event:
    row = s.get(Event, event_id) if len(event_id) <= 36 else None
    if row is None:
        raise NotFound("no such event")
    return row


def _text(value: str, name: str, limit: int) -> str:
    text = unicodedata.normalize("NFC", value.strip())
    if len(text) > limit:
        raise InvalidRequest(f"{name} must be at most {limit} characters")
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise InvalidRequest(f"{name} must not hold control characters")
    return text


def _event(row: Event, *, attending: bool) -> EventInfo:
    return EventInfo(row.id, row.name, row.starts_at, row.ends_at, row.created_at, attending)


def _photo(row: EventPhoto) -> PhotoInfo:
    assert row.file_key is not None
    assert row.thumbnail_key is not None
    return PhotoInfo(
        row.id,
        row.event_id,
        row.title,
        row.description,
        row.content_type,
        row.file_key,
        row.thumbnail_key,
        row.uploaded_by,
        row.created_at,
    )
