"""The gate applies each role's default policies to principals as the access levels promise."""

from __future__ import annotations

import pytest

from updown.auth.principal import ANONYMOUS, Principal
from updown.clock import FrozenClock
from updown.errors import AccessDenied
from updown.files.access import DELETE, GET, LIST, PUT, AccessGate
from updown.policy import PolicyStore

ME = "us-east-1:11111111-1111-1111-1111-111111111111"
OTHER = "us-east-1:22222222-2222-2222-2222-222222222222"


def _gate() -> AccessGate:
    return AccessGate(PolicyStore.from_settings(), bucket="files", clock=FrozenClock())


def _user(identity: str = ME, groups: tuple[str, ...] = ()) -> Principal:
    roles = ("authenticated", *(g for g in groups))
    return Principal(
        kind="user", credential="access_token", identity_id=identity, sub="sub-1", groups=groups, roles=roles
    )


GUEST = Principal(kind="guest", credential="guest_token", identity_id=OTHER, roles=("guest",))


@pytest.mark.parametrize(
    ("principal", "action", "key", "facts", "allowed"),
    [
        (GUEST, GET, "public/a.jpg", {}, True),
        (GUEST, PUT, "public/a.jpg", {}, False),
        (GUEST, GET, f"protected/{ME}/a.jpg", {}, False),
        (ANONYMOUS, GET, "public/a.jpg", {}, False),
        (_user(), PUT, f"private/{ME}/a.jpg", {}, True),
        (_user(), GET, f"private/{OTHER}/a.jpg", {}, False),
        (_user(), GET, f"protected/{OTHER}/a.jpg", {}, True),
        (_user(), PUT, f"protected/{OTHER}/a.jpg", {}, False),
        (_user(), PUT, "public/new.jpg", {}, True),
        (_user(), PUT, "public/theirs.jpg", {"object_owner": OTHER}, False),
        (_user(), DELETE, "public/mine.jpg", {"object_owner": ME}, True),
        (_user(), DELETE, "public/theirs.jpg", {"object_owner": OTHER}, False),
        (_user(), GET, f"private/{ME}/../{OTHER}/a.jpg", {}, False),
        (_user(), LIST, None, {"prefix": f"private/{ME}/"}, True),
        (_user(), LIST, None, {"prefix": f"private/{OTHER}/"}, False),
        (_user(OTHER, ("admin",)), DELETE, f"private/{ME}/a.jpg", {}, True),
    ],
)
def test_access_gate_default_levels_decide_as_documented(
    principal: Principal, action: str, key: str | None, facts: dict[str, object], allowed: bool
) -> None:
    gate = _gate()
    assert gate.decide(principal, action, key, **facts).allowed is allowed  # type: ignore[arg-type]
    if allowed:
        gate.check(principal, action, key, **facts)
    else:
        with pytest.raises(AccessDenied) as info:
            gate.check(principal, action, key, **facts)
        assert info.value.detail == "access denied"
