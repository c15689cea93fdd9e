"""What the bytes really are: the type from the leading bytes (magic numbers), and the verdict on an
upload's declared type. Pure and stdlib only; every verdict carries a reason a person understands."""

from __future__ import annotations

import html
import re
import struct
from dataclasses import dataclass
from typing import Final

EXECUTABLE: Final = "application/x-executable"
DEFAULT_FORBIDDEN: Final = frozenset({"text/html", EXECUTABLE})

_NAMES: Final = {
    "image/jpeg": "a JPEG image",
    "image/png": "a PNG image",
    "image/gif": "a GIF image",
    "image/webp": "a WebP image",
    "image/avif": "an AVIF image",
    "image/heic": "a HEIC image",
    "image/tiff": "a TIFF image",
    "image/bmp": "a BMP image",
    "application/pdf": "a PDF document",
    "application/zip": "a ZIP archive",
    "video/mp4": "an MP4 video",
    "video/quicktime": "a QuickTime video",
    "audio/mpeg": "an MP3 audio file",
    "text/plain": "text",
    "text/html": "an HTML page",
    "image/svg+xml": "an SVG image",
    EXECUTABLE: "an executable program",
}
# Declared types whose bytes are text; and the ZIP-based office formats.
_TEXT: Final = frozenset({"text/plain", "text/csv", "application/json"})
_ZIP_BASED: Final = frozenset(
    {
        "application/zip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    }
)
_HTML: Final = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|script|iframe|meta|title)\b", re.I | re.S
)
_SVG: Final = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*|<!doctype[^>]*>\s*)*<svg\b", re.I | re.S)
_ACTIVE_SVG: Final = re.compile(
    r"<script|<foreignobject|<!entity|\bon[a-z]+\s*=|javascript:|href\s*=\s*[\"']?\s*(?:https?:|data:text)", re.I
)
# What a browser drops from a URL before reading its scheme (``java&#9;script:`` is javascript:).
_URL_NOISE: Final = re.compile(r"[\x00-\x20]")
# A BMP's info header starts with its own size: one of the known versions.
_BMP_INFO_SIZES: Final = frozenset(struct.pack("<I", n) for n in (12, 16, 40, 52, 56, 64, 108, 124))
_CONTROL: Final = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_MACHO: Final = (
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the bytes may be accepted as declared; ``reason`` says why not."""

    ok: bool
    sniffed: str | None
    reason: str | None = None


def sniff(head: bytes) -> str | None:
    """The MIME type the leading bytes are, or None when unknown."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[:2] == b"BM" and head[14:18] in _BMP_INFO_SIZES:
        return "image/bmp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "application/zip"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith((b"\x7fELF", b"MZ", b"#!")) or head[:4] in _MACHO:
        return EXECUTABLE
    # An ISO-BMFF box is named at offset 4, so it comes after every signature at offset 0: a ZIP
    # or an executable whose fifth byte starts "ftyp" stays what its first bytes say.
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "image/heic"
        if brand == b"qt  ":
            return "video/quicktime"
        return "video/mp4"
    text = head.removeprefix(b"\xef\xbb\xbf")
    if _HTML.match(text):
        return "text/html"
    if _SVG.match(text):
        return "image/svg+xml"
    if _is_text(text):
        return "text/plain"
    return None


def svg_is_active(data: bytes) -> bool:
    """An SVG with scripts, event handlers, ``javascript:`` or external links, also spelt with
    character references or entities: never accepted. ``data`` is the whole file."""
    text = html.unescape(data.decode("utf-8", "replace"))
    if _ACTIVE_SVG.search(text) is not None:
        return True
    return "javascript:" in _URL_NOISE.sub("", text).lower()


def verdict(
    declared: str, head: bytes, *, forbidden: frozenset[str] = DEFAULT_FORBIDDEN, allow_executables: bool = False
) -> Verdict:
    """Whether bytes starting with ``head`` may be accepted as ``declared`` (a canonical media type)."""
    found = sniff(head)
    refused = set(forbidden)
    if allow_executables:
        refused.discard(EXECUTABLE)
    if found in refused:
        return Verdict(False, found, f"the file is {_NAMES[found]}, which is not accepted")
    if found == "image/svg+xml" and svg_is_active(head):
        return Verdict(False, found, "the file is an SVG image with scripts or links, which is not accepted")
    if declared == "application/octet-stream":
        return Verdict(True, found)
    if declared in _TEXT:
        ok = found == "text/plain"
    elif declared in _ZIP_BASED:
        ok = found == "application/zip"
    elif declared == "image/svg+xml":
        ok = found == "image/svg+xml"
    else:
        ok = found == declared
    if ok:
        return Verdict(True, found)
    want = _NAMES.get(declared, declared)
    got = "of no type we recognise" if found is None else _NAMES.get(found, found)
    return Verdict(False, found, f"declared {declared}, but the bytes are not {want}: they are {got}")


def _is_text(data: bytes) -> bool:
    if _CONTROL.search(data):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The head may end inside a multi-byte character.
        return exc.start >= len(data) - 3 and exc.reason == "unexpected end of data"
    return True
