"""What every command shares: ``--data`` and ``--config``, settings loading, one-line errors."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import click

from updown import settings as settings_mod
from updown.errors import UpdownError
from updown.settings import Settings

if TYPE_CHECKING:
    from updown.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])


def common_options(fn: F) -> F:
    """Adds ``--data DIR`` and ``--config FILE`` and turns UpdownError into a one-line error."""

    @click.option(
        "--data",
        "data_dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Data directory (default ./data, env UPDOWN_DATA_DIR).",
    )
    @click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False),
        default=None,
        help="Config file (default ./updown.toml if present, env UPDOWN_CONFIG).",
    )
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UpdownError as exc:
            raise click.ClickException(exc.detail) from None

    return wrapper  # type: ignore[return-value]


def load_settings(
    data_dir: str | None, config: str | None, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> Settings:
    return settings_mod.load(data_dir=data_dir, config=config, overrides=overrides)


def build_runtime(settings: Settings) -> Runtime:
    """The whole runtime, imported only by the commands that need it: `updown serve`'s parent
    process and `--help` stay small (the runtime pulls in the database, storage and imaging)."""
    from updown import runtime

    return runtime.build(settings)
