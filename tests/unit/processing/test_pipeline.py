"""The pipeline on a Runtime without a server: a landed intent (a row and its staged bytes in the
local backend) is processed directly. Shows what sniffing, image checks and GPS stripping do to a
real upload, and that an SVG is judged on its first SNIFF_BYTES only."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import ExifTags, Image
from sqlalchemy import select

from tests.contract.bodies import chunks, read_all
from updown import settings as settings_mod
from updown.clock import FrozenClock
from updown.db.models.files import FileRecord, FileVariant, Upload
from updown.errors import NoSuchKey
from updown.files.uploads import staging_key
from updown.processing.pipeline import SNIFF_BYTES, Outcome
from updown.runtime import Runtime

pytestmark = pytest.mark.anyio

IDENTITY = "eu-west-1:0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    settings = settings_mod.load(data_dir=tmp_path / "data", environ={"UPDOWN_DATABASE__URL": database_url})
    runtime = Runtime(settings, clock=FrozenClock(1_800_000_000.0))
    runtime.database.migrate()
    yield runtime
    runtime.close()


async def landed(rt: Runtime, key: str, content_type: str, data: bytes) -> str:
    """An intent whose bytes have landed at its staging key, as `complete` leaves it."""
    upload_id = secrets.token_hex(16)
    info = await rt.storage.put(staging_key(upload_id), chunks(data), content_type=content_type)
    now = rt.clock.now()
    with rt.database.session() as s:
        s.add(
            Upload(
                id=upload_id,
                key=key,
                staging_key=staging_key(upload_id),
                access_level=key.split("/", 1)[0],
                identity_id=IDENTITY,
                user_sub=None,
                mode="put",
                content_type=content_type,
                size=len(data),
                metadata_={},
                cache_control=None,
                multipart_id=None,
                status="uploaded",
                reason=None,
                etag=info.etag,
                received=len(data),
                created_at=now,
                expires_at=now + 3600,
                updated_at=now,
            )
        )
    return upload_id


def intent(rt: Runtime, upload_id: str) -> Upload:
    with rt.database.session() as s:
        row = s.get(Upload, upload_id)
        assert row is not None
        return row


async def staged_gone(rt: Runtime, upload_id: str) -> bool:
    try:
        await rt.storage.head(staging_key(upload_id))
    except NoSuchKey:
        return True
    return False


def svg_with_script_at(offset: int) -> bytes:
    head = b'<svg xmlns="http://www.w3.org/2000/svg"><!--'
    padding = b"x" * max(0, offset - len(head) - 3)
    return head + padding + b"--><script>alert(document.domain)</script></svg>"


async def test_svg_with_script_is_rejected(rt: Runtime) -> None:
    upload_id = await landed(rt, "public/a.svg", "image/svg+xml", svg_with_script_at(100))
    outcome = await rt.pipeline.process(upload_id)
    assert outcome == Outcome("rejected", "the file is an SVG image with scripts or links, which is not accepted")
    assert intent(rt, upload_id).status == "rejected"
    assert await staged_gone(rt, upload_id)


async def test_inert_svg_is_published(rt: Runtime) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>'
    upload_id = await landed(rt, "public/b.svg", "image/svg+xml", svg)
    assert await rt.pipeline.process(upload_id) == Outcome("ready")
    assert await read_all(rt.storage, "public/b.svg") == svg


async def test_svg_with_script_after_the_sniffed_head_is_rejected(rt: Runtime) -> None:
    svg = svg_with_script_at(SNIFF_BYTES + 500)
    assert b"<script" not in svg[:SNIFF_BYTES]
    upload_id = await landed(rt, "public/late.svg", "image/svg+xml", svg)
    outcome = await rt.pipeline.process(upload_id)
    assert outcome.status == "rejected"


async def test_jpeg_is_published_without_gps_and_with_a_thumbnail(rt: Runtime) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Acme"
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (1.0, 2.0, 3.0)}
    buf = io.BytesIO()
    Image.new("RGB", (400, 200), (10, 200, 30)).save(buf, format="JPEG", exif=exif)
    upload_id = await landed(rt, "public/photo.jpg", "image/jpeg", buf.getvalue())

    assert await rt.pipeline.process(upload_id) == Outcome("ready")

    stored = await read_all(rt.storage, "public/photo.jpg")
    with Image.open(io.BytesIO(stored)) as im:
        got = im.getexif()
        assert got.get_ifd(ExifTags.IFD.GPSInfo) == {}
        assert (got[ExifTags.Base.Make], got[ExifTags.Base.Orientation]) == ("Acme", 6)
    with rt.database.session() as s:
        record = s.get(FileRecord, "public/photo.jpg")
        assert record is not None
        assert (record.status, record.width, record.height, record.size) == ("ready", 400, 200, len(stored))
        variants = list(s.scalars(select(FileVariant).where(FileVariant.file_key == "public/photo.jpg")))
    assert [(v.name, v.content_type, v.width, v.height) for v in variants] == [("thumbnail", "image/webp", 128, 256)]
    thumb = await read_all(rt.storage, variants[0].key)
    with Image.open(io.BytesIO(thumb)) as im:
        assert (im.format, im.size) == ("WEBP", (128, 256))
    assert await staged_gone(rt, upload_id)


async def test_truncated_png_is_rejected_with_the_image_reason(rt: Runtime) -> None:
    buf = io.BytesIO()
    Image.frombytes("RGB", (64, 64), bytes(range(256)) * 48).save(buf, format="PNG", compress_level=0)
    data = buf.getvalue()
    upload_id = await landed(rt, "public/cut.png", "image/png", data[: len(data) // 2])
    outcome = await rt.pipeline.process(upload_id)
    assert outcome.status == "rejected"
    assert outcome.reason is not None
    assert outcome.reason.startswith("the image is damaged or truncated")
    row = intent(rt, upload_id)
    assert (row.status, row.reason) == ("rejected", outcome.reason)
    assert await staged_gone(rt, upload_id)
    with pytest.raises(NoSuchKey):
        await rt.storage.head("public/cut.png")


async def test_bytes_that_are_not_what_was_declared_are_rejected(rt: Runtime) -> None:
    upload_id = await landed(rt, "public/fake.png", "image/png", b"GIF89a" + b"\x00" * 20)
    outcome = await rt.pipeline.process(upload_id)
    assert outcome == Outcome("rejected", "declared image/png, but the bytes are not a PNG image: they are a GIF image")


async def test_finished_intent_is_skipped(rt: Runtime) -> None:
    upload_id = await landed(rt, "public/t.txt", "text/plain", b"hello\n")
    assert await rt.pipeline.process(upload_id) == Outcome("ready")
    assert await rt.pipeline.process(upload_id) == Outcome("skipped")
    assert await rt.pipeline.process(secrets.token_hex(16)) == Outcome("skipped")
