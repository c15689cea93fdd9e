"""Condition operators: String*, Numeric*, Date*, Bool, IpAddress, Arn*, Null, the ...IfExists
forms and the ForAnyValue:/ForAllValues: set qualifiers, compiled once from a policy's Condition.

Semantics follow IAM: values listed for one key are OR-ed (NOR-ed for the negated operators); a key
the request does not carry makes a positive operator false and a negated one true, except that
...IfExists is then true, ForAllValues: true and ForAnyValue: false.
"""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from updown.errors import PolicyError
from updown.policy.matching import Glob
from updown.policy.request import KeyValue, Request, as_text, to_arn
from updown.policy.variables import Token, resolve, tokenize, variables_in

Matcher = Callable[[KeyValue, Mapping[str, str]], bool]
_Compare = Callable[[Any, Any], bool]

_IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _as_number(value: object) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _as_epoch(value: object) -> float | None:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.timestamp()
    number = _as_number(value)
    if number is not None:
        return float(number)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return _as_epoch(parsed)
    return None


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _as_ip(value: object) -> _IpAddress | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


# --- one compiler per operator family: policy value text → matcher of one request value ---


def _string(tokens: Sequence[Token], fold: bool) -> Matcher:
    if not variables_in(tokens):
        text = resolve(tokens, {}) or ""
        if fold:
            folded = text.casefold()
            return lambda value, _values: as_text(value).casefold() == folded
        return lambda value, _values: as_text(value) == text

    def match(value: KeyValue, values: Mapping[str, str]) -> bool:
        expected = resolve(tokens, values)
        if expected is None:
            return False
        if fold:
            return as_text(value).casefold() == expected.casefold()
        return as_text(value) == expected

    return match


def _like(tokens: Sequence[Token]) -> Matcher:
    glob = Glob(tokens)
    return lambda value, values: glob.match(as_text(value), values)


def _arn(tokens: Sequence[Token]) -> Matcher:
    # ArnEquals and ArnLike both take wildcards in IAM; we match the whole ARN, case-sensitively.
    glob = Glob(tokens)
    return lambda value, values: glob.match(to_arn(as_text(value)), values)


def _numeric(raw: str, path: str, compare: _Compare) -> Matcher:
    expected = _as_number(raw)
    if expected is None:
        raise PolicyError(f"{path}: {raw!r} is not a number")

    def match(value: KeyValue, _values: Mapping[str, str]) -> bool:
        got = _as_number(value)
        return got is not None and bool(compare(got, expected))

    return match


def _date(raw: str, path: str, compare: _Compare) -> Matcher:
    expected = _as_epoch(raw)
    if expected is None:
        raise PolicyError(f"{path}: {raw!r} is not an ISO 8601 date or epoch seconds")

    def match(value: KeyValue, _values: Mapping[str, str]) -> bool:
        got = _as_epoch(value)
        return got is not None and bool(compare(got, expected))

    return match


def _bool(raw: str, path: str) -> Matcher:
    expected = _as_bool(raw)
    if expected is None:
        raise PolicyError(f"{path}: {raw!r} is not true or false")
    return lambda value, _values: _as_bool(value) is expected


def _ip(raw: str, path: str) -> Matcher:
    try:
        network = ipaddress.ip_network(raw, strict=False)
    except ValueError as exc:
        raise PolicyError(f"{path}: {raw!r} is not an IP address or CIDR block") from exc

    def match(value: KeyValue, _values: Mapping[str, str]) -> bool:
        address = _as_ip(value)
        # An IPv4 address is never inside an IPv6 block and vice versa.
        return address is not None and address.version == network.version and address in network

    return match


@dataclass(frozen=True, slots=True)
class _Operator:
    family: str
    negated: bool = False
    compare: _Compare | None = None


_BASE_OPERATORS: dict[str, _Operator] = {
    "StringEquals": _Operator("string"),
    "StringNotEquals": _Operator("string", negated=True),
    "StringEqualsIgnoreCase": _Operator("string_ci"),
    "StringNotEqualsIgnoreCase": _Operator("string_ci", negated=True),
    "StringLike": _Operator("like"),
    "StringNotLike": _Operator("like", negated=True),
    "NumericEquals": _Operator("numeric", compare=operator.eq),
    "NumericNotEquals": _Operator("numeric", negated=True, compare=operator.eq),
    "NumericLessThan": _Operator("numeric", compare=operator.lt),
    "NumericLessThanEquals": _Operator("numeric", compare=operator.le),
    "NumericGreaterThan": _Operator("numeric", compare=operator.gt),
    "NumericGreaterThanEquals": _Operator("numeric", compare=operator.ge),
    "DateEquals": _Operator("date", compare=operator.eq),
    "DateNotEquals": _Operator("date", negated=True, compare=operator.eq),
    "DateLessThan": _Operator("date", compare=operator.lt),
    "DateLessThanEquals": _Operator("date", compare=operator.le),
    "DateGreaterThan": _Operator("date", compare=operator.gt),
    "DateGreaterThanEquals": _Operator("date", compare=operator.ge),
    "Bool": _Operator("bool"),
    "IpAddress": _Operator("ip"),
    "NotIpAddress": _Operator("ip", negated=True),
    "ArnEquals": _Operator("arn"),
    "ArnLike": _Operator("arn"),
    "ArnNotEquals": _Operator("arn", negated=True),
    "ArnNotLike": _Operator("arn", negated=True),
    "Null": _Operator("null"),
}
# Families whose values may hold policy variables (IAM allows them for strings and ARNs).
_TEXT_FAMILIES = frozenset({"string", "string_ci", "like", "arn"})


