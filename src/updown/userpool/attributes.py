"""User attributes a user may set on themselves, and the ones they may never touch."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from updown.errors import InvalidRequest

# Cognito's standard attributes a user may edit; email changes need a verification flow (not offered).
STANDARD = frozenset(
    {
        "name",
        "given_name",
        "family_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "picture",
        "profile",
        "website",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "phone_number",
        "address",
    }
)
_CUSTOM = re.compile(r"custom:[A-Za-z0-9_-]{1,20}")
# Anything that could grant a right is never user-editable, even as a custom attribute.
_ROLE_BEARING = re.compile(r"role|group|admin|permission|scope|tenant", re.IGNORECASE)
MAX_VALUE = 2048
MAX_ATTRIBUTES = 50


def validate_changes(changes: Mapping[str, Any]) -> dict[str, str | None]:
    """Checks a user's attribute update; ``None`` deletes an attribute.

    Raises:
        InvalidRequest: a name that is not editable (``sub``, ``email``, ``email_verified``,
            groups, ``cognito:*``, role-bearing custom attributes, unknown names) or a bad value.
    """
    out: dict[str, str | None] = {}
    for name, value in changes.items():
        if name in STANDARD:
            pass
        elif _CUSTOM.fullmatch(name):
            if _ROLE_BEARING.search(name):
                raise InvalidRequest(f"attribute {name} is role-bearing and cannot be set by users")
        else:
            raise InvalidRequest(f"attribute {name[:64]} cannot be changed by users")
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(f"attribute {name} must be a string or null")
        if value is not None and (len(value) > MAX_VALUE or any(ord(c) < 32 and c not in "\t\n" for c in value)):
            raise InvalidRequest(f"attribute {name} is longer than {MAX_VALUE} characters or has control characters")
        out[name] = value
    return out


def apply_changes(current: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    """The attributes after ``changes``; refuses more than MAX_ATTRIBUTES in all."""
    result = dict(current)
    for name, value in changes.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    if len(result) > MAX_ATTRIBUTES:
        raise InvalidRequest(f"a user has at most {MAX_ATTRIBUTES} attributes")
    return result
