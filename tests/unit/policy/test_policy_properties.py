"""Properties of the default policies over generated identities, keys and requests."""

from __future__ import annotations

import string

from hypothesis import assume, given
from hypothesis import strategies as st

from updown.policy import PolicyStore, Request

STORE = PolicyStore.from_settings()
NON_ADMIN_ROLES = st.sampled_from([("guest",), ("authenticated",), ("guest", "authenticated")])
ACTIONS = st.sampled_from(
    ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:*", "S3:GETOBJECT", "s3:getobject"]
)
# Identity ids with the characters that could confuse a matcher: wildcards, dots, slashes, "$".
TRICKY = string.ascii_letters + string.digits + "-:_.*?/${}"
IDENTITIES = st.text(alphabet=TRICKY, max_size=12)
SEGMENT = st.text(alphabet=TRICKY.replace("/", ""), min_size=1, max_size=12)
NAMES = st.lists(st.text(alphabet=string.ascii_letters + "./*?", min_size=0, max_size=8), min_size=1, max_size=4).map(
    "/".join
)
# How the other identity relates to the caller's: the traps are prefixes and case.
TRAPS = st.sampled_from(["independent", "extends", "shortens", "swapcase"])
FORMS = st.sampled_from(["files/{}", "arn:aws:s3:::files/{}"])


def _other(me: str, suffix: str, trap: str) -> str:
    other = {"independent": suffix, "extends": me + suffix, "shortens": me[:-1], "swapcase": me.swapcase()}[trap]
    assume(other and "/" not in other and other != me)
    return other


@given(
    me=IDENTITIES,
    suffix=SEGMENT,
    trap=TRAPS,
    name=NAMES,
    roles=NON_ADMIN_ROLES,
    action=ACTIONS,
    form=FORMS,
    owner=st.none() | IDENTITIES,
    username=st.none() | IDENTITIES,
)
def test_default_policies_other_identity_private_key_never_allowed(
    me: str,
    suffix: str,
    trap: str,
    name: str,
    roles: tuple[str, ...],
    action: str,
    form: str,
    owner: str | None,
    username: str | None,
) -> None:
    other = _other(me, suffix, trap)
    request = Request(
        action=action,
        resource=form.format(f"private/{other}/{name}"),
        identity_id=me,
        user_sub=me,
        username=username,
        object_owner=owner,
    )
    decision = STORE.evaluate(roles, request)
    assert decision.effect == "Deny", decision


@given(me=IDENTITIES, suffix=SEGMENT, trap=TRAPS, rest=NAMES, roles=NON_ADMIN_ROLES, form=FORMS)
def test_default_policies_listing_other_identity_private_prefix_never_allowed(
    me: str, suffix: str, trap: str, rest: str, roles: tuple[str, ...], form: str
) -> None:
    other = _other(me, suffix, trap)
    request = Request(
        action="s3:ListBucket", resource=form.format("")[:-1], identity_id=me, prefix=f"private/{other}/{rest}"
    )
    assert STORE.evaluate(roles, request).effect == "Deny"


LEVELS = st.sampled_from(["public/", "protected/{me}/", "private/{me}/", "protected/", "PUBLIC/", "", "private/{me}x/"])


@given(me=SEGMENT, level=LEVELS, name=NAMES, action=ACTIONS, owner=st.none() | IDENTITIES | st.just("{me}"))
def test_default_policies_authenticated_writes_stay_in_public_or_own_folders(
    me: str, level: str, name: str, action: str, owner: str | None
) -> None:
    key = level.replace("{me}", me) + name
    owner = owner.replace("{me}", me) if owner == "{me}" else owner
    resource = f"files/{key}"
    request = Request(action=action, resource=resource, identity_id=me, object_owner=owner)
    decision = STORE.evaluate(("authenticated",), request)
    if decision.allowed and action.lower() in ("s3:putobject", "s3:deleteobject"):
        assert key.startswith(("public/", f"protected/{me}/", f"private/{me}/"))
        assert ".." not in key.split("/")
        if key.startswith("public/"):
            assert owner is None or owner == me


@given(level=LEVELS, name=NAMES, action=ACTIONS, me=SEGMENT)
def test_default_policies_guest_reads_public_only(level: str, name: str, action: str, me: str) -> None:
    key = level.replace("{me}", me) + name
    decision = STORE.evaluate(("guest",), Request(action=action, resource=f"files/{key}", identity_id=me))
    if decision.allowed:
        assert action.lower() == "s3:getobject"
        assert key.startswith("public/")
        assert not {".", ".."} & set(key.split("/"))
