"""Roles and their policies: compiled once at load, evaluated across every role a principal holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from updown.errors import ConfigError
from updown.policy.decision import Decision
from updown.policy.defaults import DEFAULT_BUCKET, DEFAULT_ROLE_POLICIES, default_documents
from updown.policy.evaluate import decide, split_by_effect
from updown.policy.model import Policy, Statement
from updown.policy.parse import parse_policy
from updown.policy.request import Request

_PLAN_CACHE_LIMIT = 4096

Document = Mapping[str, Any] | str


class PolicyStore:
    """Compiled policies by name, and the policy names each role holds."""

    def __init__(self, policies: Mapping[str, Policy], role_policies: Mapping[str, Sequence[str]]) -> None:
        """Args:
            policies: compiled policies by name.
            role_policies: role name → the names of its policies.

        Raises:
            ConfigError: a role names a policy that does not exist.
        """
        for role, names in role_policies.items():
            if isinstance(names, str):
                raise ConfigError(f"policy roles: {role!r} must list policy names, not one string")
            for policy_name in names:
                if policy_name not in policies:
                    raise ConfigError(f"policy roles: {role!r} names unknown policy {policy_name!r}")
        self._policies = dict(policies)
        self._roles = {role: tuple(names) for role, names in role_policies.items()}
        # (roles, action) → (denies, allows): the action filter runs once per distinct pair.
        self._plans: dict[tuple[tuple[str, ...], str], tuple[tuple[Statement, ...], tuple[Statement, ...]]] = {}

    @classmethod
    def from_documents(
        cls, documents: Mapping[str, Document], role_policies: Mapping[str, Sequence[str]]
    ) -> PolicyStore:
        """Parse every document, then map the roles.

        Raises:
            PolicyError: a malformed document (the detail names the policy and the JSON path).
            ConfigError: a role names an unknown policy.
        """
        policies = {name: parse_policy(doc, name) for name, doc in documents.items()}
        return cls(policies, role_policies)

    @classmethod
    def from_settings(
        cls,
        role_policies: Mapping[str, Sequence[str]] | None = None,
        documents: Mapping[str, Document] | None = None,
        *,
        bucket: str = DEFAULT_BUCKET,
    ) -> PolicyStore:
        """The default policies for ``bucket``, overridden or extended by settings.

        ``documents`` replace defaults of the same name or add new ones; ``role_policies``
        replace the policy list of the roles they name and leave the others at their default.
        """
        merged_documents: dict[str, Document] = dict(default_documents(bucket))
        merged_documents.update(documents or {})
        merged_roles: dict[str, Sequence[str]] = dict(DEFAULT_ROLE_POLICIES)
        merged_roles.update(role_policies or {})
        return cls.from_documents(merged_documents, merged_roles)

    @property
    def roles(self) -> Mapping[str, tuple[str, ...]]:
        return dict(self._roles)

    @property
    def policies(self) -> Mapping[str, Policy]:
        return dict(self._policies)

    def policies_for(self, roles: Sequence[str]) -> tuple[Policy, ...]:
        """The policies of ``roles``, each once, in role order; unknown roles hold none."""
        seen: dict[str, Policy] = {}
        for role in roles:
            for name in self._roles.get(role, ()):
                seen.setdefault(name, self._policies[name])
        return tuple(seen.values())

    def evaluate(self, roles: Sequence[str] | str, request: Request) -> Decision:
        """Decide ``request`` for a principal holding ``roles`` (one role name or several)."""
        key = ((roles,) if isinstance(roles, str) else tuple(roles), request.action_key)
        plan = self._plans.get(key)
        if plan is None:
            statements = [s for policy in self.policies_for(key[0]) for s in policy.statements]
            plan = split_by_effect(statements, key[1])
            if len(self._plans) >= _PLAN_CACHE_LIMIT:
                # Actions come from callers (simulate takes any string): keep the cache bounded.
                self._plans.clear()
            self._plans[key] = plan
        return decide(plan[0], plan[1], request)
