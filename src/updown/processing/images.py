"""Image work for the pipeline, with Pillow (measured faster here than pyvips: ``bench/bench_thumbnail.py``).

Everything is bounded before any pixel is decoded: ``inspect`` reads only the header and refuses an
image whose declared size is over the pixel limit (a decompression bomb is refused for what it
claims, not after it has been inflated). ``verify_decodes`` then decodes every frame; a JPEG is
decoded through libjpeg's scaled IDCT (every entropy-coded block is read, the pixels are produced
at 1/8 size), so a 50-megapixel photo is checked in a few MiB. ``strip_gps`` removes the GPS block
from EXIF without re-encoding a JPEG or PNG. ``thumbnail`` honours the EXIF orientation and writes
a WebP with no metadata at all.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from PIL import Image, ImageOps, UnidentifiedImageError

GPS_IFD: Final = 0x8825
# Pillow's own bomb guard would refuse at 2x its default; ours is the setting, checked first.
Image.MAX_IMAGE_PIXELS = None
_FORMATS: Final = {
    "JPEG": "image/jpeg",
    # A multi-picture JPEG (phone cameras: a depth map or a second lens after the main picture).
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
}
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_pixels: int = 50_000_000
    max_side: int = 65535
    # Animated images: all frames together may decode to this many times the pixel limit.
    max_frame_pixels_factor: int = 4


@dataclass(frozen=True, slots=True)
class ImageInfo:
    width: int
    height: int
    format: str  # a MIME type


@dataclass(frozen=True, slots=True)
class Thumb:
    width: int
    height: int
    size: int


class ImageRejected(Exception):
    """The image cannot be accepted; ``reason`` is for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _open(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Image.open(path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as bad:
        raise ImageRejected(f"the image cannot be read ({_short(bad)})") from None


def _short(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text[:120]


def _check_size(width: int, height: int, limits: ImageLimits) -> None:
    if width <= 0 or height <= 0:
        raise ImageRejected("the image has no pixels")
    if width > limits.max_side or height > limits.max_side:
        raise ImageRejected(f"the image is {width}×{height}; no side may be over {limits.max_side} pixels")
    pixels = width * height
    if pixels > limits.max_pixels:
        raise ImageRejected(
            f"the image is {width}×{height} = {pixels:,} pixels, more than the {limits.max_pixels:,} allowed"
        )


def inspect(path: Path, *, limits: ImageLimits) -> ImageInfo:
    """The image's size and format from its header alone; refuses it over the limits."""
    with _open(path) as im:
        fmt = _FORMATS.get(im.format or "")
        if fmt is None:
            raise ImageRejected(f"{im.format or 'this'} images are not accepted")
        _check_size(im.width, im.height, limits)
        return ImageInfo(im.width, im.height, fmt)


def verify_decodes(path: Path, *, limits: ImageLimits) -> ImageInfo:
    """Decodes every frame (bounded by the limits); refuses a truncated or corrupt image."""
    info = inspect(path, limits=limits)
    budget = limits.max_pixels * limits.max_frame_pixels_factor
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if info.format == "image/jpeg":
                    # Scaled IDCT: every block is entropy-decoded, the output is 1/8 size.
                    im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
                    im.load()
                    return info
                frames = getattr(im, "n_frames", 1)
                spent = 0
                for index in range(frames):
                    im.seek(index)
                    spent += im.width * im.height
                    if spent > budget:
                        raise ImageRejected(
                            f"the animation has {frames} frames, more than {budget:,} pixels to decode in all"
                        )
                    im.load()
    except ImageRejected:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as bad:
        raise ImageRejected(f"the image is damaged or truncated ({_short(bad)})") from None
    except Image.DecompressionBombWarning:
        raise ImageRejected("the image decodes to more pixels than allowed") from None
    return info


def strip_gps(src: Path, dst: Path) -> bool:
    """Writes ``src`` without EXIF GPS to ``dst`` and answers True, or answers False (nothing to strip).

    JPEG and PNG keep their compressed pixels byte for byte: only the EXIF block is rebuilt."""
    with _open(src) as im:
        fmt = im.format
        exif = im.getexif()
        if fmt == "MPO":
            # The pictures after the first carry EXIF of their own: only the first is kept, as a
            # plain JPEG, so no GPS hides in the others.
            if GPS_IFD in exif:
                del exif[GPS_IFD]
            dst.write_bytes(_jpeg_replace_exif(_first_picture(src.read_bytes()), exif.tobytes()))
            return True
        if GPS_IFD not in exif:
            return False
        del exif[GPS_IFD]
        cleaned = exif.tobytes()
        if fmt == "JPEG":
            dst.write_bytes(_jpeg_replace_exif(src.read_bytes(), cleaned))
            return True
        if fmt == "PNG":
            dst.write_bytes(_png_replace_exif(src.read_bytes(), cleaned))
            return True
        # The rare rest (WebP, TIFF with GPS): re-encoded at high quality with the cleaned EXIF.
        im.load()
        im.save(dst, format=fmt, exif=cleaned, quality=95)
        return True


def _jpeg_replace_exif(data: bytes, exif: bytes) -> bytes:
    """Replaces every APP1 Exif segment (``exif`` from Pillow starts ``Exif\\0\\0``)."""
    out = bytearray(data[:2])
    pos, replaced = 2, False
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xDA, 0xD9):  # start of scan: the rest is pixels
            break
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        segment = data[pos : pos + 2 + length]
        if marker == 0xE1 and segment[4:10] == b"Exif\x00\x00":
            if not replaced and len(exif) + 2 <= 0xFFFF:
                out += b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
            replaced = True
        else:
            out += segment
        pos += 2 + length
    out += data[pos:]
    return bytes(out)


def _first_picture(data: bytes) -> bytes:
    """The first picture of a multi-picture JPEG, without its MPF index (APP2 ``MPF``)."""
    out = bytearray(data[:2])
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:
            break
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        segment = data[pos : pos + 2 + length]
        if not (marker == 0xE2 and segment[4:8] == b"MPF\x00"):
            out += segment
        pos += 2 + length
    # In entropy-coded data 0xFF is always followed by 0x00 or a restart marker: the first FFD9
    # after the start of scan ends the first picture.
    end = data.find(b"\xff\xd9", pos)
    return bytes(out + (data[pos:] if end < 0 else data[pos : end + 2]))


# Text chunks in which ImageMagick and exiftool keep EXIF (Pillow reads them as the image's EXIF).
_RAW_EXIF_KEYWORDS: Final = (b"Raw profile type exif", b"Raw profile type APP1")


def _png_replace_exif(data: bytes, exif: bytes) -> bytes:
    """One ``eXIf`` chunk with ``exif`` (before the image data) instead of every EXIF chunk."""
    body = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
    crc = zlib.crc32(b"eXIf" + body) & 0xFFFFFFFF
    chunk = struct.pack(">I4s", len(body), b"eXIf") + body + struct.pack(">I", crc)
    out = bytearray(_PNG_SIGNATURE)
    pos = len(_PNG_SIGNATURE)
    written = False
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        raw_exif = kind in (b"tEXt", b"zTXt", b"iTXt") and data[pos + 8 : end - 4].split(b"\x00", 1)[0] in (
            _RAW_EXIF_KEYWORDS
        )
        if kind == b"eXIf" or raw_exif:
            pass  # dropped: the one cleaned chunk goes before the image data
        else:
            if kind == b"IDAT" and not written:
                out += chunk
                written = True
            out += data[pos:end]
        pos = end
    return bytes(out)


def thumbnail(src: Path, dst: Path, *, longest: int, limits: ImageLimits) -> Thumb:
    """A WebP whose longest side is at most ``longest``, upright by EXIF orientation, without metadata."""
    with _open(src) as im:
        _check_size(im.width, im.height, limits)
        if im.format in ("JPEG", "MPO"):
            im.draft("RGB", (longest, longest))
        return _thumbnail_of(im, dst, longest)


def verify_and_thumbnail(src: Path, dst: Path, *, longest: int, limits: ImageLimits) -> tuple[ImageInfo, Thumb]:
    """:func:`verify_decodes` and :func:`thumbnail` with one decode where the format allows it.

    A JPEG's scaled decode at the thumbnail's scale still entropy-decodes every block, so it is
    both the check and the thumbnail's source (the pipeline's cost was two such decodes)."""
    info = inspect(src, limits=limits)
    if info.format != "image/jpeg":
        verify_decodes(src, limits=limits)
        return info, thumbnail(src, dst, longest=longest, limits=limits)
    with _open(src) as im:
        im.draft("RGB", (longest, longest))
        try:
            im.load()
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as bad:
            raise ImageRejected(f"the image is damaged or truncated ({_short(bad)})") from None
        return info, _thumbnail_of(im, dst, longest)


def _thumbnail_of(im: Image.Image, dst: Path, longest: int) -> Thumb:
    try:
        im.seek(0)
        upright = ImageOps.exif_transpose(im)
        upright.thumbnail((longest, longest), Image.Resampling.LANCZOS, reducing_gap=2.0)
        if upright.mode not in ("RGB", "RGBA"):
            upright = upright.convert("RGBA" if "A" in upright.getbands() or "transparency" in im.info else "RGB")
        upright.save(dst, format="WEBP", quality=80, method=4)
    except (OSError, SyntaxError, ValueError, EOFError) as bad:
        raise ImageRejected(f"the image is damaged or truncated ({_short(bad)})") from None
    return Thumb(upright.width, upright.height, dst.stat().st_size)
