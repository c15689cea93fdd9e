"""aws-chunked bodies: the framing of SigV4 streaming uploads (``x-amz-content-sha256:
STREAMING-…``), decoded incrementally with each chunk's signature checked in the chain that starts
at the request's own (seed) signature. Pure: stdlib only, no I/O (sans-IO: bytes in, bytes out).

Three framings::

    STREAMING-AWS4-HMAC-SHA256-PAYLOAD           <hex size>;chunk-signature=<sig>\\r\\n<data>\\r\\n … 0;chunk-signature=<sig>\\r\\n\\r\\n
    STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER   the same, the final chunk followed by trailer lines
                                                 and x-amz-trailer-signature:<sig>\\r\\n, then \\r\\n
    STREAMING-UNSIGNED-PAYLOAD-TRAILER           <hex size>\\r\\n<data>\\r\\n … 0\\r\\n<trailer lines>\\r\\n

A chunk's signature is the HMAC (with the request's signing key) of ``AWS4-HMAC-SHA256-PAYLOAD``,
the request date, the scope, the previous signature, the SHA-256 of nothing and the SHA-256 of the
chunk's data; the trailer's is of ``AWS4-HMAC-SHA256-TRAILER``, date, scope, previous signature
and the SHA-256 of the trailer lines as ``name:value\\n``. Data is handed on as it arrives, before
its chunk's signature is checked: the caller must keep nothing unless `ChunkedDecoder.finish`
returns (a storage backend keeps nothing of a body whose iterator raises).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from updown.core.sigv4 import EMPTY_SHA256, signing_key
from updown.errors import IncompleteBody, InvalidChunkSizeError, MalformedTrailerError, SignatureDoesNotMatch

STREAMING_SIGNED: Final = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER: Final = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER: Final = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
MODES: Final = frozenset({STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER})
TRAILER_SIGNATURE: Final = "x-amz-trailer-signature"
# The longest chunk header or trailer line accepted, and all trailer lines together.
MAX_LINE: Final = 4096
MAX_TRAILERS: Final = 16 * 1024

_SIGNED_EXT: Final = re.compile(rb"chunk-signature=([0-9a-f]{64})")
_HEX: Final = re.compile(rb"[0-9a-fA-F]{1,16}")

# Decoder states.
_SIZE, _DATA, _DATA_END, _TRAILER, _FINAL, _DONE = range(6)


@dataclass(frozen=True, slots=True)
class ChunkSigner:
    """What chunk signatures are computed with: the request's signing key, date, scope and seed."""

    key: bytes
    amz_date: str
    scope: str
    seed: str

    @classmethod
    def for_request(cls, secret: str, amz_date: str, region: str, service: str, seed: str) -> ChunkSigner:
        """The signer of a request signed at ``amz_date`` (``YYYYMMDDTHHMMSSZ``) with ``seed``."""
        day = amz_date[:8]
        return cls(signing_key(secret, day, region, service), amz_date, f"{day}/{region}/{service}/aws4_request", seed)

    def chunk(self, previous: str, data_sha256: str) -> str:
        """The signature of a chunk whose data has SHA-256 ``data_sha256`` (hex)."""
        to_sign = f"AWS4-HMAC-SHA256-PAYLOAD\n{self.amz_date}\n{self.scope}\n{previous}\n{EMPTY_SHA256}\n{data_sha256}"
        return hmac.digest(self.key, to_sign.encode(), "sha256").hex()

    def trailer(self, previous: str, trailers: Iterable[tuple[str, str]]) -> str:
        """The signature of the trailer lines (lower-case names, trimmed values) after ``previous``."""
        block = "".join([f"{name}:{value}\n" for name, value in trailers])
        digest = hashlib.sha256(block.encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256-TRAILER\n{self.amz_date}\n{self.scope}\n{previous}\n{digest}"
        return hmac.digest(self.key, to_sign.encode(), "sha256").hex()


class ChunkedDecoder:
    """Decodes one aws-chunked body fed in pieces of any size.

    ``signer`` checks chunk (and trailer) signatures; None for ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``.
    ``trailer``: whether trailer lines follow the final chunk. ``decoded_length``: the
    ``x-amz-decoded-content-length`` the data must have, when declared.
    """

    def __init__(self, *, signer: ChunkSigner | None, trailer: bool, decoded_length: int | None = None) -> None:
        self._signer = signer
        self._previous = "" if signer is None else signer.seed
        self._trailer = trailer
        self._decoded_length = decoded_length
        self._state = _SIZE
        self._line = bytearray()
        self._remaining = 0
        self._signature = ""
        self._digest = hashlib.sha256()
        self._trailer_bytes = 0
        self._trailer_signature: str | None = None
        self.total = 0
        self.trailers: dict[str, str] = {}

    @classmethod
    def for_mode(cls, mode: str, signer: ChunkSigner | None, decoded_length: int | None = None) -> ChunkedDecoder:
        """The decoder for one of `MODES` (``signer`` is ignored for the unsigned one)."""
        assert mode in MODES, mode
        signed = mode != STREAMING_UNSIGNED_TRAILER
        return cls(signer=signer if signed else None, trailer=mode != STREAMING_SIGNED, decoded_length=decoded_length)

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> list[bytes]:
        """Decode a piece of the body; returns the data it completes (possibly none).

        Raises:
            InvalidChunkSizeError: malformed framing, or bytes after the end.
            SignatureDoesNotMatch: a chunk's or the trailer's signature is wrong.
            MalformedTrailerError: a malformed trailer line.
            IncompleteBody: more data than ``decoded_length``.
        """
        out: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                piece = data[pos : pos + take]
                pos += take
                self._remaining -= take
                if self._signer is not None:
                    self._digest.update(piece)
                out.append(piece)
                if self._remaining == 0:
                    self._state = _DATA_END
                continue
            if state == _DONE:
                raise InvalidChunkSizeError("there are bytes after the final chunk")
            newline = data.find(b"\n", pos)
            if newline < 0:
                self._line += data[pos:]
                if len(self._line) > MAX_LINE:
                    raise InvalidChunkSizeError("a chunk header or trailer line is too long")
                break
            self._line += data[pos:newline]
            pos = newline + 1
            line = bytes(self._line)
            self._line.clear()
            if len(line) > MAX_LINE:
                raise InvalidChunkSizeError("a chunk header or trailer line is too long")
            self._on_line(line.removesuffix(b"\r"))
        return out

    def finish(self) -> dict[str, str]:
        """The body ended: returns its trailers (lower-case names).

        Raises:
            IncompleteBody: the body ended before its final chunk, or its data has another length
                than ``decoded_length``.
        """
        if self._state != _DONE:
            raise IncompleteBody("the aws-chunked body ended before its final chunk")
        if self._decoded_length is not None and self.total != self._decoded_length:
            raise IncompleteBody(
                f"the body has {self.total} bytes; x-amz-decoded-content-length declared {self._decoded_length}"
            )
        return self.trailers

    # -- lines -------------------------------------------------------------------------------

    def _on_line(self, line: bytes) -> None:
        state = self._state
        if state == _SIZE:
            self._on_size(line)
        elif state == _DATA_END:
            if line:
                raise InvalidChunkSizeError("a chunk's data is longer than its declared size")
            self._check_chunk(self._digest.hexdigest())
            self._state = _SIZE
        elif state == _TRAILER:
            self._on_trailer(line)
        else:
            assert state == _FINAL
            if line:
                raise InvalidChunkSizeError("the final chunk is not followed by an empty line")
            self._state = _DONE

    def _on_size(self, line: bytes) -> None:
        size_text, _, extension = line.partition(b";")
        if _HEX.fullmatch(size_text) is None:
            raise InvalidChunkSizeError("a chunk size is not a hexadecimal number")
        size = int(size_text, 16)
        if self._signer is not None:
            match = _SIGNED_EXT.fullmatch(extension)
            if match is None:
                raise InvalidChunkSizeError("a chunk has no chunk-signature")
            self._signature = match.group(1).decode()
        self.total += size
        if self._decoded_length is not None and self.total > self._decoded_length:
            raise IncompleteBody(f"the body is longer than its x-amz-decoded-content-length {self._decoded_length}")
        if size:
            self._remaining = size
            self._digest = hashlib.sha256()
            self._state = _DATA
            return
        self._check_chunk(EMPTY_SHA256)
        self._state = _TRAILER if self._trailer else _FINAL

    def _check_chunk(self, data_sha256: str) -> None:
        if self._signer is None:
            return
        expected = self._signer.chunk(self._previous, data_sha256)
        if not hmac.compare_digest(expected, self._signature):
            raise SignatureDoesNotMatch("The chunk signature we calculated does not match the signature you provided")
        self._previous = expected

    def _on_trailer(self, line: bytes) -> None:
        if not line:
            if self._signer is not None:
                if self._trailer_signature is None:
                    raise MalformedTrailerError("the trailer has no x-amz-trailer-signature")
                expected = self._signer.trailer(self._previous, self.trailers.items())
                if not hmac.compare_digest(expected, self._trailer_signature):
                    raise SignatureDoesNotMatch(
                        "The trailer signature we calculated does not match the signature you provided"
                    )
            self._state = _DONE
            return
        self._trailer_bytes += len(line)
        if self._trailer_bytes > MAX_TRAILERS:
            raise MalformedTrailerError("the trailer is too long")
        name, colon, value = line.partition(b":")
        if not colon or not name or self._trailer_signature is not None:
            raise MalformedTrailerError("a trailer line is not name:value")
        try:
            key, text = name.decode("ascii").strip().lower(), value.decode("ascii").strip()
        except UnicodeDecodeError:
            raise MalformedTrailerError("a trailer line is not ASCII") from None
        if key == TRAILER_SIGNATURE:
            self._trailer_signature = text
        elif key in self.trailers:
            raise MalformedTrailerError(f"the trailer {key} is given twice")
        else:
            self.trailers[key] = text


def encode(
    chunks: Iterable[bytes], *, signer: ChunkSigner | None = None, trailers: Mapping[str, str] | None = None
) -> bytes:
    """An aws-chunked body of the given data chunks (empty ones are skipped), as an SDK sends it.

    Signed when ``signer`` is given; with ``trailers`` the final chunk is followed by them (and,
    signed, by their signature). For tests and hand-built clients.
    """
    out = bytearray()
    previous = "" if signer is None else signer.seed
    for data in chunks:
        if not data:
            continue
        out += f"{len(data):x}".encode()
        if signer is not None:
            previous = signer.chunk(previous, hashlib.sha256(data).hexdigest())
            out += f";chunk-signature={previous}".encode()
        out += b"\r\n" + data + b"\r\n"
    out += b"0"
    if signer is not None:
        previous = signer.chunk(previous, EMPTY_SHA256)
        out += f";chunk-signature={previous}".encode()
    out += b"\r\n"
    if trailers is not None:
        lines = [(name.lower(), value.strip()) for name, value in trailers.items()]
        for name, value in lines:
            out += f"{name}:{value}\r\n".encode()
        if signer is not None:
            out += f"{TRAILER_SIGNATURE}:{signer.trailer(previous, lines)}\r\n".encode()
    out += b"\r\n"
    return bytes(out)
