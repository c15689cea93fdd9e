"""Small rules every write path of ``files/`` shares: reserved metadata, staging and variant keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import cast

from updown.errors import AccessDenied, InvalidArgument
from updown.files.records import OWNER_METADATA
from updown.files.uploads import STAGING_PREFIX, VARIANTS_SEGMENT
from updown.storage.base import ObjectStream


def is_variant_key(key: str) -> bool:
    """``<level>/[<identity>/]_variants/…``: where processing keeps a file's variants."""
    parts = key.split("/", 3)
    return (len(parts) > 1 and parts[1] == VARIANTS_SEGMENT) or (len(parts) > 2 and parts[2] == VARIANTS_SEGMENT)


def not_staging(key: str) -> None:
    # Staging keys take bytes only through their intent's presigned target (`put`, `put_part`).
    if key.startswith(STAGING_PREFIX):
        raise AccessDenied("access denied")


async def pieces(stream: ObjectStream) -> AsyncIterator[bytes]:
    # A backend's pieces are bytes, or bytearrays it never touches again: either streams on as is.
    async for chunk in stream:
        yield cast(bytes, chunk)


def user_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    if OWNER_METADATA in metadata:
        raise InvalidArgument(f"x-amz-meta-{OWNER_METADATA} is reserved")
    return dict(metadata)
