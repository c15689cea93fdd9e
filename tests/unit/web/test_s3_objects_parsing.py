"""The S3 object verbs' request parsing, without a server: x-amz-copy-source, the copy-source
conditions, conditional write headers, user metadata decoding and DeleteObjects documents."""

from __future__ import annotations

import base64
from email.utils import formatdate

import pytest

from updown.errors import (
    InvalidArgument,
    InvalidKey,
    MalformedXML,
    NoSuchBucket,
    NotImplementedHere,
    PreconditionFailed,
)
from updown.files.objects import WriteCondition, etag_matches
from updown.storage.base import ObjectInfo
from updown.web.s3.batch import MAX_KEYS, Entry, Outcome, parse_delete, result_document
from updown.web.s3.objects import copy_conditions, copy_source, has_integrity_header, user_metadata, write_condition

INFO = ObjectInfo("public/a", 1, "abc", "text/plain", {}, last_modified=1_700_000_000)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("/files/public/a.txt", "public/a.txt"),
        ("files/public/a.txt", "public/a.txt"),
        ("files/public/with%20space%2B%3F.txt", "public/with space+?.txt"),
        ("files/public/%C3%BC.txt?versionId=null", "public/ü.txt"),
        ("files/public/a//b", "public/a//b"),
    ],
)
def test_copy_source_names_the_key(value: str, key: str) -> None:
    assert copy_source(value, "files") == key


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("files", InvalidArgument),
        ("/files/", InvalidArgument),
        ("files/a?versionId=3HL4kqtJlcpXroDTDmJ", InvalidArgument),
        ("files/a?other=1", InvalidArgument),
        ("files/%ff", InvalidArgument),
        ("other/a", NoSuchBucket),
        ("files/public/../x", InvalidKey),
    ],
)
def test_copy_source_refusals(value: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        copy_source(value, "files")


def test_copy_conditions_in_s3s_combinations() -> None:
    past = formatdate(INFO.last_modified - 60, usegmt=True)
    future = formatdate(INFO.last_modified + 60, usegmt=True)
    assert copy_conditions({}) is None
    assert copy_conditions({"x-amz-copy-source-if-modified-since": "not a date"}) is None
    holding = [
        {"x-amz-copy-source-if-match": '"abc"'},
        {"x-amz-copy-source-if-match": "*"},
        {"x-amz-copy-source-if-none-match": '"other"'},
        {"x-amz-copy-source-if-modified-since": past},
        {"x-amz-copy-source-if-unmodified-since": future},
        {"x-amz-copy-source-if-match": '"abc"', "x-amz-copy-source-if-unmodified-since": past},
        {"x-amz-copy-source-if-none-match": '"other"', "x-amz-copy-source-if-modified-since": future},
    ]
    for headers in holding:
        check = copy_conditions(headers)
        assert check is not None
        check(INFO)
    failing = [
        {"x-amz-copy-source-if-match": '"other"'},
        {"x-amz-copy-source-if-none-match": '"abc"'},
        {"x-amz-copy-source-if-modified-since": future},
        {"x-amz-copy-source-if-unmodified-since": past},
        {"x-amz-copy-source-if-none-match": '"abc"', "x-amz-copy-source-if-modified-since": past},
    ]
    for headers in failing:
        check = copy_conditions(headers)
        assert check is not None
        with pytest.raises(PreconditionFailed):
            check(INFO)


def test_write_condition() -> None:
    assert write_condition({}) is None
    assert write_condition({"if-none-match": "*"}) == WriteCondition(if_none_match=True)
    assert write_condition({"if-match": '"abc"'}) == WriteCondition(if_match='"abc"')
    with pytest.raises(NotImplementedHere):
        write_condition({"if-none-match": '"abc"'})
    WriteCondition(if_none_match=True).check(None)
    with pytest.raises(PreconditionFailed):
        WriteCondition(if_none_match=True).check(INFO)
    WriteCondition(if_match='W/"abc", "x"').check(INFO)
    with pytest.raises(PreconditionFailed):
        WriteCondition(if_match='"x"').check(INFO)
    assert etag_matches("*", "anything")
    assert not etag_matches('"a", "b"', "c")


def test_user_metadata_decodes_rfc2047_and_utf8() -> None:
    encoded = "=?UTF-8?B?" + base64.b64encode("Grüße".encode()).decode() + "?="
    headers = {
        "x-amz-meta-plain": "ascii",
        "x-amz-meta-encoded": encoded,
        "x-amz-meta-q": "=?utf-8?q?caf=C3=A9?=",
        "x-amz-meta-raw": "Zürich".encode().decode("latin-1"),
        "x-amz-meta-latin1": "caf\xe9",  # not UTF-8: kept as the latin-1 text it is
        "x-amz-meta-badcharset": "=?x-unknown?b?YQ==?=",
        "content-type": "text/plain",
    }
    assert user_metadata(headers) == {
        "plain": "ascii",
        "encoded": "Grüße",
        "q": "café",
        "raw": "Zürich",
        "latin1": "café",
        "badcharset": "=?x-unknown?b?YQ==?=",
    }


def test_has_integrity_header() -> None:
    assert not has_integrity_header({"x-amz-checksum-mode": "ENABLED"})
    assert has_integrity_header({"content-md5": "x"})
    assert has_integrity_header({"x-amz-checksum-crc32": "x"})
    assert has_integrity_header({"x-amz-trailer": "x-amz-checksum-crc32"})


def test_parse_delete_document() -> None:
    ns = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    doc = (
        f"<Delete {ns}><Quiet>true</Quiet><Object><Key>a &amp; b</Key></Object>"
        '<Object><Key>c</Key><VersionId>null</VersionId><ETag>"e"</ETag></Object></Delete>'
    ).encode()
    assert parse_delete(doc) == (True, [Entry("a & b"), Entry("c", "null", '"e"')])
    assert parse_delete(b"<Delete><Object><Key> k </Key></Object></Delete>") == (False, [Entry(" k ")])
    assert parse_delete(b"<Delete><Object><Key></Key></Object></Delete>") == (False, [Entry("")])


@pytest.mark.parametrize(
    "doc",
    [
        b"",
        b"<Delete>",
        b"<Other><Object><Key>a</Key></Object></Other>",
        b"<Delete><Quiet>true</Quiet></Delete>",
        b"<Delete><Object><VersionId>1</VersionId></Object></Delete>",
        b'<!DOCTYPE d [<!ENTITY e "x">]><Delete><Object><Key>&e;</Key></Object></Delete>',
        b"<Delete>" + b"<Object><Key>k</Key></Object>" * (MAX_KEYS + 1) + b"</Delete>",
    ],
)
def test_parse_delete_refuses_malformed_documents(doc: bytes) -> None:
    with pytest.raises(MalformedXML):
        parse_delete(doc)


def test_result_document_verbose_and_quiet() -> None:
    outcomes = [Outcome(Entry("a")), Outcome(Entry("b<", "null"), "AccessDenied", "Access Denied")]
    verbose = result_document(outcomes, quiet=False)
    assert b"<Deleted><Key>a</Key></Deleted>" in verbose
    assert b"<Error><Key>b&lt;</Key><VersionId>null</VersionId><Code>AccessDenied</Code>" in verbose
    quiet = result_document(outcomes, quiet=True)
    assert b"<Deleted>" not in quiet
    assert b"<Code>AccessDenied</Code>" in quiet
