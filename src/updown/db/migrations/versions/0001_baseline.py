"""Baseline: the empty schema every later revision builds on.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: tables arrive with the features that own them (users, uploads, ...)."""


def downgrade() -> None:
    """Nothing to undo."""
