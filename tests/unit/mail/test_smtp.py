"""mail.smtp against a real (tiny, stdlib) SMTP server on a free loopback port, with and without TLS."""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from types import TracebackType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from updown.errors import ConfigError, ServiceUnavailable
from updown.mail.base import MailMessage, code_message
from updown.mail.smtp import SmtpMailer

USER, PASSWORD = "mailer", "s3cret-pass"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    tls: bool
    auth: tuple[str, str] | None


@dataclass
class SmtpSink:
    """Speaks just enough ESMTP (EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, QUIT) to receive mail."""

    tls_context: ssl.SSLContext | None = None
    messages: list[Received] = field(default_factory=list)
    auth_attempts: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> SmtpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below
        self._listener.close()
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            # OSError (SSLError too): the client hung up, e.g. because it refused our certificate.
            with contextlib.suppress(OSError):
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        f = conn.makefile("rwb")
        tls, auth, sender, recipients = False, None, "", []

        def reply(text: str) -> None:
            f.write(text.encode() + b"\r\n")
            f.flush()

        try:
            reply("220 sink ESMTP")
            while line := f.readline():
                command = line.decode().rstrip("\r\n")
                verb = command.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    extensions = ["sink"] + (["STARTTLS"] if self.tls_context and not tls else []) + ["AUTH PLAIN"]
                    for ext in extensions[:-1]:
                        reply(f"250-{ext}")
                    reply(f"250 {extensions[-1]}")
                elif verb == "STARTTLS" and self.tls_context is not None:
                    reply("220 go ahead")
                    f.close()
                    conn = self.tls_context.wrap_socket(conn, server_side=True)
                    f = conn.makefile("rwb")
                    tls = True
                elif verb == "AUTH":
                    _, user, password = base64.b64decode(command.split(" ")[2]).decode().split("\0")
                    self.auth_attempts.append((user, password))
                    ok = (user, password) == (USER, PASSWORD)
                    auth = (user, password) if ok else None
                    reply("235 ok" if ok else "535 bad credentials")
                elif verb == "MAIL":
                    sender = command[10:].strip("<>")
                    reply("250 ok")
                elif verb == "RCPT":
                    recipients.append(command[8:].strip("<>"))
                    reply("250 ok")
                elif verb == "DATA":
                    reply("354 end with .")
                    data = b""
                    while (chunk := f.readline()) != b".\r\n":
                        data += chunk
                    self.messages.append(Received(sender, recipients, data, tls, auth))
                    reply("250 queued")
                elif verb == "QUIT":
                    reply("221 bye")
                    return
                else:
                    reply("502 not implemented")
        finally:
            f.close()
            conn.close()


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory: Path = tmp_path_factory.mktemp("tls")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (directory / "cert.pem").write_bytes(cert_pem)
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return Tls(server=server, client=ssl.create_default_context(cadata=cert_pem.decode()))


@pytest.fixture
def plain_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def tls_sink(tls: Tls) -> Iterator[SmtpSink]:
    with SmtpSink(tls_context=tls.server) as sink:
        yield sink


def message() -> MailMessage:
    return code_message(to="alice@example.com", code="424242", purpose="reset", lifetime=3600)


def test_smtp_send_plain_relay_delivers(plain_sink: SmtpSink) -> None:
    mailer = SmtpMailer(host="127.0.0.1", port=plain_sink.port, from_address="noreply@example.org", starttls=False)
    mailer.send(message())
    (got,) = plain_sink.messages
    assert (got.sender, got.recipients, got.tls, got.auth) == (
        "noreply@example.org",
        ["alice@example.com"],
        False,
        None,
    )
    mail = message_from_bytes(got.data, policy=policy.default)
    assert mail["From"] == "noreply@example.org"
    assert mail["To"] == "alice@example.com"
    assert mail["Subject"] == "Your updown password reset code"
    assert mail["Message-ID"].endswith("@example.org>")
    body = mail.get_body().get_content()  # type: ignore[union-attr]
    assert "424242" in body
    assert "1 hour" in body


def test_smtp_send_starttls_and_login(tls_sink: SmtpSink, tls: Tls) -> None:
    mailer = SmtpMailer(
        host="127.0.0.1",
        port=tls_sink.port,
        from_address="noreply@example.org",
        username=USER,
        password=PASSWORD,
        ssl_context=tls.client,
    )
    mailer.send(message())
    (got,) = tls_sink.messages
    assert got.tls is True
    assert got.auth == (USER, PASSWORD)


def test_smtp_send_untrusted_certificate_fails_before_login(tls_sink: SmtpSink) -> None:
    mailer = SmtpMailer(
        host="127.0.0.1", port=tls_sink.port, from_address="noreply@example.org", username=USER, password=PASSWORD
    )
    with pytest.raises(ServiceUnavailable):
        mailer.send(message())
    assert tls_sink.auth_attempts == []  # the password never left
    assert tls_sink.messages == []


def test_smtp_send_starttls_not_offered_fails(plain_sink: SmtpSink) -> None:
    # A server (or a man in the middle) that drops STARTTLS must not get the mail in clear.
    mailer = SmtpMailer(host="127.0.0.1", port=plain_sink.port, from_address="noreply@example.org")
    with pytest.raises(ServiceUnavailable):
        mailer.send(message())
    assert plain_sink.messages == []


def test_smtp_send_wrong_password_fails(tls_sink: SmtpSink, tls: Tls) -> None:
    mailer = SmtpMailer(
        host="127.0.0.1",
        port=tls_sink.port,
        from_address="noreply@example.org",
        username=USER,
        password="wrong",
        ssl_context=tls.client,
    )
    with pytest.raises(ServiceUnavailable):
        mailer.send(message())
    assert tls_sink.auth_attempts == [(USER, "wrong")]
    assert tls_sink.messages == []


def test_smtp_send_server_down_fails() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    mailer = SmtpMailer(host="127.0.0.1", port=port, from_address="noreply@example.org", starttls=False, timeout=2)
    with pytest.raises(ServiceUnavailable, match="ConnectionRefusedError"):
        mailer.send(message())


def test_smtp_login_without_starttls_refused() -> None:
    with pytest.raises(ConfigError, match="starttls"):
        SmtpMailer(host="h", from_address="a@b.c", username=USER, password=PASSWORD, starttls=False)


def test_smtp_repr_hides_password() -> None:
    mailer = SmtpMailer(host="smtp.example.org", from_address="a@b.c", username=USER, password=PASSWORD)
    assert PASSWORD not in repr(mailer)
    assert "smtp.example.org" in repr(mailer)
