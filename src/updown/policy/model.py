"""Compiled policies: a Policy is a named tuple of Statements, each ready to test a Request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from updown.policy.conditions import Condition
from updown.policy.decision import Decision, Effect
from updown.policy.matching import NO_VALUES, Glob
from updown.policy.request import Request


@dataclass(frozen=True, slots=True)
class Statement:
    """One compiled statement.

    ``label`` names it in decisions: ``policy-name#Sid``, or ``policy-name#index`` without a Sid.
    ``not_action``/``not_resource`` say the patterns were given as NotAction/NotResource.
    """

    label: str
    sid: str | None
    effect: Effect
    actions: tuple[Glob, ...]
    not_action: bool
    resources: tuple[Glob, ...]
    not_resource: bool
    conditions: tuple[Condition, ...]
    variables: frozenset[str]
    decision: Decision = field(compare=False)

    def matches_action(self, action_key: str) -> bool:
        """Whether the (lower-cased) action falls under Action, or outside NotAction."""
        hit = False
        for glob in self.actions:
            if glob.match(action_key):
                hit = True
                break
        return hit is not self.not_action

    def applies(self, request: Request) -> bool:
        """Whether resource, variables and conditions all match (the action is checked apart).

        A variable the request has no value for makes the whole statement not match, whatever
        its effect: IAM's rule, so a Deny written with ``${aws:username}`` skips guests.
        """
        values: Mapping[str, str] = NO_VALUES
        if self.variables:
            resolved: dict[str, str] = {}
            for name in self.variables:
                value = request.variable(name)
                if value is None:
                    return False
                resolved[name] = value
            values = resolved
        arn = request.arn
        hit = False
        for glob in self.resources:
            if glob.match(arn, values):
                hit = True
                break
        if hit is self.not_resource:
            return False
        return all(condition.holds(request, values) for condition in self.conditions)


@dataclass(frozen=True, slots=True)
class Policy:
    """A named, compiled policy document; ``document`` keeps the JSON as it was given."""

    name: str
    version: str
    statements: tuple[Statement, ...]
    document: Mapping[str, Any] = field(compare=False, repr=False)
