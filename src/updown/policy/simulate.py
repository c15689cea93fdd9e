"""``updown policy simulate`` and ``POST /policy/simulate`` share this: one role, one question."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from updown.errors import InvalidRequest
from updown.policy.decision import Decision
from updown.policy.request import ContextValue, Request
from updown.policy.store import PolicyStore


def parse_context(pairs: Iterable[str]) -> dict[str, ContextValue]:
    """``["k=v", ...]`` as a context mapping; a key given twice becomes a list of its values.

    Raises:
        InvalidRequest: an entry without ``=`` or with an empty key.
    """
    context: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidRequest(f"context entry {pair!r} is not key=value")
        context.setdefault(key.strip(), []).append(value)
    return {key: values[0] if len(values) == 1 else values for key, values in context.items()}


def simulate(
    store: PolicyStore,
    *,
    role: str,
    action: str,
    resource: str,
    identity_id: str | None = None,
    context: Mapping[str, ContextValue] | Iterable[str] | None = None,
) -> Decision:
    """What ``role`` would be told for ``action`` on ``resource``.

    ``context`` is a mapping of keys (``{"s3:prefix": "public/"}``) or CLI-style ``k=v``
    strings. Show the answer with ``Decision.describe()`` (CLI) or ``Decision.as_dict()`` (HTTP).

    Raises:
        InvalidRequest: a malformed ``k=v`` context entry.
    """
    if context is None:
        mapping: Mapping[str, ContextValue] = {}
    elif isinstance(context, Mapping):
        mapping = context
    else:
        mapping = parse_context(context)
    request = Request(action=action, resource=resource, identity_id=identity_id, context=mapping)
    return store.evaluate((role,), request)
