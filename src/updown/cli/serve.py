"""``updown serve`` and ``updown migrate``: run the service; bring the schema up to date."""

from __future__ import annotations

import multiprocessing
import os
import sys

import click

from updown import settings as settings_mod
from updown.cli.common import build_runtime, common_options, load_settings
from updown.errors import UpdownError
from updown.web import supervisor


@click.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8000).")
@click.option("--workers", type=int, default=None, help="Worker processes (default 1).")
@common_options
def serve(host: str | None, port: int | None, workers: int | None, data_dir: str | None, config: str | None) -> None:
    """Run the API, the data plane, the CDN endpoint and the UI."""
    server = {k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None}
    settings = load_settings(data_dir, config, {"server": server})
    # Migrate and create secrets and keys once, before any worker starts, in a child process: what
    # that imports (the database, storage, imaging) then never weighs on this parent, which only
    # supervises the workers (82 MiB resident when it did this itself).
    child = multiprocessing.get_context("fork").Process(target=_prepare, args=(settings,), name="updown-prepare")
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(child.exitcode or 1)
    settings_mod.pin_for_workers(settings)
    for key, value in server.items():
        settings_mod.pin_override("server", key, value)

    click.echo(f"updown serving on {settings.public_url} (data: {settings.data_dir})", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # This process becomes granian's supervisor, which needs none of what the CLI imported.
    argv = supervisor.command(settings.server.host, settings.server.port, settings.server.workers)
    os.execv(argv[0], argv)  # noqa: S606 (argv is ours: the interpreter, a module, numbers)


def _prepare(settings: settings_mod.Settings) -> None:
    try:
        rt = build_runtime(settings)
        rt.migrate()
        rt.close()
    except UpdownError as exc:
        click.echo(f"updown: {exc.detail}", err=True)
        raise SystemExit(2) from None


@click.command()
@common_options
def migrate(data_dir: str | None, config: str | None) -> None:
    """Apply database migrations."""
    settings = load_settings(data_dir, config)
    rt = build_runtime(settings)
    rt.migrate()
    rt.close()
    click.echo("database is up to date")


commands = (serve, migrate)
