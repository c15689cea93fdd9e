"""Request keys a policy may name, and policy variables: ``${key}`` placeholders in policy text.

A variable is substituted as literal text (never as a wildcard); one without a value makes its
statement not match. ``${*}``, ``${?}`` and ``${$}`` stand for a literal ``*``, ``?`` and ``$``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from updown.errors import PolicyError

# Who is calling. Their values become path segments (``private/${...}/*``), so an empty value or
# one holding "/" counts as no value: it could otherwise widen a prefix to someone else's folder.
PRINCIPAL_KEYS = frozenset(
    {
        "cognito-identity.amazonaws.com:sub",
        "identity-id",
        "aws:userid",
        "aws:username",
        "jwt:sub",
    }
)
# What the request carries; single-valued.
CONTEXT_KEYS = frozenset(
    {
        "aws:currenttime",
        "aws:epochtime",
        "aws:sourceip",
        "aws:securetransport",
        "s3:prefix",
        "s3:max-keys",
        "updown:objectowner",
        "updown:contentlength",
        "updown:contenttype",
    }
)
# Keys that hold a list; IAM forbids them as variables, and so do we.
MULTI_VALUED_KEYS = frozenset({"updown:groups"})
KNOWN_KEYS = PRINCIPAL_KEYS | CONTEXT_KEYS | MULTI_VALUED_KEYS

POLICY_VERSION = "2012-10-17"
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


@dataclass(frozen=True, slots=True)
class Text:
    """Policy text as written: ``*`` and ``?`` in it are wildcards where the element allows them."""

    text: str


@dataclass(frozen=True, slots=True)
class Literal:
    """A character written as ``${*}``, ``${?}`` or ``${$}``: always literal, never a wildcard."""

    text: str


@dataclass(frozen=True, slots=True)
class Variable:
    """A ``${key}`` placeholder; ``name`` is the lower-cased key."""

    name: str


Token = Text | Literal | Variable


def tokenize(value: str, path: str, *, variables_allowed: bool) -> tuple[Token, ...]:
    """Split policy text into text, escaped literals and variables.

    Raises:
        PolicyError: an unterminated or unknown ``${...}``, a multi-valued key used as a
            variable, or any ``${`` when the policy's Version does not allow variables.
    """
    tokens: list[Token] = []
    start = 0
    while True:
        at = value.find("${", start)
        if at < 0:
            break
        if not variables_allowed:
            raise PolicyError(f'{path}: policy variables need "Version": "{POLICY_VERSION}"')
        end = value.find("}", at + 2)
        if end < 0:
            raise PolicyError(f"{path}: unterminated policy variable in {value!r}")
        if at > start:
            tokens.append(Text(value[start:at]))
        inner = value[at + 2 : end]
        if inner in _ESCAPES:
            tokens.append(Literal(_ESCAPES[inner]))
        else:
            name = inner.strip().lower()
            if name in MULTI_VALUED_KEYS:
                raise PolicyError(f"{path}: ${{{inner}}} holds a list and cannot be a policy variable")
            if name not in KNOWN_KEYS:
                raise PolicyError(f"{path}: unknown policy variable ${{{inner}}}")
            tokens.append(Variable(name))
        start = end + 1
    if start < len(value) or not tokens:
        tokens.append(Text(value[start:]))
    return tuple(tokens)


def variables_in(tokens: Sequence[Token]) -> frozenset[str]:
    """The names of the variables among ``tokens``."""
    return frozenset(t.name for t in tokens if isinstance(t, Variable))


def resolve(tokens: Sequence[Token], values: Mapping[str, str]) -> str | None:
    """The tokens as one literal string, or None when a variable has no value."""
    parts: list[str] = []
    for token in tokens:
        if isinstance(token, Variable):
            value = values.get(token.name)
            if value is None:
                return None
            parts.append(value)
        else:
            parts.append(token.text)
    return "".join(parts)
