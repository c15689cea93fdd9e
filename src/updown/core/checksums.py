"""S3's payload checksums: ``Content-MD5`` and the ``x-amz-checksum-*`` family (CRC32, CRC32C,
CRC64NVME, SHA-1, SHA-256), computed over a body as it streams and checked against what the
request declared, in a header or in an aws-chunked trailer. Pure: stdlib only.

CRC32 and the SHAs run in C (``zlib``, ``hashlib``). The stdlib has no CRC32C or CRC64NVME, so
those two are table-driven here, eight bytes a step (about 15 MB/s, not GB/s): SDKs send CRC32 by
default; the others only when a caller picks them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import zlib
from collections.abc import Mapping
from typing import Final, Protocol

from updown.errors import BadDigest, InvalidDigest, InvalidRequest, MalformedTrailerError

CHECKSUM_PREFIX: Final = "x-amz-checksum-"
# Headers of the family that are not a checksum value (GetObject's mode, multipart's type and algorithm).
NOT_A_VALUE: Final = frozenset({"x-amz-checksum-mode", "x-amz-checksum-type", "x-amz-checksum-algorithm"})


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    __slots__ = ("_crc",)

    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: bytes, /) -> None:
        self._crc = zlib.crc32(data, self._crc)

    def digest(self) -> bytes:
        return self._crc.to_bytes(4, "big")


def _tables(poly: int, width: int) -> tuple[tuple[int, ...], ...]:
    """Slicing-by-8 tables of a reflected CRC: ``t[k][b]`` is byte ``b`` advanced ``k`` more bytes."""
    mask = (1 << width) - 1
    first = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        first.append(crc & mask)
    tables = [tuple(first)]
    for _ in range(7):
        prev = tables[-1]
        tables.append(tuple((prev[b] >> 8) ^ first[prev[b] & 0xFF] for b in range(256)))
    return tuple(tables)


class _TableCrc:
    """A reflected CRC with initial value and final xor all ones (CRC32C, CRC64NVME)."""

    __slots__ = ("_crc", "_mask", "_size", "_tables")

    def __init__(self, tables: tuple[tuple[int, ...], ...], width: int) -> None:
        self._tables = tables
        self._mask = (1 << width) - 1
        self._size = width // 8
        self._crc = self._mask

    def update(self, data: bytes, /) -> None:
        t0, t1, t2, t3, t4, t5, t6, t7 = self._tables
        crc = self._crc
        view = memoryview(data).cast("B")
        whole = len(view) - len(view) % 8
        # Eight bytes a step (the register xored with them, each byte through its table); unpacked
        # by struct, the cheapest way to get at bytes in pure Python.
        if self._size == 4:
            for a, b, c, d, e, f, g, h in struct.iter_unpack("8B", view[:whole]):
                crc = (
                    t7[(crc ^ a) & 0xFF]
                    ^ t6[((crc >> 8) ^ b) & 0xFF]
                    ^ t5[((crc >> 16) ^ c) & 0xFF]
                    ^ t4[(crc >> 24) ^ d]
                    ^ t3[e]
                    ^ t2[f]
                    ^ t1[g]
                    ^ t0[h]
                )
        else:
            for a, b, c, d, e, f, g, h in struct.iter_unpack("8B", view[:whole]):
                crc = (
                    t7[(crc ^ a) & 0xFF]
                    ^ t6[((crc >> 8) ^ b) & 0xFF]
                    ^ t5[((crc >> 16) ^ c) & 0xFF]
                    ^ t4[((crc >> 24) ^ d) & 0xFF]
                    ^ t3[((crc >> 32) ^ e) & 0xFF]
                    ^ t2[((crc >> 40) ^ f) & 0xFF]
                    ^ t1[((crc >> 48) ^ g) & 0xFF]
                    ^ t0[(crc >> 56) ^ h]
                )
        for byte in view[whole:]:
            crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        self._crc = crc

    def digest(self) -> bytes:
        return (self._crc ^ self._mask).to_bytes(self._size, "big")


_CRC32C_TABLES: Final = _tables(0x82F63B78, 32)
_CRC64NVME_TABLES: Final = _tables(0x9A6C9329AC4BC9B5, 64)

# S3's name of each algorithm (lower case, as in the header) -> its digest size in bytes.
ALGORITHMS: Final = {"crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32}


def new_digest(algorithm: str) -> Digest:
    """A fresh digest for one of `ALGORITHMS` (lower-case name)."""
    if algorithm == "crc32":
        return _Crc32()
    if algorithm == "crc32c":
        return _TableCrc(_CRC32C_TABLES, 32)
    if algorithm == "crc64nvme":
        return _TableCrc(_CRC64NVME_TABLES, 64)
    if algorithm == "sha1":
        return hashlib.sha1(usedforsecurity=False)
    assert algorithm == "sha256", algorithm
    return hashlib.sha256()


def checksum(algorithm: str, data: bytes) -> str:
    """The base64 ``x-amz-checksum-<algorithm>`` value of ``data``."""
    digest = new_digest(algorithm)
    digest.update(data)
    return base64.b64encode(digest.digest()).decode()


def _decode(value: str, size: int) -> bytes | None:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def parse_content_md5(value: str) -> bytes:
    """The 16 bytes a ``Content-MD5`` header names.

    Raises:
        InvalidDigest: not the base64 of 16 bytes.
    """
    raw = _decode(value, 16)
    if raw is None:
        raise InvalidDigest("The Content-MD5 you specified was invalid.")
    return raw


def declared_checksums(headers: Mapping[str, str]) -> dict[str, bytes]:
    """The ``x-amz-checksum-<algorithm>`` values of a request's headers (lower-case names), decoded.

    Raises:
        InvalidRequest: an unknown algorithm, more than one, or a value that is not the base64 of
            a digest of the algorithm's size.
    """
    found: dict[str, bytes] = {}
    for name, value in headers.items():
        if not name.startswith(CHECKSUM_PREFIX) or name in NOT_A_VALUE:
            continue
        algorithm = name[len(CHECKSUM_PREFIX) :]
        if algorithm not in ALGORITHMS:
            raise InvalidRequest(f"The algorithm type you specified in {name} header is invalid.")
        raw = _decode(value, ALGORITHMS[algorithm])
        if raw is None:
            raise InvalidRequest(f"Value for {name} header is invalid.")
        found[algorithm] = raw
    if len(found) > 1:
        raise InvalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
    return found


def trailer_algorithm(declared: str | None) -> str | None:
    """The algorithm an ``x-amz-trailer`` header announces; None without one.

    Raises:
        InvalidRequest: a trailer other than one ``x-amz-checksum-<algorithm>``.
    """
    if declared is None:
        return None
    name = declared.strip().lower()
    algorithm = name[len(CHECKSUM_PREFIX) :] if name.startswith(CHECKSUM_PREFIX) else ""
    if algorithm not in ALGORITHMS:
        raise InvalidRequest(f"The value specified in the x-amz-trailer header is not supported: {declared[:64]}")
    return algorithm


class PayloadChecks:
    """The digests a body must match, updated as it streams; `verify` at its end.

    ``content_md5``: the 16 bytes of ``Content-MD5``; ``checksums``: algorithm -> the digest a
    header declared; ``trailer``: the algorithm whose value arrives in the body's trailer.
    """

    __slots__ = ("_digests", "_expected", "_md5", "_trailer", "content_md5", "verified")

    def __init__(
        self,
        *,
        content_md5: bytes | None = None,
        checksums: Mapping[str, bytes] | None = None,
        trailer: str | None = None,
    ) -> None:
        self.content_md5 = content_md5
        self._md5 = None if content_md5 is None else hashlib.md5(usedforsecurity=False)
        self._expected = dict(checksums or {})
        if trailer is not None and self._expected and trailer not in self._expected:
            raise InvalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
        self._trailer = trailer
        names = set(self._expected) | ({trailer} if trailer else set())
        self._digests = {name: new_digest(name) for name in sorted(names)}
        self.verified: dict[str, str] = {}

    @property
    def empty(self) -> bool:
        """True when there is nothing to check."""
        return self._md5 is None and not self._digests

    @property
    def trailer(self) -> str | None:
        return self._trailer

    def update(self, data: bytes) -> None:
        if self._md5 is not None:
            self._md5.update(data)
        for digest in self._digests.values():
            digest.update(data)

    def verify(self, trailers: Mapping[str, str] | None = None) -> dict[str, str]:
        """Check every digest; returns the verified checksums (algorithm -> base64 value).

        ``trailers`` are the trailing headers of an aws-chunked body (lower-case names).

        Raises:
            BadDigest: a digest differs from the declared one.
            MalformedTrailerError: the announced trailer is missing or malformed.
        """
        if self._md5 is not None and self._md5.digest() != self.content_md5:
            raise BadDigest("The Content-MD5 you specified did not match what we received.")
        expected = dict(self._expected)
        announced = set() if self._trailer is None else {CHECKSUM_PREFIX + self._trailer}
        unexpected = sorted(set(trailers or {}) - announced)
        if unexpected:
            raise MalformedTrailerError(f"The trailer {unexpected[0]} was not announced in x-amz-trailer.")
        if self._trailer is not None:
            name = CHECKSUM_PREFIX + self._trailer
            value = (trailers or {}).get(name)
            raw = None if value is None else _decode(value, ALGORITHMS[self._trailer])
            if raw is None:
                raise MalformedTrailerError(f"The trailer {name} is missing or malformed.")
            expected[self._trailer] = raw
        verified: dict[str, str] = {}
        for name, digest in self._digests.items():
            actual = digest.digest()
            if actual != expected[name]:
                raise BadDigest(f"The {name.upper()} you specified did not match the calculated checksum.")
            verified[name] = base64.b64encode(actual).decode()
        self.verified = verified
        return verified
