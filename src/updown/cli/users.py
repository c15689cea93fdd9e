"""``updown user …`` (admin operations on the user pool) and ``updown mail list`` (the dev outbox)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from updown.cli.common import build_runtime, common_options, load_settings
from updown.clock import SystemClock

if TYPE_CHECKING:
    from updown.runtime import Runtime


@contextmanager
def _runtime(data_dir: str | None, config: str | None) -> Iterator[Runtime]:
    """A migrated runtime for one command, closed afterwards."""
    rt = build_runtime(load_settings(data_dir, config))
    try:
        rt.database.migrate()
        yield rt
    finally:
        rt.close()


@click.group()
def user() -> None:
    """Create users, manage their groups, disable them."""


@user.command("create")
@click.argument("email")
@click.option("--password", required=True, help="Initial password (must meet the password policy).")
@click.option("--group", "groups", multiple=True, help="Group to add the user to (repeatable), e.g. admin.")
@click.option("--temporary", is_flag=True, help="The user must set a new password at first sign-in.")
@click.option("--unconfirmed", is_flag=True, help="Leave the email unconfirmed.")
@common_options
def create(
    email: str,
    password: str,
    groups: tuple[str, ...],
    temporary: bool,
    unconfirmed: bool,
    data_dir: str | None,
    config: str | None,
) -> None:
    """Create a user (confirmed unless --unconfirmed)."""
    with _runtime(data_dir, config) as rt:
        created = rt.user_admin.create_user(
            email, password, groups=groups, temporary=temporary, unconfirmed=unconfirmed
        )
    click.echo(f"created {created.email} sub={created.sub} status={created.status} groups={','.join(created.groups)}")


@user.command("add-to-group")
@click.argument("email")
@click.argument("group")
@common_options
def add_to_group(email: str, group: str, data_dir: str | None, config: str | None) -> None:
    """Add a user to a group (takes effect at their next sign-in or refresh)."""
    with _runtime(data_dir, config) as rt:
        rt.user_admin.add_to_group(email, group)
    click.echo(f"added {email} to {group}")


@user.command("remove-from-group")
@click.argument("email")
@click.argument("group")
@common_options
def remove_from_group(email: str, group: str, data_dir: str | None, config: str | None) -> None:
    """Remove a user from a group."""
    with _runtime(data_dir, config) as rt:
        rt.user_admin.remove_from_group(email, group)
    click.echo(f"removed {email} from {group}")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
@common_options
def list_users(as_json: bool, data_dir: str | None, config: str | None) -> None:
    """List users with their status and groups."""
    with _runtime(data_dir, config) as rt:
        users = rt.user_admin.list_users()
    for u in users:
        if as_json:
            record = {
                "sub": u.sub,
                "email": u.email,
                "status": u.status,
                "enabled": u.enabled,
                "groups": list(u.groups),
            }
            click.echo(json.dumps(record))
        else:
            state = "enabled" if u.enabled else "disabled"
            click.echo(f"{u.email}\t{u.status}\t{state}\t{','.join(u.groups)}\t{u.sub}")


@user.command("disable")
@click.argument("email")
@common_options
def disable(email: str, data_dir: str | None, config: str | None) -> None:
    """Disable a user: every session ends and their tokens stop working at once."""
    with _runtime(data_dir, config) as rt:
        rt.user_admin.set_enabled(email, False)
    click.echo(f"disabled {email}")


@user.command("enable")
@click.argument("email")
@common_options
def enable(email: str, data_dir: str | None, config: str | None) -> None:
    """Enable a disabled user again."""
    with _runtime(data_dir, config) as rt:
        rt.user_admin.set_enabled(email, True)
    click.echo(f"enabled {email}")


@click.group()
def mail() -> None:
    """The development outbox (used when no SMTP host is configured)."""


@mail.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line: {to, subject, code, sentAt}.")
@common_options
def mail_list(as_json: bool, data_dir: str | None, config: str | None) -> None:
    """Print the mail sent to the development outbox, oldest first."""
    settings = load_settings(data_dir, config)
    from updown.mail.outbox import Outbox

    for message in Outbox.of(settings, SystemClock()).read():
        if as_json:
            click.echo(json.dumps(message))
        else:
            click.echo(f"{message['sentAt']}  {message['to']}  {message['subject']}  code={message.get('code') or '-'}")


commands = (user, mail)
