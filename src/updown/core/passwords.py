"""Passwords: the policy a new password must pass, and argon2id hashing and verification.

Every password is NFKC-normalised before it is checked or hashed, so the same password typed on
another keyboard, OS or input method (composed vs decomposed accents, full-width digits, ligatures)
still verifies; NIST SP 800-63B §5.1.1.2 asks for exactly this.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.resources
import secrets
import unicodedata
from dataclasses import dataclass

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from updown.errors import InvalidPassword, ServerError

MIN_LENGTH = 8
LONG_ENOUGH = 12
MAX_LENGTH = 1024
MIN_CLASSES = 3
MIN_DISTINCT = 4
MAX_AFFIX = 6

# One-character leet substitutions crackers try first; "1" is tried as both "i" and "l".
_LEET_I = str.maketrans({"@": "a", "4": "a", "0": "o", "3": "e", "1": "i", "!": "i", "$": "s", "5": "s", "7": "t"})
_LEET_L = str.maketrans({"@": "a", "4": "a", "0": "o", "3": "e", "1": "l", "!": "i", "$": "s", "5": "s", "7": "t"})
# A password that is a run of one of these (forwards or backwards) is a sequence, not a secret.
_SEQUENCES = (
    "0123456789" * 4,
    "abcdefghijklmnopqrstuvwxyz" * 2,
    "qwertyuiopasdfghjklzxcvbnm" * 2,
    "1234567890qwertyuiopasdfghjklzxcvbnm",
    "qwertzuiopasdfghjklyxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
)


@dataclass(frozen=True)
class Argon2Params:
    """argon2id cost. The default is OWASP's "m=19456 (19 MiB), t=2, p=1": about 17 ms a hash on
    this project's 2-core reference box, and a small memory peak when many sign-ins run at once."""

    time_cost: int = 2
    memory_cost: int = 19_456  # KiB
    parallelism: int = 1


DEFAULT_PARAMS = Argon2Params()


def normalize(password: str) -> str:
    """The form that is checked and hashed: NFKC."""
    return unicodedata.normalize("NFKC", password)


class PasswordHasher:
    """argon2id hashing with fixed parameters; safe to share between threads."""

    def __init__(self, params: Argon2Params = DEFAULT_PARAMS) -> None:
        self.params = params
        self._hasher = argon2.PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_cost,
            parallelism=params.parallelism,
            type=argon2.Type.ID,
        )
        self._dummy_hash: str | None = None

    def hash(self, password: str) -> str:
        """The PHC string (``$argon2id$v=19$m=…``) of the NFKC form; salt from the OS CSPRNG."""
        return self._hasher.hash(normalize(password))

    def verify(self, stored: str, password: str) -> bool:
        """True when ``password`` matches ``stored``. The comparison inside argon2 is constant time.

        Raises:
            ServerError: ``stored`` is not an argon2 hash (a corrupt row is our fault, not the caller's).
        """
        candidate = normalize(password)
        if len(candidate) > MAX_LENGTH:
            # No stored password can be this long; spend the same time anyway.
            return self.dummy_verify(password)
        try:
            return self._hasher.verify(stored, candidate)
        except InvalidHashError as exc:
            raise ServerError("stored password hash is malformed") from exc
        except VerificationError:  # VerifyMismatchError is a subclass
            return False

    def needs_rehash(self, stored: str) -> bool:
        """True when ``stored`` was made with other parameters (rehash after a successful sign-in)."""
        return self._hasher.check_needs_rehash(stored)

    def dummy_verify(self, password: str) -> bool:
        """Cost one real verification and return False: for unknown users, so timing tells nothing."""
        if self._dummy_hash is None:
            # Benign race: two threads may both compute one; either is a fine dummy.
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(24))
        with contextlib.suppress(VerificationError):
            self._hasher.verify(self._dummy_hash, normalize(password)[:MAX_LENGTH])
        return False


_default = PasswordHasher()


def hash_password(password: str) -> str:
    """Hash with the default parameters (see :class:`PasswordHasher`)."""
    return _default.hash(password)


def verify(stored: str, password: str) -> bool:
    """Verify with the default hasher (see :meth:`PasswordHasher.verify`)."""
    return _default.verify(stored, password)


