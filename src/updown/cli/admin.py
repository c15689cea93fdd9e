"""``updown init`` (a commented ``updown.toml`` with fresh secrets) and ``updown keys rotate``."""

from __future__ import annotations

from pathlib import Path

import click

from updown import settings as settings_mod
from updown.cli.common import build_runtime, common_options
from updown.core import secrets


@click.command()
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@common_options
def init(force: bool, data_dir: str | None, config: str | None) -> None:
    """Write a commented updown.toml with freshly generated secrets."""
    path = Path(config or settings_mod.DEFAULT_CONFIG_NAME)
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists already (use --force to overwrite)")
    text = settings_mod.template(
        {
            ("s3", "access_key_id"): secrets.new_access_key_id(),
            ("s3", "secret_access_key"): secrets.new_secret_access_key(),
            # Seals the signing keys and generated secrets the database holds.
            ("auth", "key_encryption_key"): secrets.new_hmac_key(),
        }
    )
    secrets.write_private_file(path.absolute(), text.encode())
    click.echo(f"wrote {path} (mode 0600)")


@click.group()
def keys() -> None:
    """Token signing keys."""


@keys.command("rotate")
@common_options
def rotate(data_dir: str | None, config: str | None) -> None:
    """Make a new signing key current; older keys keep verifying until their tokens have expired."""
    rt = build_runtime(settings_mod.load(data_dir=data_dir, config=config))
    try:
        key = rt.keyring.rotate()
    finally:
        rt.close()
    click.echo(f"new signing key {key.kid} ({key.alg}); servers pick it up within 30 s")


commands = (init, keys)
