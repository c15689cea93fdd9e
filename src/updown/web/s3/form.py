"""Browser form uploads (``multipart/form-data``) read as a stream: the text fields before the file
are collected (bounded), then the ``file`` part's bytes flow out chunk by chunk, never held whole.

As S3 does, ``file`` must be the last field that counts: fields after it are ignored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import Receive

from updown.errors import IncompleteBody, InvalidArgument

# S3 refuses forms whose fields before the file exceed 20 KB (MaxPostPreDataLengthExceeded).
MAX_PRE_DATA: Final = 20 * 1024
DISCONNECTED: Final = "the client disconnected before the body ended"


_Event = tuple[str, bytes, dict[bytes, bytes] | None]  # (part event, data, headers)


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a ``multipart/form-data`` Content-Type.

    Raises:
        InvalidArgument: not a multipart form, or no boundary.
    """
    media, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        raise InvalidArgument("POST requires a multipart/form-data body with a boundary")
    return boundary


class FormStream:
    """One form body being parsed as it arrives; use `fields`, then `file_chunks`, then `drain`."""

    def __init__(self, receive: Receive, boundary: bytes) -> None:
        self._receive = receive
        # Callbacks run inside parser.write and queue events; a part's headers travel with its
        # event, because one write may already begin the next part (and reset the headers).
        self._events: list[_Event] = []
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._ended = False
        self._body_done = False
        self.filename = ""
        self.file_content_type = ""
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_part_data": self._part_data,
                "on_part_end": lambda: self._events.append(("end", b"", None)),
                "on_header_field": lambda d, s, e: self._header_name.extend(d[s:e]),
                "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
                "on_header_end": self._header_end,
                "on_headers_finished": lambda: self._events.append(("headers", b"", self._headers)),
            },
        )

    def _part_begin(self) -> None:
        self._headers = {}

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._events.append(("data", data[start:end], None))

    def _header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    async def _next_events(self) -> list[_Event]:
        """Feed the parser the next body chunk; the events it produced (empty at the body's end)."""
        while not self._events:
            if self._body_done:
                return []
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise IncompleteBody(DISCONNECTED)
            chunk = message.get("body", b"")
            if not message.get("more_body", False):
                self._body_done = True
            if chunk:
                try:
                    self._parser.write(chunk)
                except Exception as exc:  # python-multipart raises its own errors on bad framing
                    raise InvalidArgument("the multipart body is malformed") from exc
        events, self._events = self._events, []
        return events

    async def fields(self) -> list[tuple[str, str]]:
        """The text fields up to the ``file`` part, in order; stops at the file's first byte.

        Raises:
            InvalidArgument: no file part, a field without a name, more than 20 KiB of fields, or
                a malformed body.
        """
        out: list[tuple[str, str]] = []
        size = 0
        name = ""
        value = bytearray()
        while True:
            events = await self._next_events()
            if not events:
                raise InvalidArgument("POST requires exactly one file upload per request.")
            for i, (kind, data, headers) in enumerate(events):
                if kind == "headers" and headers is not None:
                    name, filename = _disposition(headers)
                    if name == "file":
                        self.filename = filename
                        self.file_content_type = headers.get(b"content-type", b"").decode("latin-1")
                        # What follows belongs to the file: hand it to file_chunks.
                        self._events = events[i + 1 :] + self._events
                        return out
                    value.clear()
                elif kind == "data":
                    size += len(data)
                    if size > MAX_PRE_DATA:
                        raise InvalidArgument("Your POST request fields preceding the upload file were too large.")
                    value += data
                elif kind == "end":
                    try:
                        out.append((name, value.decode("utf-8")))
                    except UnicodeDecodeError:
                        raise InvalidArgument(f"the form field {name!r} is not UTF-8") from None

    async def file_chunks(self) -> AsyncIterator[bytes]:
        """The file part's bytes as they arrive.

        Raises:
            IncompleteBody: the body ended inside the file part.
        """
        while True:
            events = await self._next_events()
            if not events:
                raise IncompleteBody("the form body ended inside the file")
            for i, (kind, data, _) in enumerate(events):
                if kind == "data":
                    if data:
                        yield data
                elif kind == "end":
                    self._events = events[i + 1 :] + self._events
                    return

    async def drain(self) -> None:
        """Read the rest of the body (fields after the file are ignored, as S3 does)."""
        while await self._next_events():
            pass


def _disposition(headers: dict[bytes, bytes]) -> tuple[str, str]:
    """``(name, filename)`` of a part from its Content-Disposition."""
    _, params = parse_options_header(headers.get(b"content-disposition"))
    name = params.get(b"name")
    if not name:
        raise InvalidArgument("a form part has no name")
    return name.decode("utf-8", "replace"), params.get(b"filename", b"").decode("utf-8", "replace")
