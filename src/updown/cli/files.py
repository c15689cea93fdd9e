"""``updown cleanup`` (abandoned uploads, orphan blobs, dead guests), ``updown worker`` and ``updown jobs``."""

from __future__ import annotations

import re
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from updown.cli.common import build_runtime, common_options, load_settings

if TYPE_CHECKING:
    from updown.processing.queue import JobWorker

# The statuses `updown jobs` shows (updown.processing.queue.STATUSES; not imported: `--help` stays small).
STATUSES = ("queued", "running", "done", "failed")

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
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=None, help="Jobs at once (default: processing.concurrency)."
)
@click.option("--drain", is_flag=True, help="Run until no job is runnable, then exit.")
@click.option(
    "--health-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve /healthz and /metrics on this port (default: queue.health_port; 0: none).",
)
@click.option(
    "--health-host", default=None, help="Address of the health listener (default: queue.health_host, 127.0.0.1)."
)
@common_options
def worker(
    concurrency: int | None,
    drain: bool,
    health_port: int | None,
    health_host: str | None,
    data_dir: str | None,
    config: str | None,
) -> None:
    """Run queued jobs (processing, cleanup, ObjectCreated steps) without serving HTTP (scale mode).

    SIGTERM or Ctrl-C stops taking jobs; jobs in hand get queue.shutdown_timeout seconds to finish,
    then go back to the queue."""
    queue = {k: v for k, v in {"health_port": health_port, "health_host": health_host}.items() if v is not None}
    rt = build_runtime(load_settings(data_dir, config, {"queue": queue}))
    try:
        rt.migrate()
        w = rt.worker(concurrency=concurrency)
        if drain:
            ran = _run(w.drain)
            click.echo(f"ran {ran} job(s)")
            return
        q = rt.settings.queue
        _run(lambda: _serve_worker(w, q.health_host, q.health_port, rt.settings.queue.backend))
    finally:
        rt.close()


async def _serve_worker(w: JobWorker, host: str, port: int, backend: str) -> None:
    import anyio

    from updown.processing.queue_health import HealthListener

    health = HealthListener(w.stats, lambda: w.stopping, host=host, port=port) if port else None
    async with anyio.create_task_group() as tg:

        async def on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    click.echo("updown worker: stopping (jobs in hand finish or go back to the queue)", err=True)
                    w.stop(timeout=0)
                    return

        tg.start_soon(on_signal)
        where = ""
        if health is not None:
            where = f", health on http://{host}:{await health.start()}/healthz"
        click.echo(f"updown worker: running queued jobs ({backend} queue{where})", err=True)
        try:
            await w.run()
        finally:
            tg.cancel_scope.cancel()
            if health is not None:
                await health.close()


@click.group()
def jobs() -> None:
    """The job queue: list, retry and purge jobs."""


@jobs.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only jobs in this status.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, help="Most jobs listed (newest first).")
@common_options
def jobs_list(status: str | None, limit: int, data_dir: str | None, config: str | None) -> None:
    """Jobs by status (`status<TAB>count` lines), then the newest jobs, a failed one with its last error."""
    rt = build_runtime(load_settings(data_dir, config))
    try:
        for name, n in sorted(rt.jobs.counts().items()):
            click.echo(f"{name}\t{n}")
        for job in rt.jobs.jobs(status, limit=limit):
            click.echo(f"#{job.id} {job.status} {job.kind} attempts={job.attempts} key={job.dedupe}")
            if job.status == "failed" and job.last_error:
                click.echo(f"    {job.last_error.strip().splitlines()[0] if job.last_error.strip() else ''}")
    finally:
        rt.close()


@jobs.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="Retry every failed job.")
@common_options
def jobs_retry(ids: tuple[int, ...], all_failed: bool, data_dir: str | None, config: str | None) -> None:
    """Queue failed jobs again (by id, or --all-failed); each gets one more try."""
    if bool(ids) == all_failed:
        raise click.UsageError("give job ids or --all-failed")
    rt = build_runtime(load_settings(data_dir, config))
    try:
        n = rt.jobs.retry(None if all_failed else ids)
    finally:
        rt.close()
    click.echo(f"retried {n} job(s)")


@jobs.command("purge")
@click.option("--failed", "failed", is_flag=True, help="Delete failed jobs.")
@click.option("--done", "done", is_flag=True, help="Delete finished jobs (the default when neither is given).")
@click.option(
    "--older-than", default="0s", help="Only jobs unchanged for longer than this (e.g. 7d; default: any age)."
)
@common_options
def jobs_purge(failed: bool, done: bool, older_than: str, data_dir: str | None, config: str | None) -> None:
    """Delete finished (and/or failed) jobs; their dedupe keys are free again."""
    statuses = [name for name, on in (("done", done or not failed), ("failed", failed)) if on]
    age = parse_age(older_than)
    rt = build_runtime(load_settings(data_dir, config))
    try:
        n = rt.jobs.purge(statuses, float(age))
    finally:
        rt.close()
    click.echo(f"purged {n} job(s)")


commands = (cleanup, worker, jobs)


def _run(fn: Callable[[], Awaitable[T]]) -> T:
    """``anyio.run``, imported when a command runs (not for ``--help`` or `updown serve`'s parent)."""
    import anyio

    return anyio.run(fn)
