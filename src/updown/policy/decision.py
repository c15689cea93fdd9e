"""A policy verdict with its reason, and the one way it is shown (CLI line, HTTP body)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Effect = Literal["Allow", "Deny"]
NO_STATEMENT = "no statement allows"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the engine decided, which statement decided it (None for an implicit deny), and why."""

    effect: Effect
    statement: str | None
    reason: str

    @property
    def allowed(self) -> bool:
        return self.effect == "Allow"

    def describe(self) -> str:
        """The simulate answer for a terminal: ``Allow``/``Deny`` first, then the statement, then why.

        e.g. ``Allow authenticated-storage#OwnFiles`` or ``Deny no statement allows``, and the
        reason on a second line.
        """
        return f"{self.effect} {self.statement or NO_STATEMENT}\n{self.reason}"

    def as_dict(self) -> dict[str, str]:
        """The simulate answer as a JSON body: ``{effect, statement?, reason}``."""
        body = {"effect": self.effect, "reason": self.reason}
        if self.statement is not None:
            body["statement"] = self.statement
        return body
