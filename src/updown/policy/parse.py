"""The IAM JSON policy grammar: a document in, a compiled Policy out, or PolicyError naming the
JSON path of the first fault (e.g. ``$.Statement[1].Condition.StringLike``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from updown.errors import PolicyError
from updown.policy.conditions import Condition, compile_condition
from updown.policy.decision import Decision, Effect
from updown.policy.matching import Glob, compile_glob
from updown.policy.model import Policy, Statement
from updown.policy.request import to_arn
from updown.policy.variables import KNOWN_KEYS, POLICY_VERSION, tokenize

_VERSIONS = (POLICY_VERSION, "2008-10-17")
_DOCUMENT_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset({"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"})
_SID = re.compile(r"[A-Za-z0-9]+")
# "*", or service:name where the name may hold wildcards (s3:Get*, s3:*Object?).
_ACTION = re.compile(r"\*|[A-Za-z0-9-]+:[A-Za-z0-9*?_-]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if _IDENTIFIER.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def _fail(name: str, path: str, problem: str) -> PolicyError:
    return PolicyError(f"policy {name!r}: {path}: {problem}")


def _strings(value: object, path: str, name: str, what: str) -> list[tuple[str, str]]:
    """A string or a non-empty list of strings, each with its own path."""
    if isinstance(value, str):
        return [(value, path)]
    if isinstance(value, list) and value:
        out: list[tuple[str, str]] = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise _fail(name, f"{path}[{index}]", f"each {what} must be a non-empty string")
            out.append((item, f"{path}[{index}]"))
        return out
    raise _fail(name, path, f"{what} must be a string or a non-empty list of strings")


def _condition_values(value: object, path: str, name: str) -> list[tuple[str, str]]:
    # JSON numbers and booleans are allowed as condition values and read as their text.
    def text(item: object, where: str) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, str | int | float):
            return str(item)
        raise _fail(name, where, "a condition value must be a string, number or boolean")

    if isinstance(value, list):
        if not value:
            raise _fail(name, path, "a condition needs at least one value")
        return [(text(item, f"{path}[{i}]"), f"{path}[{i}]") for i, item in enumerate(value)]
    return [(text(value, path), path)]


def _one_of(raw: Mapping[str, Any], positive: str, negative: str, path: str, name: str) -> tuple[str, bool]:
    if (positive in raw) == (negative in raw):
        raise _fail(name, path, f"a statement needs exactly one of {positive} and {negative}")
    return (negative, True) if negative in raw else (positive, False)


def _conditions(raw: object, path: str, name: str, variables_allowed: bool) -> tuple[Condition, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise _fail(name, path, "Condition must be a non-empty object of operators")
    out: list[Condition] = []
    for op_name, block in raw.items():
        op_path = _key_path(path, op_name)
        if not isinstance(block, Mapping) or not block:
            raise _fail(name, op_path, "an operator takes a non-empty object of condition keys")
        for key, value in block.items():
            key_path = _key_path(op_path, key)
            if key.lower() not in KNOWN_KEYS:
                raise _fail(name, key_path, f"unknown condition key {key!r}")
            pairs = _condition_values(value, key_path, name)
            try:
                out.append(
                    compile_condition(
                        op_name,
                        key.lower(),
                        [v for v, _ in pairs],
                        key_path,
                        value_paths=[p for _, p in pairs],
                        variables_allowed=variables_allowed,
                    )
                )
            except PolicyError as exc:
                raise PolicyError(f"policy {name!r}: {exc.detail}") from exc
    return tuple(out)


def _statement(raw: object, path: str, index: int, name: str, version: str) -> Statement:
    if not isinstance(raw, Mapping):
        raise _fail(name, path, "a statement must be a JSON object")
    if "Principal" in raw or "NotPrincipal" in raw:
        raise _fail(name, path, "a role policy names no Principal (the role is the principal)")
    for key in raw:
        if key not in _STATEMENT_KEYS:
            raise _fail(name, _key_path(path, key), "unknown statement element")
    sid = raw.get("Sid")
    if sid is not None and (not isinstance(sid, str) or not _SID.fullmatch(sid)):
        raise _fail(name, f"{path}.Sid", "Sid must be letters and digits only")
    effect: Effect
    if raw.get("Effect") == "Allow":
        effect = "Allow"
    elif raw.get("Effect") == "Deny":
        effect = "Deny"
    else:
        raise _fail(name, f"{path}.Effect", 'Effect must be "Allow" or "Deny"')
    variables_allowed = version == POLICY_VERSION

    action_key, not_action = _one_of(raw, "Action", "NotAction", path, name)
    actions: list[Glob] = []
    for text, where in _strings(raw[action_key], f"{path}.{action_key}", name, "action"):
        if not _ACTION.fullmatch(text):
            raise _fail(name, where, f'{text!r} is not an action ("*" or "service:Name", wildcards allowed)')
        actions.append(compile_glob(text, fold_case=True))

    resource_key, not_resource = _one_of(raw, "Resource", "NotResource", path, name)
    resources: list[Glob] = []
    for text, where in _strings(raw[resource_key], f"{path}.{resource_key}", name, "resource"):
        try:
            resources.append(Glob(tokenize(to_arn(text), where, variables_allowed=variables_allowed)))
        except PolicyError as exc:
            raise PolicyError(f"policy {name!r}: {exc.detail}") from exc

    conditions: tuple[Condition, ...] = ()
    if "Condition" in raw:
        conditions = _conditions(raw["Condition"], f"{path}.Condition", name, variables_allowed)

    variables = frozenset().union(*(g.variables for g in resources), *(c.variables for c in conditions))
    label = f"{name}#{sid if sid is not None else index}"
    verb = "allowed" if effect == "Allow" else "explicitly denied"
    return Statement(
        label=label,
        sid=sid,
        effect=effect,
        actions=tuple(actions),
        not_action=not_action,
        resources=tuple(resources),
        not_resource=not_resource,
        conditions=conditions,
        variables=variables,
        decision=Decision(effect, label, f"{verb} by statement {label}"),
    )


def parse_policy(document: Mapping[str, Any] | str, name: str) -> Policy:
    """Compile one policy document (a JSON object or its text) under ``name``.

    Raises:
        PolicyError: the document breaks the grammar; ``detail`` names the policy and the JSON
            path of the fault.
    """
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise _fail(name, "$", f"not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(document, Mapping):
        raise _fail(name, "$", "a policy must be a JSON object")
    for key in document:
        if key not in _DOCUMENT_KEYS:
            raise _fail(name, _key_path("$", key), "unknown policy element")
    # IAM's default when Version is missing is the 2008 grammar, which has no policy variables.
    version = document.get("Version", "2008-10-17")
    if version not in _VERSIONS:
        raise _fail(name, "$.Version", f"Version must be one of {', '.join(_VERSIONS)}")
    if "Id" in document and not isinstance(document["Id"], str):
        raise _fail(name, "$.Id", "Id must be a string")
    raw_statements = document.get("Statement")
    items: Sequence[tuple[object, str]]
    if isinstance(raw_statements, Mapping):
        items = [(raw_statements, "$.Statement")]
    elif isinstance(raw_statements, list) and raw_statements:
        items = [(s, f"$.Statement[{i}]") for i, s in enumerate(raw_statements)]
    else:
        raise _fail(name, "$.Statement", "Statement must be an object or a non-empty list")
    statements = tuple(_statement(raw, path, i, name, version) for i, (raw, path) in enumerate(items))
    sids = [s.sid for s in statements if s.sid is not None]
    for i, sid in enumerate(sids):
        if sid in sids[:i]:
            raise _fail(name, "$.Statement", f"Sid {sid!r} is used twice")
    return Policy(name=name, version=version, statements=statements, document=document)