def _matcher(op: _Operator, raw: str, path: str, variables_allowed: bool) -> tuple[Matcher, frozenset[str]]:
    if op.family in _TEXT_FAMILIES:
        tokens = tokenize(raw, path, variables_allowed=variables_allowed)
        names = variables_in(tokens)
        if op.family == "like":
            return _like(tokens), names
        if op.family == "arn":
            return _arn(tokens), names
        return _string(tokens, fold=op.family == "string_ci"), names
    if op.family == "numeric":
        assert op.compare is not None
        return _numeric(raw, path, op.compare), frozenset()
    if op.family == "date":
        assert op.compare is not None
        return _date(raw, path, op.compare), frozenset()
    if op.family == "bool":
        return _bool(raw, path), frozenset()
    return _ip(raw, path), frozenset()


@dataclass(frozen=True, slots=True)
class Condition:
    """One operator applied to one key, with the policy's values compiled."""

    operator: str
    key: str
    values: tuple[str, ...]
    negated: bool
    if_exists: bool
    qualifier: str  # "", "ForAnyValue" or "ForAllValues"
    null_wants_absent: bool | None  # set only for Null
    matchers: tuple[Matcher, ...]
    variables: frozenset[str]

    def holds(self, request: Request, values: Mapping[str, str]) -> bool:
        """Whether the condition holds; ``values`` are the statement's resolved variables."""
        present = request.values_of(self.key)
        if self.null_wants_absent is not None:
            return (present is None) is self.null_wants_absent
        if present is None:
            if self.if_exists or self.qualifier == "ForAllValues":
                return True
            if self.qualifier == "ForAnyValue":
                return False
            return self.negated
        matchers = self.matchers
        if self.qualifier == "ForAllValues":
            return all(self._one(v, values) for v in present)
        if self.qualifier == "ForAnyValue":
            return any(self._one(v, values) for v in present)
        hit = any(m(v, values) for v in present for m in matchers)
        return not hit if self.negated else hit

    def _one(self, value: KeyValue, values: Mapping[str, str]) -> bool:
        hit = any(m(value, values) for m in self.matchers)
        return not hit if self.negated else hit


def parse_operator(name: str, path: str) -> tuple[str, _Operator, bool]:
    """Split ``ForAnyValue:StringLikeIfExists`` into qualifier, base operator and IfExists."""
    qualifier, _, base = name.rpartition(":")
    if qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise PolicyError(f"{path}: unknown set qualifier {qualifier!r} (ForAnyValue or ForAllValues)")
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    op = _BASE_OPERATORS.get(base)
    if op is None:
        raise PolicyError(f"{path}: unknown condition operator {name!r}")
    if op.family == "null" and (if_exists or qualifier):
        raise PolicyError(f"{path}: Null takes neither IfExists nor a set qualifier")
    return qualifier, op, if_exists


def compile_condition(
    operator_name: str,
    key: str,
    raw_values: Sequence[str],
    path: str,
    *,
    value_paths: Sequence[str],
    variables_allowed: bool,
) -> Condition:
    """Compile one operator/key/values triple.

    ``path`` names the key's place in the document and ``value_paths`` each value's.

    Raises:
        PolicyError: an unknown operator, or a value the operator cannot read.
    """
    qualifier, op, if_exists = parse_operator(operator_name, path)
    if op.family == "null":
        wants = [_as_bool(v) for v in raw_values]
        if len(wants) != 1 or wants[0] is None:
            raise PolicyError(f"{path}: Null takes one value, true or false")
        return Condition(operator_name, key, tuple(raw_values), False, False, "", wants[0], (), frozenset())
    matchers: list[Matcher] = []
    names: set[str] = set()
    for raw, where in zip(raw_values, value_paths, strict=True):
        matcher, used = _matcher(op, raw, where, variables_allowed)
        matchers.append(matcher)
        names |= used
    return Condition(
        operator=operator_name,
        key=key,
        values=tuple(raw_values),
        negated=op.negated,
        if_exists=if_exists,
        qualifier=qualifier,
        null_wants_absent=None,
        matchers=tuple(matchers),
        variables=frozenset(names),
    )
