"""Type sniffing by magic numbers and the verdict on a declared type: each signature, the text,
HTML and SVG rules, active SVG refused, and properties over arbitrary bytes."""

from __future__ import annotations

import io

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from updown.processing.sniff import DEFAULT_FORBIDDEN, EXECUTABLE, Verdict, sniff, svg_is_active, verdict

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KNOWN = {
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/heic",
    "image/tiff",
    "image/bmp",
    "application/pdf",
    "application/zip",
    "video/mp4",
    "video/quicktime",
    "audio/mpeg",
    "text/plain",
    "text/html",
    "image/svg+xml",
    EXECUTABLE,
}
DECLARABLE = [
    *sorted(KNOWN),
    "application/octet-stream",
    "text/csv",
    "application/json",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/x-unknown",
]


def ftyp(brand: bytes) -> bytes:
    return b"\x00\x00\x00\x1cftyp" + brand + b"\x00\x00\x00\x00mif1"


# --------------------------------------------------------------------------- signatures


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
        (b"\xff\xd8\xff\xe1\x00\x10Exif\x00", "image/jpeg"),
        (PNG_SIGNATURE + b"\x00\x00\x00\rIHDR", "image/png"),
        (b"GIF87a\x01\x00\x01\x00", "image/gif"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (ftyp(b"avif"), "image/avif"),
        (ftyp(b"avis"), "image/avif"),
        *[(ftyp(brand), "image/heic") for brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1")],
        (ftyp(b"qt  "), "video/quicktime"),
        (ftyp(b"isom"), "video/mp4"),
        (ftyp(b"mp42"), "video/mp4"),
        (b"II*\x00\x08\x00\x00\x00", "image/tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "image/tiff"),
        (b"BM" + b"\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00\x00\x00" + b"\x28\x00\x00\x00", "image/bmp"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
        (b"PK\x03\x04\x14\x00\x00\x00", "application/zip"),
        (b"PK\x05\x06" + b"\x00" * 18, "application/zip"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
        (b"\xff\xfb\x90\x64\x00", "audio/mpeg"),
        (b"\xff\xf3\x40\xc4", "audio/mpeg"),
        (b"\x7fELF\x02\x01\x01\x00", EXECUTABLE),
        (b"MZ\x90\x00\x03\x00\x00\x00", EXECUTABLE),
        (b"#!/bin/sh\necho hi\n", EXECUTABLE),
        *[
            (magic + b"\x00\x00\x00\x07", EXECUTABLE)
            for magic in (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
        ],
        (b"\xca\xfe\xba\xbe\x00\x00\x00\x02", EXECUTABLE),
    ],
)
def test_sniff_recognises_signature(head: bytes, expected: str) -> None:
    assert sniff(head) == expected


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("TIFF", "image/tiff"),
        ("BMP", "image/bmp"),
        ("PDF", "application/pdf"),
    ],
)
def test_sniff_recognises_files_pillow_writes(fmt: str, expected: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, format=fmt)
    assert sniff(buf.getvalue()[:4096]) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8", None),  # too short for JPEG, and not UTF-8
        (b"\x89PNG\r\n", None),  # a cut signature is not PNG (and 0x89 is not UTF-8)
        (b"GIF88a", "text/plain"),
        (b"RIFF\x00\x00\x00\x00WAVE", None),
        (b"BM\x00", None),  # too short for a BMP info header
        (b"BM", "text/plain"),
        (b"II*", "text/plain"),
        (b"PK\x07\x08", None),
        (b"%PDF", "text/plain"),
    ],
)
def test_sniff_near_misses_are_not_the_format(head: bytes, expected: str | None) -> None:
    assert sniff(head) == expected


# --------------------------------------------------------------------------- text, HTML, SVG


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"plain ASCII text\n",
        b"tabs\tand\r\nline ends and a form feed\x0c",
        "caf\u00e9 \u65e5\u672c\u8a9e \U0001f600\n".encode(),
        "cut inside a character: \u65e5".encode()[:-1],  # the head may end mid-character
        "cut inside a character: \U0001f600".encode()[:-3],
        b"\xef\xbb\xbfwith a BOM",
        b'{"json": [1, 2, 3]}',
        b"a,b,c\n1,2,3\n",
        b"hello <html> later in the text",
    ],
)
def test_sniff_text(head: bytes) -> None:
    assert sniff(head) == "text/plain"


@pytest.mark.parametrize(
    "head",
    [
        b"nul \x00 byte",
        b"bell \x07",
        b"vertical tab \x0b",
        b"escape \x1b[31m",
        b"delete \x7f",
        b"bad utf-8 \xc3\x28 in the middle",
        b"\xc3\x28",
        b"lone continuation \x80 byte here",
        b"\xfe\xff\x00h\x00i",  # UTF-16 is not taken for text
    ],
)
def test_sniff_binary_is_unknown(head: bytes) -> None:
    assert sniff(head) is None


