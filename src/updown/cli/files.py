"""``updown cleanup`` (abandoned uploads, orphan blobs, dead guests), ``updown worker`` and ``updown jobs``."""

from __future__ import annotations

import contextlib
import re
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from updown.cli.common import build_runtime, common_options, load_settings

T = TypeVar("T")
_AGE = re.compile(r"([0-9]+)([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> int:
    match = _AGE.fullmatch(text.strip())
    if match is None:
        raise click.BadParameter(f"{text!r} is not an age like 90s, 30m, 24h or 7d")
    return int(match.group(1)) * _UNIT[match.group(2)]


@click.command()
@click.option("--dry-run", is_flag=True, help="Report what would go, delete nothing.")
@click.option("--older-than", default=None, help="Age past which orphan blobs go (e.g. 24h; default: setting).")
@common_options
def cleanup(dry_run: bool, older_than: str | None, data_dir: str | None, config: str | None) -> None:
    """Expire abandoned uploads and delete their bytes; remove orphan blobs; report rows without blobs."""
    rt = build_runtime(load_settings(data_dir, config))
    try:
        age = parse_age(older_than) if older_than else rt.settings.processing.cleanup_older_than
        report = _run(lambda: rt.cleanup.run(older_than=age, dry_run=dry_run))
    finally:
        rt.close()
    click.echo(("dry run: nothing deleted\n" if dry_run else "") + "\n".join(report.lines()))


@click.command()
@click.option("--concurrency", type=int, default=None, help="Jobs at once (default: processing.concurrency).")
@click.option("--drain", is_flag=True, help="Run until no job is runnable, then exit.")
@common_options
def worker(concurrency: int | None, drain: bool, data_dir: str | None, config: str | None) -> None:
    """Run queued jobs (processing, cleanup) outside `serve` (scale mode)."""
    overrides = {"processing": {"concurrency": concurrency}} if concurrency else None
    rt = build_runtime(load_settings(data_dir, config, overrides))
    rt.database.migrate()
    w = rt.worker()
    try:
        if drain:
            ran = _run(w.drain)
            click.echo(f"ran {ran} job(s)")
            return
        signal.signal(signal.SIGTERM, lambda *_: w.stop(timeout=0))
        click.echo("updown worker: running queued jobs (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            _run(w.run)
    finally:
        rt.close()


@click.group()
def jobs() -> None:
    """The job queue."""


@jobs.command("list")
@common_options
def jobs_list(data_dir: str | None, config: str | None) -> None:
    """Jobs by status."""
    rt = build_runtime(load_settings(data_dir, config))
    try:
        for status, n in sorted(rt.jobs.counts().items()):
            click.echo(f"{status}\t{n}")
    finally:
        rt.close()


commands = (cleanup, worker, jobs)


def _run(fn: Callable[[], Awaitable[T]]) -> T:
    """``anyio.run``, imported when a command runs (not for ``--help`` or `updown serve`'s parent)."""
    import anyio

    return anyio.run(fn)
