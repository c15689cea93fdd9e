"""Presigned targets for one bucket: PUT, browser POST, multipart parts and GET.

The URLs point at the object store clients talk to directly: the local backend's ``/s3`` data plane,
or the S3-compatible service itself. Each binds what the grant says and nothing more: the method,
the key, the signed headers (``Content-Type``, ``Content-Length``, ``Cache-Control``,
``x-amz-meta-*``) and the lifetime. A GET also binds how the answer is served (``response-*``
overrides, which every S3 store honours), since an S3 store adds no inert headers of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from updown.clock import Clock
from updown.core.postpolicy import PresignedPost, presign_post
from updown.core.sigv4 import Signer, object_url

# The types served inline: raster images, which a browser only ever decodes as a picture, even
# when it sniffs (an S3 store sends no ``X-Content-Type-Options: nosniff``). Everything else is an
# attachment when opened directly: text and HTML, SVG (it can run script), PDF, archives and
# office files, and audio and video too (their containers are checked by a few bytes only, and
# ``<video>``/``<audio>``/``<img>`` ignore Content-Disposition, so embedding them still works).
INLINE_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif"})


@dataclass(frozen=True, slots=True)
class PutTarget:
    """A presigned PUT and the headers the request must carry exactly."""

    url: str
    headers: dict[str, str]


def attachment(filename: str) -> str:
    """An RFC 6266 ``Content-Disposition: attachment`` with an ASCII fallback and the UTF-8 name."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%;' else "_" for c in filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def media_type(content_type: str) -> str:
    """The media type alone, lower-case (``Text/Plain; charset=utf-8`` → ``text/plain``)."""
    return content_type.split(";", 1)[0].strip().lower()


class Presigner:
    """Signs URLs for ``bucket`` at ``endpoint`` (``…/s3`` for the local backend)."""

    def __init__(self, signer: Signer, *, endpoint: str, bucket: str, clock: Clock) -> None:
        self.signer = signer
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.clock = clock
        self.post_url = f"{self.endpoint}/{bucket}"

    def put(
        self,
        key: str,
        *,
        content_type: str,
        content_length: int,
        metadata: Mapping[str, str],
        cache_control: str | None,
        expires: int,
    ) -> PutTarget:
        headers = {"Content-Type": content_type, "Content-Length": str(content_length)}
        if cache_control:
            headers["Cache-Control"] = cache_control
        headers.update({f"x-amz-meta-{name}": value for name, value in metadata.items()})
        url = self.signer.presign(
            "PUT",
            object_url(self.endpoint, self.bucket, key),
            expires=expires,
            now=self.clock.now(),
            headers={name.lower(): value for name, value in headers.items()},
        )
        return PutTarget(url, headers)

    def put_hoisted(self, key: str, *, content_type: str, metadata: Mapping[str, str], expires: int) -> str:
        """A presigned PUT the client sends with ``Content-Type`` alone.

        ``Content-Type`` is a signed header; the user metadata rides in the signed query as
        ``x-amz-meta-*`` parameters (hoisted, as S3's presigners do), which S3 stores as the
        object's metadata. The local data plane takes the metadata from the grant the caller
        recorded (``files.objects.Objects.bind``); either way the URL cannot be changed to carry
        other values.
        """
        return self.signer.presign(
            "PUT",
            object_url(self.endpoint, self.bucket, key),
            expires=expires,
            now=self.clock.now(),
            headers={"content-type": content_type},
            query={f"x-amz-meta-{name}": value for name, value in metadata.items()},
        )

    def post(
        self,
        key: str,
        *,
        content_type: str,
        max_length: int,
        metadata: Mapping[str, str],
        cache_control: str | None,
        expires: int,
    ) -> PresignedPost:
        fields = {"Content-Type": content_type}
        if cache_control:
            fields["Cache-Control"] = cache_control
        fields.update({f"x-amz-meta-{name}": value for name, value in metadata.items()})
        conditions: list[object] = [["content-length-range", 0, max_length]]
        conditions += [{name: value} for name, value in fields.items()]
        return presign_post(
            self.signer,
            self.post_url,
            self.bucket,
            key,
            now=self.clock.now(),
            expires=expires,
            fields=fields,
            conditions=conditions,  # type: ignore[arg-type]
        )

    def part(self, key: str, upload_id: str, part_number: int, *, expires: int) -> str:
        return self.signer.presign(
            "PUT",
            object_url(self.endpoint, self.bucket, key),
            expires=expires,
            now=self.clock.now(),
            query={"partNumber": str(part_number), "uploadId": upload_id},
        )

    def get(self, key: str, *, expires: int, content_type: str, download: bool = False) -> str:
        """A presigned GET whose answer has ``Content-Type: content_type`` (the type processing
        verified, whatever the object was stored with) and is an attachment named like the key's
        last segment, unless the type is one of `INLINE_TYPES` and ``download`` is false."""
        query = {"response-content-type": content_type}
        if download or media_type(content_type) not in INLINE_TYPES:
            query["response-content-disposition"] = attachment(key.rsplit("/", 1)[-1])
        return self.signer.presign(
            "GET", object_url(self.endpoint, self.bucket, key), expires=expires, now=self.clock.now(), query=query
        )
