"""Storage keys: the one place that decides which keys and names are acceptable.

Keys are validated once, here, after the transport decoded them once (``%2e%2e`` in a URL path
arrives as ``..``). Pure: stdlib only.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from updown.errors import InvalidKey, InvalidRequest

MAX_KEY_BYTES: Final = 1024
ACCESS_LEVELS: Final = ("public", "protected", "private")

# `<region>:<uuid>`, the shape Cognito identity ids have (e.g. `us-east-1:5f0c...`, `eu-local:...`).
_IDENTITY_ID = re.compile(
    r"[a-z][a-z0-9-]{0,31}:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
)


@dataclass(frozen=True, slots=True)
class ObjectKeyParts:
    """A key under an access level, split: ``identity_id`` is None for ``public``."""

    access_level: str
    identity_id: str | None
    name: str


def validate_key(key: str) -> str:
    """Return the NFC form of ``key`` if it is an acceptable storage key.

    Rules, checked on the NFC form: not empty; at most 1024 bytes of UTF-8; no leading ``/``;
    no ``.`` or ``..`` segment; no backslash; no control character (C0, DEL, C1) and no lone
    surrogate. Empty segments (``a//b``, a trailing ``/`` as folder markers have) are valid S3
    keys and allowed here; a client's *name* (`validate_name`) may have none. A literal ``%`` is
    allowed (S3 allows it), but a key that would break one of the rules above if some layer
    decoded it once more (``%2e%2e``, ``%2f``-led, ``%00``, ``%5c``) is refused too: a proxy or
    client library that decodes twice must not turn a stored key into a traversal.

    Raises:
        InvalidKey: with a one-line reason.
    """
    return _validate(key, "key", empty_segments=True)


def validate_name(name: str) -> str:
    """Return the NFC form of a client-given relative ``name``; the rules of `validate_key`, and
    no empty segment (``a//b``, a trailing ``/``: folders are implied by prefixes, never named).

    Raises:
        InvalidKey: with a one-line reason.
    """
    return _validate(name, "name", empty_segments=False)


def validate_identity_id(identity_id: str) -> str:
    """Return ``identity_id`` if it has the ``<region>:<uuid>`` shape (lower-case).

    Raises:
        InvalidRequest: the id is malformed.
    """
    if not isinstance(identity_id, str) or _IDENTITY_ID.fullmatch(identity_id) is None:
        raise InvalidRequest("identityId must look like <region>:<uuid>")
    return identity_id


def object_key(access_level: str, identity_id: str | None, name: str) -> str:
    """Build the storage key for a client's ``name`` at ``access_level``, as Amplify lays it out.

    ``public/<name>``, ``protected/<identityId>/<name>``, ``private/<identityId>/<name>``.

    Raises:
        InvalidRequest: unknown access level, or a missing or malformed identity id.
        InvalidKey: the name (or the whole key) fails validation.
    """
    if access_level not in ACCESS_LEVELS:
        raise InvalidRequest("accessLevel must be one of public, protected, private")
    clean = validate_name(name)
    if access_level == "public":
        key = f"public/{clean}"
    else:
        if identity_id is None:
            raise InvalidRequest(f"identityId is required for accessLevel {access_level}")
        key = f"{access_level}/{validate_identity_id(identity_id)}/{clean}"
    # The prefix adds bytes: the whole key must still fit.
    return validate_key(key)


def parse_object_key(key: str) -> ObjectKeyParts | None:
    """Split a key built by `object_key`; None when the key is not under an access level.

    Raises:
        InvalidKey: the key itself fails validation.
    """
    clean = validate_key(key)
    level, _, rest = clean.partition("/")
    if level == "public" and rest:
        return ObjectKeyParts("public", None, rest)
    if level in ("protected", "private"):
        identity_id, _, name = rest.partition("/")
        if name and _IDENTITY_ID.fullmatch(identity_id):
            return ObjectKeyParts(level, identity_id, name)
    return None


def _validate(value: str, what: str, *, empty_segments: bool) -> str:
    if not isinstance(value, str):
        raise InvalidKey(f"the {what} must be a string")
    if not value:
        raise InvalidKey(f"the {what} is empty")
    if _SURROGATE.search(value):
        # Checked before NFC: normalisation and encoding both choke on lone surrogates.
        raise InvalidKey(f"the {what} is not valid Unicode")
    clean = unicodedata.normalize("NFC", value)
    size = len(clean.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise InvalidKey(f"the {what} is {size} bytes of UTF-8; the limit is {MAX_KEY_BYTES}")
    reason = _unsafe(clean)
    if reason is None and not empty_segments and ("//" in clean or clean.endswith("/")):
        reason = "has an empty segment"
    if reason is None and "%" in clean:
        decoded = unquote(clean, errors="replace")
        if decoded != clean and (again := _unsafe(decoded)) is not None:
            reason = f"{again} once percent-decoded"
    if reason is not None:
        raise InvalidKey(f"the {what} {reason}")
    return clean


def _unsafe(value: str) -> str | None:
    """The reason ``value`` is unsafe as a key, or None. Emptiness is the caller's business."""
    if value.startswith("/"):
        return "starts with /"
    if "\\" in value:
        return "contains a backslash"
    if control := _CONTROL.search(value):
        return f"contains the control character U+{ord(control.group()):04X}"
    for segment in value.split("/"):
        if segment in (".", ".."):
            return f"contains a {segment!r} segment"
    return None


# One scan each, in C: a loop over the characters in Python was a tenth of an initiate's time.
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
