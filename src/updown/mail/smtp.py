"""The SMTP mailer: one connection per message, STARTTLS with certificate checks, optional login."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from updown.errors import ConfigError, ServiceUnavailable
from updown.mail.base import Mailer, MailMessage


class SmtpMailer(Mailer):
    """Sends through an SMTP relay (a submission port with STARTTLS, or a trusted local relay)."""

    def __init__(
        self,
        *,
        host: str,
        port: int = 587,
        from_address: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if username is not None and not starttls:
            raise ConfigError("SMTP login needs starttls: the password would cross the network in clear")
        self.host = host
        self.port = port
        self.from_address = from_address
        self.username = username
        self._password = password
        self.starttls = starttls
        self.timeout = timeout
        self._ssl_context = ssl_context

    def __repr__(self) -> str:  # never the password
        return f"SmtpMailer(host={self.host!r}, port={self.port}, starttls={self.starttls})"

    def send(self, message: MailMessage) -> None:
        """Deliver ``message``; a refusal or an unreachable server raises ServiceUnavailable."""
        mail = EmailMessage()
        mail["From"] = self.from_address
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = make_msgid(domain=self.from_address.rpartition("@")[2] or None)
        mail.set_content(message.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls:
                    # Verifies the server certificate and host name unless a context says otherwise.
                    smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                    smtp.ehlo()
                if self.username is not None:
                    smtp.login(self.username, self._password or "")
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            # The detail reaches logs only; the reply code says what the server did not like.
            raise ServiceUnavailable(f"mail to the SMTP server failed: {type(exc).__name__}") from exc
