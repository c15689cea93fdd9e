"""The data plane's multipart and listing pieces that need no server: the CompleteMultipartUpload
parser, the ListMultipartUploads markers and roll-up, and the listing helpers."""

from __future__ import annotations

import pytest

from updown.errors import InvalidArgument, MalformedXML
from updown.storage.base import MultipartUpload
from updown.web.s3 import multipart
from updown.web.s3.bucket import int_param, owner_id, owner_xml, url_encoder

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def _doc(*parts: str, root: str = f"<CompleteMultipartUpload {NS}>") -> bytes:
    return (root + "".join(parts) + "</CompleteMultipartUpload>").encode()


def _part(number: str, etag: str, extra: str = "") -> str:
    return f"<Part><PartNumber>{number}</PartNumber>{extra}<ETag>{etag}</ETag></Part>"


def test_parse_part_list_reads_parts_in_document_order() -> None:
    body = _doc(_part("1", '"aa"'), _part("3", "bb", "<ChecksumCRC32>AAAAAA==</ChecksumCRC32>"), _part(" 2 ", "cc"))
    assert multipart.parse_part_list(body) == [(1, '"aa"'), (3, "bb"), (2, "cc")]


def test_parse_part_list_without_namespace_and_with_prolog() -> None:
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + _doc(_part("1", "x"), root="<CompleteMultipartUpload>")
    assert multipart.parse_part_list(body) == [(1, "x")]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<CompleteMultipartUpload>",
        b"<Other><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></Other>",
        _doc(),
        _doc("<Part><ETag>x</ETag></Part>"),
        _doc("<Part><PartNumber>1</PartNumber></Part>"),
        _doc(_part("one", "x")),
        _doc(_part("-1", "x")),
        _doc(_part("１", "x")),  # a full-width digit
        b'<!DOCTYPE CompleteMultipartUpload [<!ENTITY e "x">]>' + _doc(_part("1", "&e;")),
        b'<!DOCTYPE CompleteMultipartUpload SYSTEM "http://example.com/x.dtd">' + _doc(_part("1", "x")),
    ],
)
def test_parse_part_list_refuses_what_is_not_the_document(body: bytes) -> None:
    with pytest.raises(MalformedXML):
        multipart.parse_part_list(body)


@pytest.mark.parametrize("number", ["0", "10001", "99999999999"])
def test_parse_part_list_part_number_out_of_range_is_invalid_argument(number: str) -> None:
    with pytest.raises(InvalidArgument):
        multipart.parse_part_list(_doc(_part(number, "x")))


U = MultipartUpload


def _uploads() -> tuple[MultipartUpload, ...]:
    return (
        U("a/1", "id-z", 1.0),
        U("b", "id-c", 1.0),
        U("b", "id-a", 2.0),
        U("b", "id-b", 3.0),
        U("c/1", "id-d", 1.0),
        U("c/2", "id-e", 1.0),
        U("d", "id-f", 1.0),
    )


def test_upload_entries_markers_follow_initiation_order_within_a_key() -> None:
    every = multipart._upload_entries(_uploads(), "", None, "", "")
    assert every == list(_uploads())
    after_b = multipart._upload_entries(_uploads(), "", None, "b", "")
    assert [u.key for u in after_b if isinstance(u, U)] == ["c/1", "c/2", "d"]
    # After "id-a" of key b: the one initiated after it (id-b), though "id-c" sorts later.
    after_id = multipart._upload_entries(_uploads(), "", None, "b", "id-a")
    assert [(u.key, u.upload_id) for u in after_id if isinstance(u, U)][:1] == [("b", "id-b")]
    assert len(after_id) == 4
    # An id the key does not have: the ids after it lexicographically, as S3 documents.
    unknown = multipart._upload_entries(_uploads(), "", None, "b", "id-bb")
    assert [(u.key, u.upload_id) for u in unknown if isinstance(u, U)][:1] == [("b", "id-c")]
    # The id marker means nothing without a key marker.
    assert multipart._upload_entries(_uploads(), "", None, "", "id-a") == list(_uploads())


def test_upload_entries_roll_up_under_the_delimiter_once_each() -> None:
    entries = multipart._upload_entries(_uploads(), "", "/", "", "")
    assert entries == ["a/", *_uploads()[1:4], "c/", _uploads()[6]]
    assert multipart._upload_entries(_uploads(), "", "/", "c/", "") == [_uploads()[6]]
    assert multipart._upload_entries(_uploads(), "c/", "/", "", "") == list(_uploads())


def test_listing_helpers() -> None:
    assert int_param({}, "max-keys", "bad") is None
    assert int_param({"max-keys": "0"}, "max-keys", "bad") == 0
    for raw in ("", "-1", "1.5", "x", "٣", "12345678901"):
        with pytest.raises(InvalidArgument):
            int_param({"max-keys": raw}, "max-keys", "bad")
    assert url_encoder({})("a b+c/é") == "a b+c/é"
    assert url_encoder({"encoding-type": "url"})("a b+c/é~%") == "a%20b%2Bc/%C3%A9~%25"
    with pytest.raises(InvalidArgument):
        url_encoder({"encoding-type": "base64"})
    assert owner_id("files") == owner_id("files") != owner_id("other")
    assert len(owner_id("files")) == 64
    assert owner_xml("files", "Initiator").startswith("<Initiator><ID>")
