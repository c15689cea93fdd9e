"""Docs that are generated stay in step with the code: a new command or error code fails here until documented."""

from __future__ import annotations

from pathlib import Path

from updown.cli import cli
from updown.cli.docs import cli_markdown, errors_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs"
REGENERATE = "regenerate with: python -m updown.cli.docs"


def test_docs_cli_md_lists_every_command() -> None:
    assert (DOCS / "cli.md").read_text() == cli_markdown(cli), REGENERATE


def test_docs_errors_md_lists_every_code() -> None:
    assert (DOCS / "errors.md").read_text() == errors_markdown(), REGENERATE


def test_docs_api_md_names_every_cli_command_group() -> None:
    api = (DOCS / "api.md").read_text()
    for name in ("serve", "init", "user create", "mail list", "policy simulate", "migrate"):
        assert f"updown {name}" in api
