"""One-time codes sent by mail (email confirmation, password reset): making, hashing and checking them.

A code is stored only as an HMAC bound to the user and the purpose, so a code for one user or one
purpose never works for another, and a database dump reveals no code. Its life is a small state
machine over :class:`CodeState`: single use, an expiry, and a budget of wrong tries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from typing import Literal, NamedTuple, get_args

from updown.errors import ClientError, CodeMismatch, ConfigError, ExpiredCode

Purpose = Literal["confirm", "reset"]
PURPOSES: tuple[Purpose, ...] = get_args(Purpose)
# The longest a code may live, per purpose: a reset code grants an account, so it lives shortest.
MAX_TTL: dict[Purpose, int] = {"confirm": 24 * 3600, "reset": 3600}
MAX_TRIES = 5
MIN_DIGITS = 6
MAX_DIGITS = 10


def new_code(digits: int = MIN_DIGITS) -> str:
    """A uniformly random decimal code from the OS CSPRNG, zero-padded to ``digits``."""
    if not MIN_DIGITS <= digits <= MAX_DIGITS:
        raise ConfigError(f"codes must have {MIN_DIGITS}..{MAX_DIGITS} digits")
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def hash_code(code: str, *, user_id: str, purpose: str, secret: bytes) -> str:
    """HMAC-SHA256 over (purpose, user, code), hex; a JSON array keeps the fields unambiguous."""
    if len(secret) < 16:
        raise ConfigError("the code secret must be at least 16 bytes")
    message = json.dumps(["updown-code/v1", purpose, user_id, code], separators=(",", ":"))
    return hmac.new(secret, message.encode("utf-8"), hashlib.sha256).hexdigest()


def hashes_equal(a: str, b: str) -> bool:
    """Constant-time equality of two hashes (or any two strings)."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@dataclass(frozen=True)
class CodeState:
    """What the database stores for one outstanding code (one per user and purpose)."""

    hash: str
    purpose: str
    expires_at: float
    tries_left: int = MAX_TRIES
    used: bool = False


class CodeCheck(NamedTuple):
    """The verdict of :func:`check`: store ``state`` back whatever ``ok`` says."""

    ok: bool
    state: CodeState
    error: type[ClientError] | None


def issue(code: str, *, user_id: str, purpose: Purpose, secret: bytes, now: float, ttl: int | None = None) -> CodeState:
    """The state of a freshly sent code; ``ttl`` defaults to, and may not exceed, the purpose's maximum."""
    if purpose not in MAX_TTL:
        raise ConfigError(f"unknown code purpose {purpose!r}")
    limit = MAX_TTL[purpose]
    lifetime = limit if ttl is None else ttl
    if not 0 < lifetime <= limit:
        raise ConfigError(f"a {purpose} code lives 1..{limit} seconds")
    return CodeState(
        hash=hash_code(code, user_id=user_id, purpose=purpose, secret=secret),
        purpose=purpose,
        expires_at=now + lifetime,
    )


def check(state: CodeState, code: str, now: float, *, user_id: str, purpose: str, secret: bytes) -> CodeCheck:
    """Check ``code`` for ``user_id`` and the ``purpose`` the caller expects.

    Rules, in order: a used code, a code out of tries, or one at or past ``expires_at`` fails with
    ExpiredCode and changes nothing; otherwise a wrong code fails with CodeMismatch and costs one
    try (so the 5th wrong try is the last); the right code succeeds and is marked used.

    The caller must write ``state`` back with a compare-and-set on the old values, or two
    concurrent checks could both spend the same try or both use the same code.
    """
    if state.used or state.tries_left <= 0 or now >= state.expires_at:
        return CodeCheck(False, state, ExpiredCode)
    # Computed even for a badly formed code, so the answer takes the same time either way.
    candidate = hash_code(code, user_id=user_id, purpose=purpose, secret=secret)
    if purpose != state.purpose or not well_formed(code) or not hashes_equal(candidate, state.hash):
        return CodeCheck(False, replace(state, tries_left=state.tries_left - 1), CodeMismatch)
    return CodeCheck(True, replace(state, used=True), None)


def well_formed(code: str) -> bool:
    """ASCII digits only, MIN_DIGITS..MAX_DIGITS long (``str.isdigit`` would take "²" or "٣")."""
    return MIN_DIGITS <= len(code) <= MAX_DIGITS and code.isascii() and code.isdigit()
