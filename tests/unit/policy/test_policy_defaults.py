"""The default policies, word for word, and the role × action × resource table that they decide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from updown.errors import ConfigError
from updown.policy import (
    DEFAULT_ROLE_POLICIES,
    NO_STATEMENT,
    PolicyStore,
    Request,
    default_documents,
)

TABLE = yaml.safe_load((Path(__file__).parent / "default_policies.yaml").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = TABLE["cases"]
STORE = PolicyStore.from_settings()
CALLER = "eu-local:aaa"


def _case_id(case: dict[str, Any]) -> str:
    context = ",".join(f"{k}={v}" for k, v in (case.get("context") or {}).items())
    who = "+".join(case["roles"]) or "none"
    identity = case.get("identity", CALLER)
    return f"{who}|{case['action']}|{case['resource']}|{identity}|{context}"


def test_default_documents_word_for_word_match_the_table() -> None:
    assert default_documents() == TABLE["policies"]


def test_default_role_policies_match_the_table() -> None:
    assert {role: list(names) for role, names in DEFAULT_ROLE_POLICIES.items()} == TABLE["roles"]


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_default_policies_table_row_gives_expected_effect(case: dict[str, Any]) -> None:
    request = Request(
        action=case["action"],
        resource=case["resource"],
        identity_id=case.get("identity", CALLER),
        context=case.get("context"),
    )
    decision = STORE.evaluate(case["roles"], request)
    assert decision.effect == case["effect"]
    assert decision.statement == case.get("statement")
    if decision.effect == "Deny":
        assert decision.describe().startswith(f"Deny {NO_STATEMENT}")


def test_default_policies_every_statement_decides_some_table_row() -> None:
    labels = {s.label for p in STORE.policies.values() for s in p.statements}
    decided = {c["statement"] for c in CASES if "statement" in c}
    assert labels == decided


def test_default_documents_other_bucket_names_that_bucket() -> None:
    store = PolicyStore.from_settings(bucket="media")
    allowed = store.evaluate("guest", Request("s3:GetObject", "media/public/a.jpg"))
    elsewhere = store.evaluate("guest", Request("s3:GetObject", "files/public/a.jpg"))
    assert (allowed.effect, elsewhere.effect) == ("Allow", "Deny")


@pytest.mark.parametrize("bucket", ["", "Files", "a", "files/*", "files*", "-files"])
def test_default_documents_bad_bucket_raises_config_error(bucket: str) -> None:
    with pytest.raises(ConfigError, match="bucket"):
        default_documents(bucket)


def test_default_documents_each_call_returns_fresh_dicts() -> None:
    first = default_documents()
    first["guest-storage"]["Statement"].clear()
    assert default_documents()["guest-storage"]["Statement"]
