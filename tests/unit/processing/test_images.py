"""Image checks with Pillow: header-only size limits (bombs refused for what they claim), full
decoding (truncation refused), GPS stripped from EXIF without re-encoding, and upright WebP
thumbnails without metadata. Every image is made in memory, a few KiB at most."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from updown.processing.images import (
    GPS_IFD,
    ImageInfo,
    ImageLimits,
    ImageRejected,
    Thumb,
    inspect,
    strip_gps,
    verify_decodes,
)
from updown.processing.images import thumbnail as make_thumbnail

LIMITS = ImageLimits()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GPS = {
    ExifTags.GPS.GPSLatitudeRef: "N",
    ExifTags.GPS.GPSLatitude: (52.0, 31.0, 12.0),
    ExifTags.GPS.GPSLongitudeRef: "E",
    ExifTags.GPS.GPSLongitude: (13.0, 24.0, 36.0),
}
TAKEN = "2024:05:06 07:08:09"
RED, BLUE = (220, 20, 20), (20, 20, 220)


# --------------------------------------------------------------------------- builders


def noise(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    """Deterministic noise: every pixel differs, so decode comparisons mean something."""
    bands = len(Image.new(mode, (1, 1)).getbands())
    data = hashlib.shake_256(f"{seed}:{size}:{mode}".encode()).digest(size[0] * size[1] * bands)
    return Image.frombytes(mode, size, data)


def halves(size: tuple[int, int]) -> Image.Image:
    """Left half red, right half blue: shows which way an image was turned."""
    im = Image.new("RGB", size, BLUE)
    im.paste(RED, (0, 0, size[0] // 2, size[1]))
    return im


def camera_exif(*, gps: bool = True, orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Acme"
    exif[ExifTags.Base.Model] = "Pinhole 1"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.IFD.Exif] = {ExifTags.Base.DateTimeOriginal: TAKEN}
    if gps:
        exif[ExifTags.IFD.GPSInfo] = dict(GPS)
    return exif


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **params)
    return buf.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def handmade_png(width: int, height: int, idat: bytes, *, depth: int = 8, color_type: int = 0) -> bytes:
    """A PNG from its chunks: the IHDR says what we like, the IDAT holds what we give."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data.startswith(PNG_SIGNATURE)
    out, pos = [], len(PNG_SIGNATURE)
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        out.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def jpeg_split(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The header segments (marker, whole segment) and everything from the start of scan on."""
    assert data[:2] == b"\xff\xd8"
    segments, pos = [], 2
    while data[pos + 1] != 0xDA:
        assert data[pos] == 0xFF
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        segments.append((data[pos + 1], data[pos : pos + 2 + length]))
        pos += 2 + length
    return segments, data[pos:]


def webp_chunks(data: bytes) -> list[bytes]:
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WEBP"
    kinds, pos = [], 12
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        kinds.append(kind)
        pos += 8 + size + (size & 1)
    return kinds


def pixels(path: Path) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(path) as im:
        im.load()
        return im.mode, im.size, im.tobytes()


def exif_of(path: Path) -> tuple[dict[int, object], dict[int, object], dict[int, object]]:
    """(IFD0, Exif IFD, GPS IFD) as Pillow reads them back from the file."""
    with Image.open(path) as im:
        exif = im.getexif()
        return dict(exif), exif.get_ifd(ExifTags.IFD.Exif), exif.get_ifd(ExifTags.IFD.GPSInfo)


def rejected(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(ImageRejected) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    assert caught.value.reason == str(caught.value)
    assert caught.value.reason.strip()
    return caught.value.reason


# --------------------------------------------------------------------------- inspect


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("TIFF", "image/tiff"),
        ("BMP", "image/bmp"),
    ],
)
def test_inspect_reports_size_and_mime_type(tmp_path: Path, fmt: str, mime: str) -> None:
    path = write(tmp_path, "img", encode(noise((37, 23)), fmt))
    assert inspect(path, limits=LIMITS) == ImageInfo(37, 23, mime)


def test_inspect_refuses_declared_decompression_bomb_from_header_alone(tmp_path: Path) -> None:
    # The IDAT is not even valid zlib: refusing for the size proves nothing was decoded.
    path = write(tmp_path, "bomb.png", handmade_png(20_000, 20_000, b"not a zlib stream"))
    reason = rejected(inspect, path, limits=LIMITS)
    assert reason == "the image is 20000×20000 = 400,000,000 pixels, more than the 50,000,000 allowed"
    # verify_decodes and thumbnail judge the header first too.
    assert rejected(verify_decodes, path, limits=LIMITS) == reason
    assert rejected(make_thumbnail, path, tmp_path / "t.webp", longest=256, limits=LIMITS) == reason
    assert not (tmp_path / "t.webp").exists()


def test_inspect_refuses_real_zlib_bomb_that_would_inflate_to_400_megapixels(tmp_path: Path) -> None:
    # 20000 rows of 1-bit zeros: ~50 KB on disk, 400 million pixels once decoded.
    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + 20_000 // 8)
    idat = b"".join(packer.compress(row) for _ in range(20_000)) + packer.flush()
    path = write(tmp_path, "bomb.png", handmade_png(20_000, 20_000, idat, depth=1))
    assert path.stat().st_size < 200_000
    assert "400,000,000 pixels" in rejected(verify_decodes, path, limits=LIMITS)
    # Under a limit that allows it, the header alone is read fine: the refusal above was the limit.
    assert inspect(path, limits=ImageLimits(max_pixels=400_000_000)) == ImageInfo(20_000, 20_000, "image/png")


def test_inspect_pixel_limit_boundary(tmp_path: Path) -> None:
    limits = ImageLimits(max_pixels=100)
    exactly = write(tmp_path, "10x10.png", encode(noise((10, 10)), "PNG"))
    over = write(tmp_path, "11x10.png", encode(noise((11, 10)), "PNG"))
    assert inspect(exactly, limits=limits) == ImageInfo(10, 10, "image/png")
    assert rejected(inspect, over, limits=limits) == "the image is 11×10 = 110 pixels, more than the 100 allowed"


def test_inspect_refuses_a_side_over_max_side(tmp_path: Path) -> None:
    path = write(tmp_path, "wide.png", handmade_png(70_000, 1, b"x"))
    assert rejected(inspect, path, limits=LIMITS) == "the image is 70000×1; no side may be over 65535 pixels"
    narrow = write(tmp_path, "narrow.png", encode(noise((40, 8)), "PNG"))
    assert rejected(inspect, narrow, limits=ImageLimits(max_side=39)) == (
        "the image is 40×8; no side may be over 39 pixels"
    )
    assert inspect(narrow, limits=ImageLimits(max_side=40)).width == 40


def test_inspect_refuses_png_with_zero_width(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.png", handmade_png(0, 10, b"x"))
    reason = rejected(inspect, path, limits=LIMITS)
    assert reason.startswith(("the image cannot be read", "the image has no pixels"))


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, world\n", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0" + b"\x00" * 8, b"GIF89a"],
    ids=["empty", "text", "png-signature-only", "jpeg-start-only", "gif-signature-only"],
)
def test_inspect_refuses_unreadable_bytes(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, "junk", data)
    assert rejected(inspect, path, limits=LIMITS).startswith("the image cannot be read (")


@pytest.mark.parametrize(("fmt", "name"), [("PPM", "PPM"), ("ICO", "ICO"), ("PCX", "PCX")])
def test_inspect_refuses_formats_pillow_reads_but_we_do_not_accept(tmp_path: Path, fmt: str, name: str) -> None:
    path = write(tmp_path, "img", encode(noise((16, 16)), fmt))
    assert rejected(inspect, path, limits=LIMITS) == f"{name} images are not accepted"


def test_inspect_accepts_multi_picture_jpeg(tmp_path: Path) -> None:
    data = encode(halves((40, 30)), "MPO", save_all=True, append_images=[noise((40, 30))])
    assert data.startswith(b"\xff\xd8\xff")  # a JPEG file: sniff calls it image/jpeg
    path = write(tmp_path, "phone.jpg", data)
    assert inspect(path, limits=LIMITS) == ImageInfo(40, 30, "image/jpeg")


# --------------------------------------------------------------------------- verify_decodes


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"])
def test_verify_decodes_accepts_whole_images(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, "img", encode(noise((48, 32)), fmt))
    assert verify_decodes(path, limits=LIMITS) == inspect(path, limits=LIMITS)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "TIFF"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_verify_decodes_refuses_truncated_image_whose_header_reads_fine(tmp_path: Path, fmt: str, keep: float) -> None:
    whole = encode(noise((64, 64)), fmt)
    path = write(tmp_path, "cut", whole[: int(len(whole) * keep)])
    assert inspect(path, limits=LIMITS).width == 64  # the header is intact
    reason = rejected(verify_decodes, path, limits=LIMITS)
    assert reason.startswith("the image is damaged or truncated (")


def test_verify_decodes_refuses_jpeg_cut_just_before_its_end_marker(tmp_path: Path) -> None:
    whole = encode(noise((64, 64)), "JPEG")
    path = write(tmp_path, "cut.jpg", whole[:-2])
    assert rejected(verify_decodes, path, limits=LIMITS).startswith("the image is damaged or truncated")


def test_verify_decodes_refuses_png_with_corrupt_compressed_data(tmp_path: Path) -> None:
    whole = encode(noise((32, 32)), "PNG")
    chunks = png_chunks(whole)
    idat = next(body for kind, body in chunks if kind == b"IDAT")
    broken = bytes(b ^ 0x55 for b in idat)  # a valid CRC over garbage: only decoding can tell
    data = PNG_SIGNATURE + b"".join(png_chunk(k, broken if k == b"IDAT" else b) for k, b in chunks)
    path = write(tmp_path, "corrupt.png", data)
    assert inspect(path, limits=LIMITS) == ImageInfo(32, 32, "image/png")
    assert rejected(verify_decodes, path, limits=LIMITS).startswith("the image is damaged or truncated")


def animation(frames: int, size: tuple[int, int] = (20, 20)) -> bytes:
    images = [Image.new("RGB", size, (40 * i % 256, 255 - 30 * i % 256, 7 * i % 256)) for i in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=50)


def test_verify_decodes_frame_budget_boundary(tmp_path: Path) -> None:
    # 20×20 = 400 pixels a frame; the budget is 1000 × 2 = 2000 pixels in all.
    limits = ImageLimits(max_pixels=1000, max_frame_pixels_factor=2)
    five = write(tmp_path, "five.gif", animation(5))
    six = write(tmp_path, "six.gif", animation(6))
    with Image.open(six) as im:
        assert im.n_frames == 6
    assert verify_decodes(five, limits=limits) == ImageInfo(20, 20, "image/gif")
    assert rejected(verify_decodes, six, limits=limits) == (
        "the animation has 6 frames, more than 2,000 pixels to decode in all"
    )
    # The same animation within the default budget is fine.
    assert verify_decodes(six, limits=LIMITS).format == "image/gif"


def test_verify_decodes_applies_pixel_limit_before_decoding(tmp_path: Path) -> None:
    path = write(tmp_path, "img.jpg", encode(noise((30, 30)), "JPEG"))
    assert rejected(verify_decodes, path, limits=ImageLimits(max_pixels=899)).startswith("the image is 30×30 = 900")


# --------------------------------------------------------------------------- strip_gps


def test_strip_gps_jpeg_removes_gps_only_and_keeps_compressed_pixels(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    src = write(
        tmp_path,
        "in.jpg",
        encode(noise((64, 48)), "JPEG", exif=camera_exif(orientation=3), icc_profile=icc, xmp=xmp, quality=85),
    )
    before_ifd0, _, before_gps = exif_of(src)
    assert GPS_IFD in before_ifd0
    assert before_gps
    dst = tmp_path / "out.jpg"

    assert strip_gps(src, dst) is True

    ifd0, exif_ifd, gps = exif_of(dst)
    assert GPS_IFD not in ifd0
    assert gps == {}
    assert ifd0[ExifTags.Base.Make] == "Acme"
    assert ifd0[ExifTags.Base.Model] == "Pinhole 1"
    assert ifd0[ExifTags.Base.Orientation] == 3
    assert exif_ifd[ExifTags.Base.DateTimeOriginal] == TAKEN
    # Not re-encoded: the scan is byte for byte the same, and so are the other segments.
    src_segments, src_scan = jpeg_split(src.read_bytes())
    dst_segments, dst_scan = jpeg_split(dst.read_bytes())
    assert dst_scan == src_scan
    assert [s for s in src_segments if s[1][4:10] != b"Exif\x00\x00"] == [
        s for s in dst_segments if s[1][4:10] != b"Exif\x00\x00"
    ]
    assert [m for m, _ in dst_segments] == [m for m, _ in src_segments]  # the Exif segment stays in place
    assert pixels(dst) == pixels(src)
    with Image.open(dst) as im:
        assert im.info["icc_profile"] == icc
        assert im.info["xmp"] == xmp


def test_strip_gps_jpeg_without_gps_is_left_alone(tmp_path: Path) -> None:
    src = write(tmp_path, "in.jpg", encode(noise((16, 16)), "JPEG", exif=camera_exif(gps=False)))
    dst = tmp_path / "out.jpg"
    assert strip_gps(src, dst) is False
    assert not dst.exists()


def test_strip_gps_without_any_exif_is_left_alone(tmp_path: Path) -> None:
    for fmt in ("JPEG", "PNG", "GIF"):
        src = write(tmp_path, f"in.{fmt}", encode(noise((8, 8)), fmt))
        dst = tmp_path / f"out.{fmt}"
        assert strip_gps(src, dst) is False
        assert not dst.exists()


def test_strip_gps_png_exif_chunk_removes_gps_only_and_keeps_other_chunks(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "kept")
    src = write(
        tmp_path, "in.png", encode(noise((40, 30), "RGBA"), "PNG", exif=camera_exif(orientation=6), pnginfo=info)
    )
    assert any(kind == b"eXIf" for kind, _ in png_chunks(src.read_bytes()))
    dst = tmp_path / "out.png"

    assert strip_gps(src, dst) is True

    ifd0, exif_ifd, gps = exif_of(dst)
    assert GPS_IFD not in ifd0
    assert gps == {}
    assert (ifd0[ExifTags.Base.Make], ifd0[ExifTags.Base.Model], ifd0[ExifTags.Base.Orientation]) == (
        "Acme",
        "Pinhole 1",
        6,
    )
    assert exif_ifd[ExifTags.Base.DateTimeOriginal] == TAKEN
    src_chunks, dst_chunks = png_chunks(src.read_bytes()), png_chunks(dst.read_bytes())
    assert [k for k, _ in dst_chunks] == [k for k, _ in src_chunks]
    assert [c for c in dst_chunks if c[0] != b"eXIf"] == [c for c in src_chunks if c[0] != b"eXIf"]
    assert pixels(dst) == pixels(src)
    # The rebuilt chunk has a good CRC: Pillow checks it while loading.
    with Image.open(dst) as im:
        im.load()
        assert im.text["Comment"] == "kept"


def raw_profile_png(exif: Image.Exif) -> bytes:
    """EXIF the ImageMagick/exiftool way: hex in a "Raw profile type exif" text chunk (Pillow reads it)."""
    raw = exif.tobytes()
    hexed = raw.hex()
    text = "\nexif\n" + f"{len(raw):8d}\n" + "\n".join(hexed[i : i + 72] for i in range(0, len(hexed), 72)) + "\n"
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", text, zip=True)
    return encode(noise((20, 20)), "PNG", pnginfo=info)


def test_strip_gps_png_raw_profile_exif_loses_gps(tmp_path: Path) -> None:
    src = write(tmp_path, "in.png", raw_profile_png(camera_exif()))
    assert exif_of(src)[2] == GPS  # Pillow (and so strip_gps) sees the GPS block
    dst = tmp_path / "out.png"
    assert strip_gps(src, dst) is True
    assert exif_of(dst)[2] == {}


def test_strip_gps_webp_is_reencoded_without_gps(tmp_path: Path) -> None:
    src = write(tmp_path, "in.webp", encode(halves((30, 20)), "WEBP", exif=camera_exif(), lossless=True))
    assert exif_of(src)[2] == GPS
    dst = tmp_path / "out.webp"
    assert strip_gps(src, dst) is True
    ifd0, _, gps = exif_of(dst)
    assert gps == {}
    assert GPS_IFD not in ifd0
    assert ifd0[ExifTags.Base.Make] == "Acme"
    with Image.open(dst) as im:
        assert (im.format, im.size) == ("WEBP", (30, 20))
        rgb = im.convert("RGB")
        assert rgb.getpixel((2, 10))[0] > 150
        assert rgb.getpixel((27, 10))[2] > 150


def test_strip_gps_tiff_removes_gps(tmp_path: Path) -> None:
    src = write(tmp_path, "in.tif", encode(noise((12, 10)), "TIFF", exif=camera_exif().tobytes()))
    assert exif_of(src)[2] == GPS
    dst = tmp_path / "out.tif"
    assert strip_gps(src, dst) is True
    ifd0, _, gps = exif_of(dst)
    assert gps == {}
    assert ifd0[ExifTags.Base.Model] == "Pinhole 1"
    assert pixels(dst) == pixels(src)


def test_strip_gps_unreadable_file_is_rejected(tmp_path: Path) -> None:
    src = write(tmp_path, "in.jpg", b"not an image at all")
    assert rejected(strip_gps, src, tmp_path / "out.jpg").startswith("the image cannot be read")


# --------------------------------------------------------------------------- thumbnail


def read_thumb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        im.load()
        assert im.format == "WEBP"
        return im.copy()


@pytest.mark.parametrize(
    ("size", "expected"),
    [((400, 200), (256, 128)), ((200, 400), (128, 256)), ((300, 300), (256, 256)), ((1000, 10), (256, 3))],
)
def test_thumbnail_longest_side_is_256(tmp_path: Path, size: tuple[int, int], expected: tuple[int, int]) -> None:
    src = write(tmp_path, "in.png", encode(noise(size), "PNG"))
    dst = tmp_path / "t.webp"
    thumb = make_thumbnail(src, dst, longest=256, limits=LIMITS)
    assert (thumb.width, thumb.height) == expected
    assert thumb.size == dst.stat().st_size > 0
    assert read_thumb(dst).size == expected


def test_thumbnail_does_not_upscale_small_images(tmp_path: Path) -> None:
    src = write(tmp_path, "in.png", encode(noise((100, 50)), "PNG"))
    dst = tmp_path / "t.webp"
    assert make_thumbnail(src, dst, longest=256, limits=LIMITS) == Thumb(100, 50, dst.stat().st_size)
    assert read_thumb(dst).size == (100, 50)


def test_thumbnail_other_longest(tmp_path: Path) -> None:
    src = write(tmp_path, "in.jpg", encode(noise((400, 200)), "JPEG"))
    thumb = make_thumbnail(src, tmp_path / "t.webp", longest=64, limits=LIMITS)
    assert (thumb.width, thumb.height) == (64, 32)


@pytest.mark.parametrize(
    ("orientation", "size", "top", "bottom", "left", "right"),
    [
        # 6: turn 90° clockwise to display: the stored left edge ends up at the top.
        (6, (128, 256), RED, BLUE, None, None),
        # 8: turn 90° counter-clockwise: the stored left edge ends up at the bottom.
        (8, (128, 256), BLUE, RED, None, None),
        # 3: turn 180°: still landscape, left and right swapped.
        (3, (256, 128), None, None, BLUE, RED),
        (1, (256, 128), None, None, RED, BLUE),
    ],
)
def test_thumbnail_honours_exif_orientation(
    tmp_path: Path,
    orientation: int,
    size: tuple[int, int],
    top: tuple[int, int, int] | None,
    bottom: tuple[int, int, int] | None,
    left: tuple[int, int, int] | None,
    right: tuple[int, int, int] | None,
) -> None:
    src = write(tmp_path, "in.jpg", encode(halves((400, 200)), "JPEG", exif=camera_exif(orientation=orientation)))
    dst = tmp_path / "t.webp"
    thumb = make_thumbnail(src, dst, longest=256, limits=LIMITS)
    assert (thumb.width, thumb.height) == size
    im = read_thumb(dst).convert("RGB")
    assert im.size == size
    w, h = size

    def near(pixel: tuple[int, int], colour: tuple[int, int, int]) -> bool:
        got = im.getpixel(pixel)
        assert isinstance(got, tuple)
        return all(abs(a - b) < 40 for a, b in zip(got, colour, strict=True))

    if top is not None and bottom is not None:
        assert near((w // 2, 10), top)
        assert near((w // 2, h - 10), bottom)
    if left is not None and right is not None:
        assert near((10, h // 2), left)
        assert near((w - 10, h // 2), right)


def test_thumbnail_carries_no_metadata(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = write(
        tmp_path,
        "in.jpg",
        encode(noise((300, 200)), "JPEG", exif=camera_exif(orientation=6), icc_profile=icc, xmp=b"<x:xmpmeta/>"),
    )
    dst = tmp_path / "t.webp"
    make_thumbnail(src, dst, longest=256, limits=LIMITS)
    chunks = webp_chunks(dst.read_bytes())
    assert not {b"EXIF", b"XMP ", b"ICCP"} & set(chunks), chunks
    with Image.open(dst) as im:
        assert dict(im.getexif()) == {}
        assert not {"exif", "xmp", "icc_profile"} & set(im.info)


@pytest.mark.parametrize(
    ("image", "fmt", "mode"),
    [
        (noise((40, 30), "RGBA"), "PNG", "RGBA"),
        (noise((40, 30), "LA"), "PNG", "RGBA"),
        (noise((40, 30), "L"), "PNG", "RGB"),
        (noise((40, 30), "1"), "PNG", "RGB"),
        (Image.new("I;16", (40, 30), 40_000), "PNG", "RGB"),
        (noise((40, 30), "CMYK"), "JPEG", "RGB"),
        (noise((40, 30)).convert("P"), "GIF", "RGB"),
    ],
    ids=["rgba", "la", "grey", "bilevel", "grey16", "cmyk", "palette"],
)
def test_thumbnail_converts_modes_webp_cannot_hold(tmp_path: Path, image: Image.Image, fmt: str, mode: str) -> None:
    src = write(tmp_path, "in", encode(image, fmt))
    dst = tmp_path / "t.webp"
    assert make_thumbnail(src, dst, longest=256, limits=LIMITS) == Thumb(40, 30, dst.stat().st_size)
    assert read_thumb(dst).mode == mode


def test_thumbnail_keeps_palette_transparency_as_alpha(tmp_path: Path) -> None:
    im = Image.new("P", (20, 20), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste(1, (10, 0, 20, 20))
    src = write(tmp_path, "in.png", encode(im, "PNG", transparency=0))
    dst = tmp_path / "t.webp"
    make_thumbnail(src, dst, longest=256, limits=LIMITS)
    out = read_thumb(dst)
    assert out.mode == "RGBA"
    alpha_left = out.getpixel((2, 10))
    alpha_right = out.getpixel((17, 10))
    assert isinstance(alpha_left, tuple)
    assert isinstance(alpha_right, tuple)
    assert alpha_left[3] == 0
    assert alpha_right[3] == 255


def test_thumbnail_of_animation_is_its_first_frame(tmp_path: Path) -> None:
    src = write(tmp_path, "in.gif", animation(3, size=(50, 40)))
    dst = tmp_path / "t.webp"
    assert make_thumbnail(src, dst, longest=256, limits=LIMITS) == Thumb(50, 40, dst.stat().st_size)
    with Image.open(src) as gif:
        first = gif.convert("RGB").getpixel((25, 20))
    got = read_thumb(dst).convert("RGB").getpixel((25, 20))
    assert isinstance(first, tuple)
    assert isinstance(got, tuple)
    assert all(abs(a - b) < 12 for a, b in zip(got, first, strict=True))


def test_thumbnail_refuses_truncated_source(tmp_path: Path) -> None:
    whole = encode(noise((300, 300)), "PNG")
    src = write(tmp_path, "cut.png", whole[: len(whole) // 2])
    reason = rejected(make_thumbnail, src, tmp_path / "t.webp", longest=256, limits=LIMITS)
    assert reason.startswith("the image is damaged or truncated (")


def test_thumbnail_checks_limits(tmp_path: Path) -> None:
    src = write(tmp_path, "in.png", encode(noise((30, 30)), "PNG"))
    reason = rejected(make_thumbnail, src, tmp_path / "t.webp", longest=256, limits=ImageLimits(max_pixels=100))
    assert reason == "the image is 30×30 = 900 pixels, more than the 100 allowed"
