"""``updown policy simulate``: what the policy engine decides for a role, an action and a resource."""

from __future__ import annotations

import click

from updown.cli.common import common_options, load_settings


@click.group()
def policy() -> None:
    """Inspect the IAM-style policies."""


@policy.command()
@click.option("--role", required=True, help="Role to evaluate as (guest, authenticated, admin, ...).")
@click.option("--action", required=True, help="Action, e.g. s3:GetObject.")
@click.option("--resource", required=True, help="Resource ARN, e.g. arn:aws:s3:::files/public/a.jpg.")
@click.option("--identity-id", default=None, help="Identity id that policy variables resolve to.")
@click.option("--context", "context", multiple=True, metavar="KEY=VALUE", help="Condition key value (repeatable).")
@common_options
def simulate(
    role: str,
    action: str,
    resource: str,
    identity_id: str | None,
    context: tuple[str, ...],
    data_dir: str | None,
    config: str | None,
) -> None:
    """Print Allow or Deny, then the statement that decided and why."""
    from updown.policy import simulate as simulate_policy
    from updown.runtime import load_policies

    store = load_policies(load_settings(data_dir, config))
    decision = simulate_policy(
        store, role=role, action=action, resource=resource, identity_id=identity_id, context=list(context)
    )
    click.echo(decision.describe())


commands = (policy,)
