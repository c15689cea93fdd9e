"""What a mailer is: the message it takes and the one method every mailer (SMTP, dev outbox) implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from updown.errors import ServerError

_PURPOSE_WORDS = {"confirm": "confirmation", "reset": "password reset"}


@dataclass(frozen=True)
class MailMessage:
    """One plain-text message to one address. ``code`` and ``purpose`` ride along for the dev outbox."""

    to: str
    subject: str
    body: str
    code: str | None = None
    purpose: str | None = None

    def __post_init__(self) -> None:
        # A line break in a header would let its text add headers or recipients (header injection).
        if any(ch in field for field in (self.to, self.subject) for ch in "\r\n\x00"):
            raise ServerError("mail header contains a line break")


class Mailer(ABC):
    """Delivers mail. Implementations must be safe to call from several threads."""

    @abstractmethod
    def send(self, message: MailMessage) -> None:
        """Hand ``message`` over for delivery.

        Raises:
            ServiceUnavailable: the mail service cannot take the message now.
        """


def code_message(*, to: str, code: str, purpose: str, lifetime: int, product: str = "updown") -> MailMessage:
    """The message that carries a one-time code; the body says the code and how long it lives."""
    what = _PURPOSE_WORDS.get(purpose, purpose)
    body = (
        f"Your {product} {what} code is {code}\n\n"
        f"It expires in {describe_lifetime(lifetime)} and works once.\n"
        "If you did not ask for it, you can ignore this message; nothing changes without the code.\n"
    )
    return MailMessage(to=to, subject=f"Your {product} {what} code", body=body, code=code, purpose=purpose)


def describe_lifetime(seconds: int) -> str:
    """``86400`` → ``24 hours``, ``3600`` → ``1 hour``, ``900`` → ``15 minutes``."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"
