"""The decision rule: an explicit Deny in any applicable statement wins, else any Allow, else an
implicit Deny. Never raises on Deny; the Decision says which statement decided and why."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from updown.policy.decision import NO_STATEMENT, Decision
from updown.policy.model import Policy, Statement
from updown.policy.request import Request

DOT_SEGMENT_REASON = "the resource or s3:prefix has a '.' or '..' path segment; no Allow applies to it"


def decide(denies: Sequence[Statement], allows: Sequence[Statement], request: Request) -> Decision:
    """Decide from statements already filtered to the request's action, split by effect."""
    for statement in denies:
        if statement.applies(request):
            return statement.decision
    # Defence in depth: keys are validated elsewhere, but a path that walks up ("..") must never
    # be granted by a prefix pattern such as private/<me>/*.
    if request.dotted:
        return Decision("Deny", None, DOT_SEGMENT_REASON)
    for statement in allows:
        if statement.applies(request):
            return statement.decision
    return Decision("Deny", None, f"{NO_STATEMENT} {request.action} on {request.arn}")


def split_by_effect(
    statements: Iterable[Statement], action_key: str
) -> tuple[tuple[Statement, ...], tuple[Statement, ...]]:
    """The statements whose Action/NotAction covers ``action_key``, as (denies, allows)."""
    denies: list[Statement] = []
    allows: list[Statement] = []
    for statement in statements:
        if statement.matches_action(action_key):
            (denies if statement.effect == "Deny" else allows).append(statement)
    return tuple(denies), tuple(allows)


def evaluate(policies: Iterable[Policy], request: Request) -> Decision:
    """Evaluate ``request`` against every statement of ``policies`` (see the module docstring)."""
    statements = [statement for policy in policies for statement in policy.statements]
    denies, allows = split_by_effect(statements, request.action_key)
    return decide(denies, allows, request)
