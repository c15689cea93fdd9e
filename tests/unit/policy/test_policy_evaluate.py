"""The decision rule: explicit Deny > Allow > implicit Deny, NotAction/NotResource, reasons."""

from __future__ import annotations

from typing import Any

from updown.policy import NO_STATEMENT, Decision, Policy, PolicyStore, Request, evaluate, parse_policy
from updown.policy.evaluate import DOT_SEGMENT_REASON

ME = "eu-local:aaa"


def _policy(name: str, *statements: dict[str, Any]) -> Policy:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)}, name)


ALLOW_ALL = {"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"}


def test_evaluate_explicit_deny_overrides_allow_in_the_same_policy() -> None:
    policy = _policy(
        "p", ALLOW_ALL, {"Sid": "NoDelete", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "files/*"}
    )
    denied = evaluate([policy], Request("s3:DeleteObject", "files/a"))
    allowed = evaluate([policy], Request("s3:GetObject", "files/a"))
    assert denied == Decision("Deny", "p#NoDelete", "explicitly denied by statement p#NoDelete")
    assert allowed == Decision("Allow", "p#All", "allowed by statement p#All")


def test_evaluate_explicit_deny_in_another_role_overrides_allow() -> None:
    store = PolicyStore.from_settings(
        role_policies={"frozen": ["freeze"]},
        documents={
            "freeze": {
                "Version": "2012-10-17",
                "Statement": {"Sid": "Freeze", "Effect": "Deny", "Action": "s3:Put*", "Resource": "files/*"},
            }
        },
    )
    request = Request("s3:PutObject", f"files/private/{ME}/a", identity_id=ME)
    assert store.evaluate(["authenticated"], request).effect == "Allow"
    decision = store.evaluate(["authenticated", "frozen"], request)
    assert (decision.effect, decision.statement) == ("Deny", "freeze#Freeze")


def test_evaluate_no_applicable_statement_is_an_implicit_deny_with_reason() -> None:
    policy = _policy("p", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "files/public/*"})
    decision = evaluate([policy], Request("s3:GetObject", "files/private/x"))
    assert decision == Decision("Deny", None, f"{NO_STATEMENT} s3:GetObject on arn:aws:s3:::files/private/x")
    assert decision.allowed is False


def test_evaluate_no_policies_denies() -> None:
    assert evaluate([], Request("s3:GetObject", "files/a")).effect == "Deny"


def test_evaluate_not_action_allows_everything_but_the_listed_actions() -> None:
    policy = _policy("p", {"Effect": "Allow", "NotAction": ["s3:Delete*", "s3:PutObjectAcl"], "Resource": "files/*"})
    assert evaluate([policy], Request("s3:GetObject", "files/a")).effect == "Allow"
    assert evaluate([policy], Request("s3:PutObject", "files/a")).effect == "Allow"
    assert evaluate([policy], Request("s3:DeleteObject", "files/a")).effect == "Deny"
    assert evaluate([policy], Request("S3:PUTOBJECTACL", "files/a")).effect == "Deny"


def test_evaluate_not_resource_deny_fences_everything_outside_public() -> None:
    policy = _policy(
        "p",
        ALLOW_ALL,
        {"Sid": "OnlyPublic", "Effect": "Deny", "Action": "*", "NotResource": ["files/public/*", "files"]},
    )
    assert evaluate([policy], Request("s3:GetObject", "files/public/a")).effect == "Allow"
    assert evaluate([policy], Request("s3:ListBucket", "files")).effect == "Allow"
    decision = evaluate([policy], Request("s3:GetObject", "files/private/a"))
    assert (decision.effect, decision.statement) == ("Deny", "p#OnlyPublic")


def test_evaluate_not_resource_allow_matches_outside_the_list() -> None:
    policy = _policy("p", {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "files/private/*"})
    assert evaluate([policy], Request("s3:GetObject", "files/public/a")).effect == "Allow"
    assert evaluate([policy], Request("s3:GetObject", "files/private/a")).effect == "Deny"


def test_evaluate_deny_with_variable_without_value_does_not_apply() -> None:
    policy = _policy(
        "p",
        ALLOW_ALL,
        {"Sid": "NotHome", "Effect": "Deny", "Action": "*", "NotResource": "files/home/${aws:username}/*"},
    )
    # With a username the deny fences the user into their home; without one it does not apply.
    assert evaluate([policy], Request("s3:GetObject", "files/home/bob/a", username="bob")).effect == "Allow"
    assert evaluate([policy], Request("s3:GetObject", "files/home/eve/a", username="bob")).effect == "Deny"
    assert evaluate([policy], Request("s3:GetObject", "files/home/eve/a")).effect == "Allow"


def test_evaluate_dot_segment_blocks_allow_but_reports_explicit_deny_first() -> None:
    policy = _policy("p", ALLOW_ALL, {"Sid": "NoX", "Effect": "Deny", "Action": "*", "Resource": "files/x/*"})
    assert evaluate([policy], Request("s3:GetObject", "files/a/../b")) == Decision("Deny", None, DOT_SEGMENT_REASON)
    assert evaluate([policy], Request("s3:GetObject", "files/x/../b")).statement == "p#NoX"


def test_evaluate_dot_segment_in_s3_prefix_blocks_allow() -> None:
    policy = _policy("p", ALLOW_ALL)
    assert evaluate([policy], Request("s3:ListBucket", "files", prefix="a/../")).effect == "Deny"
    assert evaluate([policy], Request("s3:ListBucket", "files", context={"s3:prefix": "./"})).effect == "Deny"
    assert evaluate([policy], Request("s3:ListBucket", "files", prefix="a/.b/")).effect == "Allow"


def test_evaluate_first_applicable_allow_decides() -> None:
    policy = _policy(
        "p",
        {"Sid": "A", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "files/x/*"},
        {"Sid": "B", "Effect": "Allow", "Action": "s3:*", "Resource": "files/*"},
    )
    assert evaluate([policy], Request("s3:GetObject", "files/x/1")).statement == "p#A"
    assert evaluate([policy], Request("s3:GetObject", "files/y/1")).statement == "p#B"


def test_decision_describe_starts_with_effect_then_statement() -> None:
    allow = Decision("Allow", "p#A", "allowed by statement p#A")
    deny = Decision("Deny", None, "no statement allows s3:GetObject on x")
    assert allow.describe().splitlines() == ["Allow p#A", "allowed by statement p#A"]
    assert deny.describe().splitlines()[0] == "Deny no statement allows"


def test_decision_as_dict_omits_missing_statement() -> None:
    assert Decision("Allow", "p#A", "r").as_dict() == {"effect": "Allow", "statement": "p#A", "reason": "r"}
    assert Decision("Deny", None, "r").as_dict() == {"effect": "Deny", "reason": "r"}
