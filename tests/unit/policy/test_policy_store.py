"""The policy store: defaults, overrides from settings, roles, and its per-action plan cache."""

from __future__ import annotations

import pytest

from updown.errors import ConfigError, PolicyError
from updown.policy import AUTHENTICATED_POLICY, GUEST_POLICY, PolicyStore, Request
from updown.policy import store as store_module

EXTRA = {
    "Version": "2012-10-17",
    "Statement": {"Sid": "Uploads", "Effect": "Allow", "Action": "s3:PutObject", "Resource": "files/uploads/*"},
}


def test_policy_store_defaults_map_each_role_to_its_policy() -> None:
    store = PolicyStore.from_settings()
    assert dict(store.roles) == {
        "guest": ("guest-storage",),
        "authenticated": ("authenticated-storage",),
        "admin": ("admin-storage", "admin-api"),
        "service": ("service-storage",),
        "cdn": ("cdn-public-read",),
        "event-uploader": ("event-uploader-storage",),
    }
    assert set(store.policies) == {
        "guest-storage",
        "authenticated-storage",
        "admin-storage",
        "admin-api",
        "event-uploader-storage",
        "service-storage",
        "cdn-public-read",
    }


def test_policy_store_settings_add_a_policy_to_a_role() -> None:
    store = PolicyStore.from_settings(
        role_policies={"authenticated": [AUTHENTICATED_POLICY, "uploads"]}, documents={"uploads": EXTRA}
    )
    decision = store.evaluate("authenticated", Request("s3:PutObject", "files/uploads/event_1/p.jpg"))
    assert (decision.effect, decision.statement) == ("Allow", "uploads#Uploads")
    assert store.roles["guest"] == (GUEST_POLICY,)


def test_policy_store_settings_replace_a_default_document() -> None:
    store = PolicyStore.from_settings(documents={GUEST_POLICY: EXTRA})
    assert store.evaluate("guest", Request("s3:GetObject", "files/public/a")).effect == "Deny"
    assert store.evaluate("guest", Request("s3:PutObject", "files/uploads/a")).effect == "Allow"


def test_policy_store_settings_json_text_document_loads() -> None:
    text = '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}'
    store = PolicyStore.from_settings(role_policies={"robot": ["everything"]}, documents={"everything": text})
    assert store.evaluate("robot", Request("s3:DeleteObject", "x/y")).statement == "everything#0"


def test_policy_store_role_naming_unknown_policy_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="'guest' names unknown policy 'nope'"):
        PolicyStore.from_settings(role_policies={"guest": ["nope"]})


def test_policy_store_role_given_one_string_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="must list policy names"):
        PolicyStore.from_settings(role_policies={"guest": "guest-storage"})


def test_policy_store_malformed_document_raises_policy_error_with_name_and_path() -> None:
    with pytest.raises(PolicyError, match=r"policy 'broken': \$\.Statement\.Effect"):
        PolicyStore.from_settings(documents={"broken": {"Version": "2012-10-17", "Statement": {"Effect": "?"}}})


def test_policy_store_policies_for_lists_each_policy_once() -> None:
    store = PolicyStore.from_settings(role_policies={"both": [GUEST_POLICY, AUTHENTICATED_POLICY]})
    names = [p.name for p in store.policies_for(["guest", "both", "unknown"])]
    assert names == [GUEST_POLICY, AUTHENTICATED_POLICY]


def test_policy_store_role_with_no_policies_denies() -> None:
    store = PolicyStore.from_settings(role_policies={"guest": []})
    assert store.evaluate("guest", Request("s3:GetObject", "files/public/a")).effect == "Deny"


def test_policy_store_plan_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "_PLAN_CACHE_LIMIT", 3)
    store = PolicyStore.from_settings()
    effects = [store.evaluate("guest", Request(f"s3:Action{i}", "files/public/a")).effect for i in range(10)]
    assert effects == ["Deny"] * 10
    assert len(store._plans) <= 3
    assert store.evaluate("guest", Request("s3:GetObject", "files/public/a")).effect == "Allow"
