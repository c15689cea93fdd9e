"""Moved to `tests.support.processes` (kept only while work in progress still imports it)."""

from tests.support.processes import Server, clean_env, free_port

__all__ = ["Server", "clean_env", "free_port"]
