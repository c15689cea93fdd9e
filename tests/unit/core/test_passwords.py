"""core.passwords: the policy table, common passwords, NFKC, argon2id hashing and dummy verification."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from updown.core import passwords
from updown.core.passwords import Argon2Params, PasswordHasher
from updown.errors import InvalidPassword, InvalidRequest, ServerError

CHEAP = Argon2Params(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(CHEAP)


# --- policy -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",  # long passphrase
        "vkq8 zmt2 plx",  # 13 characters, any classes
        "glimmerjackdaw",  # 14 lower-case letters only
        "Xk9#mq2L",  # 8 characters, 4 classes
        "Xk9mq2Lp",  # 8 characters, 3 classes (lower, upper, digit)
        "xk9#mq2l",  # 8 characters, 3 classes (lower, digit, symbol)
        "Tr0ub4dor&3",
        "monkey83920184756392018475",  # common word, but the affix is long and random
        "Ünïcödé-Pässwörd-7",
        "пароль-надёжный-42",
        "Ab1!" + "q" * 1019 + "z",  # exactly 1024 characters
    ],
)
def test_check_password_good_passwords_pass(password: str) -> None:
    assert passwords.check_password(password, email="alice@example.com") is None


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("", "at least 8"),
        ("Ab1!xyz", "at least 8"),
        ("abcdefgh", "at least 12"),  # 8, one class
        ("abcdefgh1", "at least 12"),  # 9, two classes
        ("ABCDEFGHij", "at least 12"),  # 10, two classes
        ("Kzq9mx\x00Lp", "control characters"),
        ("Kzq9mx\nLpwq", "control characters"),
        ("aaaaaaaaaaaaaaaa", "repetitive"),
        ("abababababababab", "repetitive"),
        ("abcdefghijklmnop", "sequential"),
        ("ponmlkjihgfedcba", "sequential"),
        ("123456789012345", "sequential"),
        ("qwertyuiopasdf", "sequential"),
        ("password", "at least 12"),  # the length rule is checked first
        ("Password1", "too common"),
        ("Trustno1", "too common"),
        ("Password123!", "too common"),
        ("PASSWORD1234", "too common"),
        ("p@ssw0rd!", "too common"),
        ("P4ssw0rd2024", "too common"),
        ("iloveyou2024!!", "too common"),
        ("!!Sunshine1234", "too common"),
        ("letmein123456", "too common"),
        ("Qwerty123456", "too common"),
        ("1qaz2wsx3edc", "too common"),
        ("trustno1!", "too common"),
        ("alice-is-great-2024", "email"),
        ("MyNameIsALICE!!", "email"),
        ("x" * 1025, "at most 1024"),
        ("\ufdfa" * 100, "at most 1024"),  # 100 characters, 1,800 after NFKC
    ],
)
def test_check_password_bad_passwords_refused(password: str, reason: str) -> None:
    with pytest.raises(InvalidPassword) as info:
        passwords.check_password(password, email="alice@example.com")
    assert reason in info.value.detail
    assert isinstance(info.value, InvalidRequest)
    assert info.value.status == 400
    assert info.value.code == "InvalidPassword"


def test_check_password_equal_to_email_refused() -> None:
    with pytest.raises(InvalidPassword, match="email"):
        passwords.check_password("Bob@Example.com", email="bob@example.com")


def test_check_password_short_local_part_not_matched() -> None:
    # "bob" is too short to refuse every password containing it.
    assert passwords.check_password("kebob-grill-tonight", email="bob@example.com") is None


def test_check_password_without_email_passes() -> None:
    assert passwords.check_password("alice-is-great-2024") is None


def test_check_password_nfkc_counts_normalised_form() -> None:
    # Full-width "ｐａｓｓｗｏｒｄ１２３" is "password123" after NFKC: refused as common.
    with pytest.raises(InvalidPassword, match="too common"):
        passwords.check_password("ｐａｓｓｗｏｒｄ１２３４")


@pytest.mark.parametrize(
    ("password", "classes"),
    [("abc", 1), ("aB", 2), ("aB1", 3), ("aB1 ", 4), ("ÄÖü9", 3), ("東京", 1), ("!!", 1)],
)
def test_character_classes_counts(password: str, classes: int) -> None:
    assert passwords.character_classes(password) == classes


def test_common_passwords_list_loaded_and_sized() -> None:
    common = passwords._common_passwords()
    assert 1_000 <= len(common) <= 10_000
    for word in ("123456", "password", "qwerty", "iloveyou", "dragon", "monkey", "letmein"):
        assert word in common
    assert all(entry == entry.casefold() for entry in common)


@pytest.mark.parametrize("word", ["123456", "PASSWORD", "QwErTy", "iloveyou", "p4ssw0rd", "l3tm31n"])
def test_is_common_case_and_leet_insensitive(word: str) -> None:
    assert passwords.is_common(word)


def test_is_common_long_affix_not_stripped() -> None:
    assert not passwords.is_common("dragon#######")  # 7 symbols: more than the 6 allowed
    assert passwords.is_common("dragon######")
    assert passwords.is_common("12!!trustno1!!")
    assert not passwords.is_common("!!!!!!!!")


# --- hashing ----------------------------------------------------------------------------------------


def test_hash_verify_round_trip(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert hasher.verify(stored, "correct horse battery staple")
    assert not hasher.verify(stored, "correct horse battery stapl")
    assert not hasher.verify(stored, "Correct horse battery staple")


def test_hash_same_password_different_salts(hasher: PasswordHasher) -> None:
    assert hasher.hash("same password here") != hasher.hash("same password here")


def test_verify_nfkc_equivalent_forms_match(hasher: PasswordHasher) -> None:
    composed = "caf\u00e9-cr\u00e8me-br\u00fbl\u00e9e"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    stored = hasher.hash(composed)
    assert hasher.verify(stored, decomposed)
    fullwidth = "ｓｅｃｒｅｔ１２３４５６"
    assert hasher.verify(hasher.hash(fullwidth), "secret123456")


def test_verify_long_password_not_truncated(hasher: PasswordHasher) -> None:
    # bcrypt would ignore everything past 72 bytes; argon2 must not.
    base = "x" * 100
    stored = hasher.hash(base + "A")
    assert hasher.verify(stored, base + "A")
    assert not hasher.verify(stored, base + "B")


def test_verify_oversized_password_false(hasher: PasswordHasher) -> None:
    stored = hasher.hash("y" * 1024)
    assert hasher.verify(stored, "y" * 1024)
    assert not hasher.verify(stored, "y" * 1025)


def test_verify_malformed_hash_raises_server_error(hasher: PasswordHasher) -> None:
    with pytest.raises(ServerError):
        hasher.verify("not-a-hash", "whatever password")


def test_verify_corrupt_hash_false(hasher: PasswordHasher) -> None:
    stored = hasher.hash("whatever password")
    head, _, tail = stored.rpartition("$")
    assert not hasher.verify(head + "$" + tail[::-1], "whatever password")


def test_needs_rehash_after_parameter_change(hasher: PasswordHasher) -> None:
    stored = hasher.hash("whatever password")
    assert not hasher.needs_rehash(stored)
    assert PasswordHasher(Argon2Params(time_cost=2, memory_cost=8, parallelism=1)).needs_rehash(stored)


def test_dummy_verify_always_false(hasher: PasswordHasher) -> None:
    assert hasher.dummy_verify("anything") is False
    assert hasher.dummy_verify("x" * 5000) is False


def test_dummy_verify_costs_like_verify() -> None:
    h = PasswordHasher(Argon2Params(time_cost=1, memory_cost=4096, parallelism=1))
    stored = h.hash("the real password")
    h.dummy_verify("warm up")
    real, dummy = [], []
    for _ in range(9):  # interleaved, so drift on a shared box hits both alike
        t0 = time.perf_counter()
        h.verify(stored, "a wrong password")
        t1 = time.perf_counter()
        h.dummy_verify("a wrong password")
        t2 = time.perf_counter()
        real.append(t1 - t0)
        dummy.append(t2 - t1)
    # The minimum is the intrinsic cost; other processes on the box only ever add to a run.
    ratio = min(dummy) / min(real)
    assert 0.5 <= ratio <= 2.0, ratio


def test_default_parameters_hash_and_verify() -> None:
    # The one test of the real (OWASP) parameters; the rest use cheap ones.
    stored = passwords.hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify(stored, "correct horse battery staple")
    assert not passwords.verify(stored, "wrong horse battery staple")
    assert not passwords.needs_rehash(stored)
    assert passwords.dummy_verify("x") is False


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_verify_matches_only_its_nfkc_form(password: str) -> None:
    h = PasswordHasher(CHEAP)
    stored = h.hash(password)
    assert h.verify(stored, password)
    assert h.verify(stored, unicodedata.normalize("NFKC", password))
    assert not h.verify(stored, password + "x")
