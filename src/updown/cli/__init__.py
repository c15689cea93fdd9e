"""``updown``: one entry point, one module per command group."""

from __future__ import annotations

import click

from updown import __version__
from updown.cli import admin, files, policy, serve, users


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="updown")
def cli() -> None:
    """updown: secure file upload and download, self-hosted."""


for command in (*serve.commands, *admin.commands, *policy.commands, *users.commands, *files.commands):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="updown")
