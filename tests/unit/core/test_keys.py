"""Key and name validation, and the access-level layout of keys."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from updown.core.keys import (
    MAX_KEY_BYTES,
    ObjectKeyParts,
    object_key,
    parse_object_key,
    validate_identity_id,
    validate_key,
    validate_name,
)
from updown.errors import InvalidKey, InvalidRequest

IDENTITY = "us-east-1:5f0c2a4e-1b2c-4d3e-8f90-0123456789ab"

# Pieces that attack a prefix, mixed with ordinary text.
ATTACKS = st.sampled_from(
    ["..", ".", "/", "//", "%2e%2e", "%2E%2e", "%2e", "%2f", "%2F", "\\", "%5c", "%00", "\x00", "\x1f", "\x7f", "%"]
)
NAMES = st.lists(st.one_of(st.text(max_size=12), ATTACKS), max_size=12).map("".join)


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "public/photo.jpg",
        "a/b/c.d.e",
        "...",
        "a/.hidden",
        "with space/and+plus=eq~tilde",
        "100% sure.txt",
        "a%2fb",  # decodes to a/b: still safe
        "%252e%252e/x",  # one more decoding gives %2e%2e, a harmless literal
        "日本語/ファイル.txt",
        "a" * MAX_KEY_BYTES,
        "a//b",  # S3 keys may have empty segments
        "dir/",  # a folder marker
        "a///b//",
    ],
)
def test_validate_key_acceptable_key_returns_it(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("name", ["a//b", "a/", "a///b//"])
def test_validate_name_empty_segment_raises_invalid_key(name: str) -> None:
    with pytest.raises(InvalidKey, match="empty segment"):
        validate_name(name)
    with pytest.raises(InvalidKey, match="empty segment"):
        object_key("public", None, name)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "starts with /"),
        ("..", "'..' segment"),
        ("a/../b", "'..' segment"),
        ("a/..", "'..' segment"),
        ("./a", "'.' segment"),
        ("a\\..\\b", "backslash"),
        ("a\x00b", "U+0000"),
        ("a\tb", "U+0009"),
        ("a\x7f", "U+007F"),
        ("a\x9b", "U+009B"),
        ("a/%2e%2e/b", "'..' segment once percent-decoded"),
        ("%2E%2E", "'..' segment once percent-decoded"),
        ("a/.%2e", "'..' segment once percent-decoded"),
        ("%2fetc", "starts with / once percent-decoded"),
        ("a%00", "U+0000 once percent-decoded"),
        ("a%5cb", "backslash once percent-decoded"),
        ("a" * (MAX_KEY_BYTES + 1), "1025 bytes"),
        ("é" * 513, "1026 bytes"),
        ("a\ud800", "not valid Unicode"),
    ],
)
def test_validate_key_unsafe_key_raises_invalid_key_with_reason(key: str, reason: str) -> None:
    with pytest.raises(InvalidKey) as caught:
        validate_key(key)
    assert reason in caught.value.detail
    assert "\n" not in caught.value.detail


def test_validate_key_non_nfc_returns_nfc_form() -> None:
    decomposed = unicodedata.normalize("NFD", "café/é")
    assert decomposed != "café/é"
    assert validate_key(decomposed) == "café/é"


def test_validate_key_length_is_counted_after_nfc() -> None:
    # 512 × (e + combining acute) is 1536 bytes as given but 1024 bytes (512 × é) in NFC.
    decomposed = "e\u0301" * 512
    assert validate_key(decomposed) == "é" * 512


def test_validate_name_names_the_name_in_its_reason() -> None:
    with pytest.raises(InvalidKey) as caught:
        validate_name("../x")
    assert caught.value.detail.startswith("the name ")


@pytest.mark.parametrize(
    ("level", "identity", "expected"),
    [
        ("public", None, "public/a/b.jpg"),
        ("public", IDENTITY, "public/a/b.jpg"),
        ("protected", IDENTITY, f"protected/{IDENTITY}/a/b.jpg"),
        ("private", IDENTITY, f"private/{IDENTITY}/a/b.jpg"),
    ],
)
def test_object_key_level_builds_amplify_layout(level: str, identity: str | None, expected: str) -> None:
    assert object_key(level, identity, "a/b.jpg") == expected
    parts = parse_object_key(expected)
    assert parts == ObjectKeyParts(level, None if level == "public" else identity, "a/b.jpg")


@pytest.mark.parametrize(
    ("level", "identity"),
    [
        ("Public", None),
        ("shared", IDENTITY),
        ("private", None),
        ("protected", "5f0c2a4e-1b2c-4d3e-8f90-0123456789ab"),
        ("private", "us-east-1:../../x"),
        ("private", "US-EAST-1:5F0C2A4E-1B2C-4D3E-8F90-0123456789AB"),
        ("private", IDENTITY + "/x"),
    ],
)
def test_object_key_bad_level_or_identity_raises_invalid_request(level: str, identity: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        object_key(level, identity, "a.jpg")
    assert type(caught.value) is InvalidRequest


def test_object_key_name_that_fits_alone_but_not_with_prefix_raises_invalid_key() -> None:
    name = "a" * (MAX_KEY_BYTES - 5)
    assert validate_name(name) == name
    with pytest.raises(InvalidKey):
        object_key("private", IDENTITY, name)


def test_validate_identity_id_well_formed_returns_it() -> None:
    assert validate_identity_id("eu-local:5f0c2a4e-1b2c-4d3e-8f90-0123456789ab").startswith("eu-local:")


@pytest.mark.parametrize("key", ["uploads/event_1/p.jpg", "public", "protected/not-an-id/x", f"private/{IDENTITY}"])
def test_parse_object_key_outside_levels_returns_none(key: str) -> None:
    assert parse_object_key(key) is None


@given(name=NAMES, level=st.sampled_from(["public", "protected", "private"]))
def test_object_key_any_name_stays_under_its_prefix(name: str, level: str) -> None:
    try:
        key = object_key(level, IDENTITY, name)
    except InvalidKey:
        return
    prefix = "public/" if level == "public" else f"{level}/{IDENTITY}/"
    assert key.startswith(prefix)
    assert key[len(prefix) :] == unicodedata.normalize("NFC", name)
    segments = key.split("/")
    assert all(segment not in ("", ".", "..") for segment in segments)
    assert "\\" not in key
    assert "\x00" not in key
    assert len(key.encode()) <= MAX_KEY_BYTES
    assert parse_object_key(key) == ObjectKeyParts(level, None if level == "public" else IDENTITY, key[len(prefix) :])


@given(key=NAMES)
def test_validate_key_any_input_is_idempotent_or_refused(key: str) -> None:
    try:
        clean = validate_key(key)
    except InvalidKey:
        return
    assert validate_key(clean) == clean
    assert unicodedata.is_normalized("NFC", clean)


def test_validate_key_not_a_string_invalid_key() -> None:
    with pytest.raises(InvalidKey, match="must be a string"):
        validate_key(b"public/a")  # type: ignore[arg-type]