def needs_rehash(stored: str) -> bool:
    return _default.needs_rehash(stored)


def dummy_verify(password: str) -> bool:
    return _default.dummy_verify(password)


def check_password(password: str, *, email: str | None = None) -> None:
    """Refuse a new password that breaks the policy; return None when it passes.

    The policy, on the NFKC form, lengths counted in code points (NIST: one character each):

    1. at most 1024 characters (before and after normalisation) — longer is refused, never truncated
       (argon2 has no 72-byte limit, unlike bcrypt, so nothing would be silently dropped anyway);
    2. no control characters (Unicode category Cc: NUL, tab, newlines, ...);
    3. 12 characters or more; or 8 to 11 characters using at least 3 of the 4 classes: lower-case
       letter, upper-case letter, digit, other (anything that is not a cased letter or a digit);
    4. at least 4 distinct characters, and not a run of digits, the alphabet or a keyboard row;
    5. not a common password, compared case-insensitively: the password itself, or it with up to
       6 leading/trailing non-letters removed in all (``Password123!`` → ``password``,
       ``trustno1!`` → ``trustno1``), each also with
       leet substitutions undone (``p@ssw0rd`` → ``password``), must not be in
       ``common_passwords.txt``;
    6. it must not contain the email's local part (when that is 4 characters or more) or equal the
       email address.

    Raises:
        InvalidPassword: with the first rule broken, in words a user can act on.
    """
    if len(password) > MAX_LENGTH:
        raise InvalidPassword(f"password must be at most {MAX_LENGTH} characters")
    pw = normalize(password)
    if len(pw) > MAX_LENGTH:
        raise InvalidPassword(f"password must be at most {MAX_LENGTH} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in pw):
        raise InvalidPassword("password must not contain control characters")
    if len(pw) < MIN_LENGTH:
        raise InvalidPassword(f"password must be at least {MIN_LENGTH} characters")
    if len(pw) < LONG_ENOUGH and character_classes(pw) < MIN_CLASSES:
        raise InvalidPassword(
            f"password must be at least {LONG_ENOUGH} characters, or {MIN_LENGTH} characters with at least "
            f"{MIN_CLASSES} of: lower-case, upper-case, digit, symbol"
        )
    folded = pw.casefold()
    if len(set(folded)) < MIN_DISTINCT or _is_sequence(folded):
        raise InvalidPassword("password is too repetitive or sequential")
    if is_common(pw):
        raise InvalidPassword("password is too common")
    if email:
        address = normalize(email).strip().casefold()
        local = address.partition("@")[0]
        if folded == address or (len(local) >= 4 and local in folded):
            raise InvalidPassword("password must not contain the email address")


def character_classes(password: str) -> int:
    """How many of lower-case, upper-case, digit and other the password uses (0..4)."""
    lower = any(ch.islower() for ch in password)
    upper = any(ch.isupper() for ch in password)
    digit = any(ch.isdigit() for ch in password)
    other = any(not (ch.islower() or ch.isupper() or ch.isdigit()) for ch in password)
    return lower + upper + digit + other


def is_common(password: str) -> bool:
    """True when the password, or it without up to 6 leading/trailing non-letters, is a common one."""
    folded = normalize(password).casefold()
    common = _common_passwords()
    return any(
        candidate in common
        for form in _affix_trims(folded)
        for candidate in (form, form.translate(_LEET_I), form.translate(_LEET_L))
    )


def _affix_trims(folded: str) -> set[str]:
    """``folded`` with every split of at most MAX_AFFIX leading and trailing non-letters removed."""
    lead = 0
    while lead < min(MAX_AFFIX, len(folded)) and not folded[lead].isalpha():
        lead += 1
    trail = 0
    while trail < min(MAX_AFFIX, len(folded) - lead) and not folded[-1 - trail].isalpha():
        trail += 1
    return {
        folded[i : len(folded) - j]
        for i in range(lead + 1)
        for j in range(trail + 1)
        if i + j <= MAX_AFFIX and i + j < len(folded)
    }


def _is_sequence(folded: str) -> bool:
    return any(folded in seq or folded[::-1] in seq for seq in _SEQUENCES)


@functools.cache
def _common_passwords() -> frozenset[str]:
    text = importlib.resources.files("updown.core").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        normalize(line.strip()).casefold() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )
