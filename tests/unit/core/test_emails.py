"""core.emails: canonical email addresses, refusals with a stable code, and masking."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from updown.core.emails import mask_email, normalize_email
from updown.errors import InvalidRequest


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice@Example.COM\t", "alice@example.com"),
        ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"),
        ("o'brien@example.com", "o'brien@example.com"),
        ("x@example.com.", "x@example.com"),
        ("bob@bücher.de", "bob@xn--bcher-kva.de"),
        ("bob@BÜCHER.de", "bob@xn--bcher-kva.de"),
        ("bob@xn--bcher-kva.de", "bob@xn--bcher-kva.de"),
        ("a@東京.jp", "a@xn--1lqs71d.jp"),
        ("a@日本。jp", "a@xn--wgv71a.jp"),
        ("a@пример.рф", "a@xn--e1afmkfd.xn--p1ai"),
        ("a@ελλάδα.gr", "a@xn--hxakic4aa.gr"),
        ("a@ｅｘａｍｐｌｅ.com", "a@example.com"),  # full-width is the same name after IDNA mapping
        ("a" * 64 + "@example.com", "a" * 64 + "@example.com"),
    ],
)
def test_normalize_email_accepts_and_canonicalises(given_: str, expected: str) -> None:
    assert normalize_email(given_) == expected


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("", "missing"),
        ("   ", "missing"),
        ("alice.example.com", "exactly one @"),
        ("a@b@example.com", "exactly one @"),
        ("alice＠example.com", "exactly one @"),
        ("al ice@example.com", "spaces or control"),
        ("alice@example.com\x00", "spaces or control"),
        ("alice\r\n@example.com", "spaces or control"),
        ("ali\u200bce@example.com", "spaces or control"),  # zero-width space
        ("alice@exa\u202emple.com", "spaces or control"),  # right-to-left override
        ("аlice@example.com", "local part must be ASCII"),  # Cyrillic а
        ("Ⓐlice@example.com", "local part must be ASCII"),
        ("@example.com", "local part is malformed"),
        (".alice@example.com", "local part is malformed"),
        ("alice.@example.com", "local part is malformed"),
        ("al..ice@example.com", "local part is malformed"),
        ('"al ice"@example.com', "spaces or control"),
        ('"alice"@example.com', "local part is malformed"),
        ("a" * 65 + "@example.com", "local part is malformed"),
        ("alice@", "domain is missing"),
        ("alice@localhost", "must have a dot"),
        ("alice@1.2.3.4", "not an address"),
        ("alice@[127.0.0.1]", "malformed"),
        ("alice@example..com", "empty label"),
        ("alice@.example.com", "empty label"),
        ("alice@-example.com", "malformed"),
        ("alice@example-.com", "malformed"),
        ("alice@exa_mple.com", "malformed"),
        ("alice@" + "a" * 64 + ".com", "malformed"),
        ("alice@xn--zz.com", "not a valid internationalised name"),
        ("alice@аpple.com", "mixes scripts"),  # Cyrillic а + Latin
        ("alice@аррӏе.com", "look-alike"),  # all Cyrillic, spells "apple"
        ("alice@xn--80ak6aa92e.com", "look-alike"),  # the same, typed as punycode
        ("alice@straße.de", "IDNA 2003 and 2008"),
        ("alice@♥.com", "letters, digits and hyphens"),
        ("alice@-ü.de", "malformed"),
        ("alice@ü-.de", "malformed"),
        ("alice@λ\u037aμ.gr", "malformed"),  # nameprep turns U+037A into a space
        ("alice@ü" + "x" * 70 + ".de", "not a valid internationalised name"),
    ],
)
def test_normalize_email_refuses(value: str, detail: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        normalize_email(value)
    assert detail in info.value.detail
    assert info.value.status == 400
    assert info.value.code == "InvalidRequest"


def test_normalize_email_latin_with_han_allowed() -> None:
    # UTS #39 "highly restrictive" allows Latin mixed with Han and kana.
    result = normalize_email("a@sony音楽.jp")
    _, domain = result.split("@")
    label = domain.split(".")[0]
    assert label.startswith("xn--sony-")
    assert label.encode().decode("idna") == "sony音楽"


def test_normalize_email_length_limit_254() -> None:
    local = "a" * 64
    domain = ".".join(["b" * 63, "c" * 63, "d" * 57]) + ".com"  # 189 characters
    ok = f"{local}@{domain}"
    assert len(ok) == 254
    assert normalize_email(ok) == ok
    with pytest.raises(InvalidRequest, match="longer than 254"):
        normalize_email(f"{local}@{domain}".replace(".com", ".coms"))


def test_normalize_email_huge_input_refused_early() -> None:
    with pytest.raises(InvalidRequest, match="longer than 254"):
        normalize_email("a" * 100_000 + "@example.com")


def test_normalize_email_long_domain_refused() -> None:
    domain = ".".join(["b" * 63] * 4) + ".com"  # 259 characters
    with pytest.raises(InvalidRequest, match="domain is too long"):
        normalize_email(f"a@{domain}"[:1000])


def test_normalize_email_non_string_refused() -> None:
    bad: Any = 5
    with pytest.raises(InvalidRequest, match="must be a string"):
        normalize_email(bad)


@given(st.emails())
def test_normalize_email_is_idempotent(email: str) -> None:
    try:
        once = normalize_email(email)
    except InvalidRequest:
        return
    assert normalize_email(once) == once
    assert once.isascii()
    assert once == once.lower()
    assert len(once) <= 254


@given(st.text(max_size=300))
def test_normalize_email_any_text_accepts_ascii_or_refuses(text: str) -> None:
    try:
        result = normalize_email(text)
    except InvalidRequest:
        return
    assert result.isascii()
    assert result.count("@") == 1


@pytest.mark.parametrize(
    ("email", "masked"),
    [("alice@example.com", "a***@e***"), ("b@xn--bcher-kva.de", "b***@x***"), ("nodomain", "n***@***")],
)
def test_mask_email(email: str, masked: str) -> None:
    assert mask_email(email) == masked
