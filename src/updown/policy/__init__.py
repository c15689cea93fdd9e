"""IAM-style policies: parse, compile once, decide with a reason. Pure: standard library only.

Evaluation order, for a principal holding one or more roles, over every statement of every policy
of those roles:

1. an explicit **Deny**: any applicable statement with ``"Effect": "Deny"`` decides Deny;
2. otherwise, if the resource or ``s3:prefix`` holds a ``.``/``..`` path segment: Deny;
3. otherwise an **Allow**: the first applicable ``"Effect": "Allow"`` statement decides Allow;
4. otherwise an **implicit Deny** ("no statement allows").

A statement applies when its Action (or NotAction) covers the action (case-insensitive), its
Resource (or NotResource) matches the resource ARN (case-sensitive), every policy variable it
uses has a value, and every condition holds. ``evaluate`` never raises on Deny; the Decision
names the deciding statement as ``policy-name#Sid`` (or ``policy-name#index``).

Resources are S3 ARNs (``arn:aws:s3:::files/public/a.jpg``); a plain ``files/public/a.jpg`` is
read as that ARN, in policies and in requests alike.
"""

from __future__ import annotations

from updown.policy.decision import NO_STATEMENT, Decision, Effect
from updown.policy.defaults import (
    ADMIN_POLICY,
    AUTHENTICATED_POLICY,
    DEFAULT_BUCKET,
    DEFAULT_ROLE_POLICIES,
    GUEST_POLICY,
    default_documents,
)
from updown.policy.evaluate import evaluate
from updown.policy.model import Policy, Statement
from updown.policy.parse import parse_policy
from updown.policy.request import ContextValue, Request, to_arn
from updown.policy.simulate import parse_context, simulate
from updown.policy.store import PolicyStore
from updown.policy.variables import KNOWN_KEYS

__all__ = [
    "ADMIN_POLICY",
    "AUTHENTICATED_POLICY",
    "DEFAULT_BUCKET",
    "DEFAULT_ROLE_POLICIES",
    "GUEST_POLICY",
    "KNOWN_KEYS",
    "NO_STATEMENT",
    "ContextValue",
    "Decision",
    "Effect",
    "Policy",
    "PolicyStore",
    "Request",
    "Statement",
    "default_documents",
    "evaluate",
    "parse_context",
    "parse_policy",
    "simulate",
    "to_arn",
]
