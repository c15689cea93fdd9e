"""aws-chunked bodies: AWS's published streaming example, round trips with chunk boundaries and
feed boundaries anywhere (hypothesis), and every refusal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from updown.core import awschunked
from updown.core.awschunked import ChunkedDecoder, ChunkSigner, encode
from updown.core.checksums import checksum
from updown.errors import IncompleteBody, InvalidChunkSizeError, MalformedTrailerError, SignatureDoesNotMatch

# The example of AWS's "Signature Calculations for the Authorization Header: Transferring Payload
# in Multiple Chunks": 65 KiB of "a" and 1 KiB of "a", the chunk signatures as published.
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
SIGNER = ChunkSigner.for_request(SECRET, "20130524T000000Z", "us-east-1", "s3", SEED)
PUBLISHED = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]


def _decode(body: bytes, decoder: ChunkedDecoder, sizes: list[int] | None = None) -> bytes:
    out = bytearray()
    at = 0
    for size in sizes or []:
        for piece in decoder.feed(body[at : at + size]):
            out += piece
        at += size
    for piece in decoder.feed(body[at:]):
        out += piece
    decoder.finish()
    return bytes(out)


def test_published_example_chunk_signatures() -> None:
    body = encode([b"a" * 65536, b"a" * 1024], signer=SIGNER)
    for signature in PUBLISHED:
        assert f"chunk-signature={signature}".encode() in body
    assert SIGNER.scope == "20130524/us-east-1/s3/aws4_request"
    decoder = ChunkedDecoder(signer=SIGNER, trailer=False, decoded_length=66560)
    assert _decode(body, decoder) == b"a" * 66560
    assert decoder.done
    assert decoder.total == 66560


@st.composite
def bodies(draw: st.DrawFn) -> tuple[list[bytes], list[int]]:
    chunks = draw(st.lists(st.binary(min_size=0, max_size=300), max_size=6))
    cuts = draw(st.lists(st.integers(min_value=0, max_value=40), max_size=30))
    return chunks, cuts


@given(bodies(), st.sampled_from(sorted(awschunked.MODES)), st.sampled_from(["crc32", "crc32c", "sha256"]))
def test_round_trip_with_chunk_and_feed_boundaries_anywhere(
    case: tuple[list[bytes], list[int]], mode: str, algorithm: str
) -> None:
    chunks, cuts = case
    data = b"".join(chunks)
    signer = None if mode == awschunked.STREAMING_UNSIGNED_TRAILER else SIGNER
    trailers = (
        None if mode == awschunked.STREAMING_SIGNED else {f"x-amz-checksum-{algorithm}": checksum(algorithm, data)}
    )
    body = encode(chunks, signer=signer, trailers=trailers)
    decoder = ChunkedDecoder.for_mode(mode, SIGNER, len(data))
    assert _decode(body, decoder, cuts) == data
    assert decoder.trailers == (trailers or {})


@given(bodies(), st.integers(min_value=0))
def test_any_flipped_byte_of_a_signed_body_is_refused_or_changes_nothing(
    case: tuple[list[bytes], list[int]], where: int
) -> None:
    chunks, cuts = case
    data = b"".join(chunks)
    trailers = {"x-amz-checksum-crc32": checksum("crc32", data)}
    body = bytearray(encode(chunks, signer=SIGNER, trailers=trailers))
    body[where % len(body)] ^= 0x01
    decoder = ChunkedDecoder(signer=SIGNER, trailer=True, decoded_length=len(data))
    try:
        decoded = _decode(bytes(body), decoder, cuts)
    except (SignatureDoesNotMatch, InvalidChunkSizeError, MalformedTrailerError, IncompleteBody):
        return
    # Only a change the signature does not cover passes: a line ending or whitespace around a
    # trailer value. The data and trailers are what was signed.
    assert decoded == data
    assert decoder.trailers == trailers


def test_signed_trailer_signature_checked() -> None:
    trailers = {"x-amz-checksum-crc32c": checksum("crc32c", b"abc")}
    body = encode([b"abc"], signer=SIGNER, trailers=trailers)
    assert b"x-amz-trailer-signature:" in body
    decoder = ChunkedDecoder(signer=SIGNER, trailer=True)
    assert _decode(body, decoder) == b"abc"
    assert decoder.trailers == trailers
    # The same trailer under another chain's signature.
    other = ChunkSigner(SIGNER.key, SIGNER.amz_date, SIGNER.scope, "0" * 64)
    forged = encode([b"abc"], signer=SIGNER, trailers=trailers).rsplit(b"x-amz-trailer-signature:", 1)[0]
    forged += f"x-amz-trailer-signature:{other.trailer(SEED, trailers.items())}\r\n\r\n".encode()
    with pytest.raises(SignatureDoesNotMatch, match="trailer"):
        _decode(forged, ChunkedDecoder(signer=SIGNER, trailer=True))
    without = body.rsplit(b"x-amz-trailer-signature:", 1)[0] + b"\r\n"
    with pytest.raises(MalformedTrailerError, match="x-amz-trailer-signature"):
        _decode(without, ChunkedDecoder(signer=SIGNER, trailer=True))


def test_chunk_signed_by_another_key_is_refused() -> None:
    body = encode([b"abc"], signer=ChunkSigner.for_request("other", "20130524T000000Z", "us-east-1", "s3", SEED))
    with pytest.raises(SignatureDoesNotMatch, match="chunk"):
        _decode(body, ChunkedDecoder(signer=SIGNER, trailer=False))


def test_unsigned_body_as_botocore_sends_it() -> None:
    body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:" + checksum("crc32", b"hello").encode() + b"\r\n\r\n"
    decoder = ChunkedDecoder.for_mode(awschunked.STREAMING_UNSIGNED_TRAILER, SIGNER, 5)
    assert _decode(body, decoder) == b"hello"
    assert decoder.trailers == {"x-amz-checksum-crc32": checksum("crc32", b"hello")}
    # Without any trailer, and with chunk extensions (ignored when unsigned).
    assert _decode(b"5;ext=1\r\nhello\r\n0\r\n\r\n", ChunkedDecoder(signer=None, trailer=True)) == b"hello"
    assert _decode(b"5\nhello\n0\n\n", ChunkedDecoder(signer=None, trailer=True)) == b"hello"


@pytest.mark.parametrize(
    ("body", "error", "match"),
    [
        (b"zz\r\n", InvalidChunkSizeError, "hexadecimal"),
        (b"12345678901234567\r\n", InvalidChunkSizeError, "hexadecimal"),
        (b"5\r\nhelloX\r\n", InvalidChunkSizeError, "longer"),
        (b"0\r\n\r\nmore", InvalidChunkSizeError, "after the final"),
        (b"1" * (awschunked.MAX_LINE + 1), InvalidChunkSizeError, "too long"),
        (b"1" * (awschunked.MAX_LINE + 1) + b"\r\n", InvalidChunkSizeError, "too long"),
        (b"0\r\nno-colon\r\n\r\n", MalformedTrailerError, "name:value"),
        (b"0\r\n:value\r\n\r\n", MalformedTrailerError, "name:value"),
        (b"0\r\nx-a:\xff\r\n\r\n", MalformedTrailerError, "ASCII"),
        (b"0\r\nx-a:1\r\nx-a:2\r\n\r\n", MalformedTrailerError, "twice"),
    ],
)
def test_malformed_unsigned_bodies(body: bytes, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        _decode(body, ChunkedDecoder(signer=None, trailer=True))


def test_trailer_size_limit() -> None:
    lines = b"".join(f"x-{i}:".encode() + b"1" * 2000 + b"\r\n" for i in range(10))
    with pytest.raises(MalformedTrailerError, match="too long"):
        ChunkedDecoder(signer=None, trailer=True).feed(b"0\r\n" + lines)


def test_signed_framing_refusals() -> None:
    with pytest.raises(InvalidChunkSizeError, match="chunk-signature"):
        ChunkedDecoder(signer=SIGNER, trailer=False).feed(b"3\r\nabc\r\n")
    final_without_blank = encode([b"abc"], signer=SIGNER)[:-2] + b"x\r\n"
    with pytest.raises(InvalidChunkSizeError, match="empty line"):
        ChunkedDecoder(signer=SIGNER, trailer=False).feed(final_without_blank)
    trailer_after_signature = encode([b"abc"], signer=SIGNER, trailers={"x-amz-checksum-crc32": "AAAAAA=="})[:-2]
    with pytest.raises(MalformedTrailerError, match="name:value"):
        ChunkedDecoder(signer=SIGNER, trailer=True).feed(trailer_after_signature + b"x-late:1\r\n\r\n")


def test_lengths_and_early_ends() -> None:
    body = encode([b"abc", b"def"])
    with pytest.raises(IncompleteBody, match="longer"):
        ChunkedDecoder(signer=None, trailer=True, decoded_length=4).feed(body)
    short = ChunkedDecoder(signer=None, trailer=True, decoded_length=7)
    short.feed(body)
    with pytest.raises(IncompleteBody, match="declared 7"):
        short.finish()
    cut = ChunkedDecoder(signer=None, trailer=True)
    cut.feed(body[:5])
    assert not cut.done
    with pytest.raises(IncompleteBody, match="ended before"):
        cut.finish()
    assert encode([b"", b"x", b""]) == b"1\r\nx\r\n0\r\n\r\n"
