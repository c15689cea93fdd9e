"""S3's payload checksums: the algorithms against published check values and stdlib references,
the header parsing, and PayloadChecks' verdicts."""

from __future__ import annotations

import base64
import hashlib
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from updown.core.checksums import (
    ALGORITHMS,
    PayloadChecks,
    checksum,
    declared_checksums,
    new_digest,
    parse_content_md5,
    trailer_algorithm,
)
from updown.errors import BadDigest, InvalidDigest, InvalidRequest, MalformedTrailerError

CHECK = b"123456789"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("algorithm", "value"),
    [
        ("crc32", 0xCBF43926),
        ("crc32c", 0xE3069283),
        ("crc64nvme", 0xAE8B14860A799888),
    ],
)
def test_crc_check_values(algorithm: str, value: int) -> None:
    digest = new_digest(algorithm)
    digest.update(CHECK)
    assert int.from_bytes(digest.digest(), "big") == value
    assert len(digest.digest()) == ALGORITHMS[algorithm]


def test_crc32c_known_vectors() -> None:
    # RFC 3720 B.4: 32 bytes of zeros, of 0xff, ascending.
    assert checksum("crc32c", bytes(32)) == _b64((0x8A9136AA).to_bytes(4, "big"))
    assert checksum("crc32c", b"\xff" * 32) == _b64((0x62A8AB43).to_bytes(4, "big"))
    assert checksum("crc32c", bytes(range(32))) == _b64((0x46DD794E).to_bytes(4, "big"))
    assert checksum("crc32c", b"") == _b64(bytes(4))


@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=5))
def test_digests_are_independent_of_how_the_data_is_split(data: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    for algorithm in ALGORITHMS:
        whole = new_digest(algorithm)
        whole.update(data)
        split = new_digest(algorithm)
        for piece in pieces:
            split.update(piece)
        assert whole.digest() == split.digest(), algorithm


@given(st.binary(max_size=300))
def test_checksum_matches_stdlib_where_it_has_the_algorithm(data: bytes) -> None:
    assert checksum("crc32", data) == _b64(zlib.crc32(data).to_bytes(4, "big"))
    assert checksum("sha1", data) == _b64(hashlib.sha1(data, usedforsecurity=False).digest())
    assert checksum("sha256", data) == _b64(hashlib.sha256(data).digest())


def test_parse_content_md5() -> None:
    raw = hashlib.md5(b"x", usedforsecurity=False).digest()
    assert parse_content_md5(_b64(raw)) == raw
    for bad in ("", "AAAA", "not base64!", _b64(raw) + "AA"):
        with pytest.raises(InvalidDigest):
            parse_content_md5(bad)


def test_declared_checksums() -> None:
    crc = checksum("crc32", b"x")
    assert declared_checksums({"x-amz-checksum-crc32": crc, "x-amz-checksum-mode": "ENABLED", "host": "h"}) == {
        "crc32": base64.b64decode(crc)
    }
    assert declared_checksums({"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": "FULL_OBJECT"}) == {}
    with pytest.raises(InvalidRequest, match="algorithm"):
        declared_checksums({"x-amz-checksum-md4": crc})
    with pytest.raises(InvalidRequest, match="invalid"):
        declared_checksums({"x-amz-checksum-sha256": crc})
    with pytest.raises(InvalidRequest, match="single"):
        declared_checksums({"x-amz-checksum-crc32": crc, "x-amz-checksum-crc32c": crc})


def test_trailer_algorithm() -> None:
    assert trailer_algorithm(None) is None
    assert trailer_algorithm(" X-Amz-Checksum-CRC32C ") == "crc32c"
    for bad in ("x-amz-checksum-md5", "content-md5", ""):
        with pytest.raises(InvalidRequest):
            trailer_algorithm(bad)


def test_payload_checks_empty_does_nothing() -> None:
    checks = PayloadChecks()
    assert checks.empty
    assert checks.trailer is None
    checks.update(b"anything")
    assert checks.verify() == {}


def test_payload_checks_content_md5_and_header_checksum() -> None:
    data = b"some body"
    checks = PayloadChecks(
        content_md5=hashlib.md5(data, usedforsecurity=False).digest(),
        checksums={"sha256": hashlib.sha256(data).digest()},
    )
    assert not checks.empty
    checks.update(data[:4])
    checks.update(data[4:])
    assert checks.verify() == {"sha256": checksum("sha256", data)}
    assert checks.verified == {"sha256": checksum("sha256", data)}
    wrong_md5 = PayloadChecks(content_md5=hashlib.md5(b"other", usedforsecurity=False).digest())
    wrong_md5.update(data)
    with pytest.raises(BadDigest, match="Content-MD5"):
        wrong_md5.verify()
    wrong_sum = PayloadChecks(checksums={"crc32": bytes(4)})
    wrong_sum.update(data)
    with pytest.raises(BadDigest, match="CRC32"):
        wrong_sum.verify()


def test_payload_checks_trailer() -> None:
    data = b"trailed"
    name = "x-amz-checksum-crc32c"
    checks = PayloadChecks(trailer="crc32c")
    assert checks.trailer == "crc32c"
    checks.update(data)
    assert checks.verify({name: checksum("crc32c", data)}) == {"crc32c": checksum("crc32c", data)}
    for trailers in ({}, {name: "AAAA"}, None):
        with pytest.raises(MalformedTrailerError):
            PayloadChecks(trailer="crc32c").verify(trailers)
    with pytest.raises(MalformedTrailerError, match="not announced"):
        PayloadChecks().verify({name: checksum("crc32c", data)})
    bad = PayloadChecks(trailer="crc32c")
    bad.update(data)
    with pytest.raises(BadDigest):
        bad.verify({name: checksum("crc32c", b"other")})
    # A header checksum and a trailer of the same algorithm are one; of two algorithms, refused.
    both = PayloadChecks(checksums={"crc32c": base64.b64decode(checksum("crc32c", data))}, trailer="crc32c")
    both.update(data)
    assert both.verify({name: checksum("crc32c", data)})
    with pytest.raises(InvalidRequest, match="single"):
        PayloadChecks(checksums={"crc32": bytes(4)}, trailer="crc32c")
