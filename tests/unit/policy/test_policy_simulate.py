"""``policy simulate``: context pairs and the answer's two shapes."""

from __future__ import annotations

import pytest

from updown.errors import InvalidRequest
from updown.policy import PolicyStore, parse_context, simulate

STORE = PolicyStore.from_settings()
ME = "eu-local:aaa"


def test_parse_context_pairs_become_a_mapping_with_lists_for_repeats() -> None:
    assert parse_context(["s3:prefix=public/", "updown:groups=a", "updown:groups=b", "k=a=b", "e="]) == {
        "s3:prefix": "public/",
        "updown:groups": ["a", "b"],
        "k": "a=b",
        "e": "",
    }


@pytest.mark.parametrize("bad", ["novalue", "=x", " =x"])
def test_parse_context_entry_without_key_raises_invalid_request(bad: str) -> None:
    with pytest.raises(InvalidRequest, match="is not key=value"):
        parse_context([bad])


def test_simulate_cli_pairs_allow_listing_own_private_prefix() -> None:
    decision = simulate(
        STORE,
        role="authenticated",
        action="s3:ListBucket",
        resource="arn:aws:s3:::files",
        identity_id=ME,
        context=[f"s3:prefix=private/{ME}/"],
    )
    assert decision.describe().splitlines()[0] == "Allow authenticated-storage#ListVisible"


def test_simulate_mapping_context_denies_overwriting_anothers_public_file() -> None:
    decision = simulate(
        STORE,
        role="authenticated",
        action="s3:PutObject",
        resource="files/public/a.jpg",
        identity_id=ME,
        context={"updown:ObjectOwner": "eu-local:bbb"},
    )
    assert decision.as_dict() == {
        "effect": "Deny",
        "reason": "no statement allows s3:PutObject on arn:aws:s3:::files/public/a.jpg",
    }


def test_simulate_without_identity_or_context_uses_role_alone() -> None:
    assert (
        simulate(STORE, role="guest", action="s3:GetObject", resource="files/public/a")
        .describe()
        .startswith("Allow guest-storage#PublicRead")
    )
    assert simulate(STORE, role="admin", action="s3:DeleteObject", resource="files/private/x/a").allowed