@pytest.mark.parametrize(
    "head",
    [
        b"<!DOCTYPE html><html><body>hi</body></html>",
        b"<!doctype HTML>",
        b"<html lang=en>",
        b"<HTML>",
        b"  \r\n\t<html>",
        b"<!-- a comment --><html>",
        b"<!-- one -->\n<!-- two -->\n<!DOCTYPE html>",
        b"\xef\xbb\xbf<!DOCTYPE html>",
        b"<head><title>x</title></head>",
        b"<body onload=alert(1)>",
        b"<script>alert(1)</script>",
        b"<iframe src=https://example.com>",
        b"<meta http-equiv=refresh content=0;url=https://example.com>",
        b"<title>hi</title>",
        b"<ScRiPt>",
    ],
)
def test_sniff_html(head: bytes) -> None:
    assert sniff(head) == "text/html"


@pytest.mark.parametrize(
    "head",
    [b"<htmlx>", b"<headline>", b"<scripts>", b"<bodyguard>", b"<p>hi</p>", b"<div onclick=x>", b"say <html>"],
)
def test_sniff_not_html_when_no_html_start_tag_leads(head: bytes) -> None:
    assert sniff(head) == "text/plain"


@pytest.mark.parametrize(
    "head",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>',
        b'<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd"><svg>',
        b"<!-- made by hand -->\n<svg>",
        b"\xef\xbb\xbf<SVG>",
        b"   <svg\n  viewBox='0 0 1 1'>",
    ],
)
def test_sniff_svg(head: bytes) -> None:
    assert sniff(head) == "image/svg+xml"


def test_sniff_svg_needs_svg_root() -> None:
    assert sniff(b"<svgx>") == "text/plain"
    assert sniff(b'<?xml version="1.0"?><root/>') == "text/plain"


@pytest.mark.parametrize(
    "svg",
    [
        b"<svg><script>alert(1)</script></svg>",
        b"<svg><SCRIPT>alert(1)</SCRIPT></svg>",
        b'<svg onload="alert(1)"/>',
        b"<svg><rect onmouseover = 'x()'/></svg>",
        b'<svg><a href="javascript:alert(1)"><text>x</text></a></svg>',
        b"<svg><foreignObject><div>html</div></foreignObject></svg>",
        b'<svg><image href="https://tracker.example/p.png"/></svg>',
        b'<svg><image xlink:href="http://tracker.example/p.png"/></svg>',
        b"<svg><use href=https://example.com/sprite.svg#a /></svg>",
        b'<svg><a href="data:text/html,<script>alert(1)</script>"/></svg>',
    ],
)
def test_svg_is_active(svg: bytes) -> None:
    assert svg_is_active(svg) is True


@pytest.mark.parametrize(
    "svg",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="5" height="5"/></svg>',
        b'<svg><use href="#shape"/><defs><circle id="shape" r="2"/></defs></svg>',
        b'<svg><image href="data:image/png;base64,iVBORw0KGgo="/></svg>',
        b"<svg><text>one plus one</text></svg>",  # "one" is not an on...= handler
        b'<svg><g id="onion"/></svg>',
    ],
)
def test_svg_is_not_active(svg: bytes) -> None:
    assert svg_is_active(svg) is False


def test_svg_is_active_sees_through_character_references() -> None:
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        b'<a xlink:href="&#106;avascript:alert(document.domain)"><text y="20">click</text></a></svg>'
    )
    assert sniff(svg) == "image/svg+xml"
    assert svg_is_active(svg) is True


# --------------------------------------------------------------------------- verdict


def test_verdict_accepts_matching_declared_type() -> None:
    assert verdict("image/png", PNG_SIGNATURE + b"rest") == Verdict(True, "image/png")
    assert verdict("application/pdf", b"%PDF-1.4") == Verdict(True, "application/pdf")


def test_verdict_mismatch_reason_names_both_types() -> None:
    found = verdict("image/png", b"\xff\xd8\xff\xe0")
    assert found == Verdict(
        False, "image/jpeg", "declared image/png, but the bytes are not a PNG image: they are a JPEG image"
    )


def test_verdict_unknown_bytes_reason() -> None:
    assert verdict("image/gif", b"\x00\x01\x02\x03") == Verdict(
        False, None, "declared image/gif, but the bytes are not a GIF image: they are of no type we recognise"
    )


def test_verdict_unnamed_declared_type_is_spelled_out() -> None:
    got = verdict("application/x-thing", b"plain text")
    assert got.ok is False
    assert got.reason == "declared application/x-thing, but the bytes are not application/x-thing: they are text"


@pytest.mark.parametrize("declared", ["text/plain", "text/csv", "application/json"])
def test_verdict_text_types_need_text(declared: str) -> None:
    assert verdict(declared, b'{"a": 1}\n') == Verdict(True, "text/plain")
    refused = verdict(declared, b"\x00\x01binary")
    assert refused.ok is False
    assert refused.sniffed is None


@pytest.mark.parametrize(
    "declared",
    [
        "application/zip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ],
)
def test_verdict_zip_based_office_formats(declared: str) -> None:
    assert verdict(declared, b"PK\x03\x04\x14\x00") == Verdict(True, "application/zip")
    assert verdict(declared, b"%PDF-1.4").ok is False


def test_verdict_octet_stream_accepts_anything_not_forbidden() -> None:
    assert verdict("application/octet-stream", b"\x00\x01\x02") == Verdict(True, None)
    assert verdict("application/octet-stream", b"GIF89a") == Verdict(True, "image/gif")
    assert verdict("application/octet-stream", b"<html>").ok is False
    assert verdict("application/octet-stream", b"\x7fELF").ok is False


@pytest.mark.parametrize("declared", ["text/html", "text/plain", "application/octet-stream", "image/png"])
def test_verdict_refuses_html_whatever_was_declared(declared: str) -> None:
    assert verdict(declared, b"<!DOCTYPE html><p>hi") == Verdict(
        False, "text/html", "the file is an HTML page, which is not accepted"
    )


def test_verdict_executables_refused_unless_allowed() -> None:
    elf = b"\x7fELF\x02\x01\x01"
    assert verdict("application/octet-stream", elf) == Verdict(
        False, EXECUTABLE, "the file is an executable program, which is not accepted"
    )
    assert verdict("application/octet-stream", elf, allow_executables=True) == Verdict(True, EXECUTABLE)
    assert verdict(EXECUTABLE, elf, allow_executables=True) == Verdict(True, EXECUTABLE)
    # Allowing executables does not allow HTML.
    assert verdict("application/octet-stream", b"<html>", allow_executables=True).ok is False


def test_verdict_custom_forbidden_set() -> None:
    assert {"text/html", EXECUTABLE} == DEFAULT_FORBIDDEN
    forbidden = frozenset({"application/pdf"})
    assert verdict("application/pdf", b"%PDF-1.7", forbidden=forbidden) == Verdict(
        False, "application/pdf", "the file is a PDF document, which is not accepted"
    )
    assert verdict("application/octet-stream", b"<html>", forbidden=forbidden) == Verdict(True, "text/html")


@pytest.mark.parametrize("declared", ["image/svg+xml", "application/octet-stream", "text/plain"])
def test_verdict_refuses_active_svg(declared: str) -> None:
    assert verdict(declared, b"<svg><script>alert(1)</script></svg>") == Verdict(
        False, "image/svg+xml", "the file is an SVG image with scripts or links, which is not accepted"
    )


def test_verdict_inert_svg() -> None:
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><circle r="3"/></svg>'
    assert verdict("image/svg+xml", svg) == Verdict(True, "image/svg+xml")
    # An SVG is not text/plain, and text is not an SVG.
    assert verdict("text/plain", svg).ok is False
    assert verdict("image/svg+xml", b"just words").ok is False


@pytest.mark.parametrize("head", [b"BMW,320i,2019,blue\n", b"BMI calculator notes\n"])
def test_sniff_text_starting_with_bm_is_text(head: bytes) -> None:
    assert sniff(head) == "text/plain"
    assert verdict("text/csv", head).ok is True


# --------------------------------------------------------------------------- properties

heads = st.one_of(
    st.binary(max_size=64),
    st.binary(max_size=48).map(lambda rest: PNG_SIGNATURE + rest),
    st.tuples(st.integers(0, 7), st.binary(max_size=32)).map(lambda t: PNG_SIGNATURE[: t[0]] + t[1]),
    st.text(max_size=64).map(str.encode),
)


@given(heads)
@example(b"")
@example(PNG_SIGNATURE)
@example(PNG_SIGNATURE[:-1])
def test_sniff_never_raises_and_answers_a_known_type(head: bytes) -> None:
    assert sniff(head) in KNOWN | {None}


@given(heads)
@example(PNG_SIGNATURE[:-1] + b"\x0b")
def test_png_verdict_only_for_png_signature(head: bytes) -> None:
    is_png = head.startswith(PNG_SIGNATURE)
    assert (sniff(head) == "image/png") is is_png
    got = verdict("image/png", head)
    assert got.ok is is_png
    assert (got.reason is None) is is_png


@given(st.sampled_from(DECLARABLE), heads, st.booleans())
def test_verdict_never_raises_and_explains_every_refusal(declared: str, head: bytes, allow: bool) -> None:
    got = verdict(declared, head, allow_executables=allow)
    assert got.sniffed == sniff(head)
    refused = {"text/html"} if allow else {"text/html", EXECUTABLE}
    if got.ok:
        assert got.reason is None
        assert got.sniffed not in refused
        assert not (got.sniffed == "image/svg+xml" and svg_is_active(head))
    else:
        assert got.reason
        assert got.reason.startswith(("the file is ", f"declared {declared}, but the bytes are not "))


@given(st.binary(max_size=32))
@example(tail=b"ftyp")  # an ISO-BMFF box name at offset 4 does not outrank a signature at 0
def test_sniff_depends_only_on_the_head_for_magic_numbers(tail: bytes) -> None:
    # Binary signatures are decided by their leading bytes, whatever follows.
    for magic, expected in [
        (b"\xff\xd8\xff", "image/jpeg"),
        (PNG_SIGNATURE, "image/png"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x7fELF", EXECUTABLE),
    ]:
        assert sniff(magic + tail) == expected
