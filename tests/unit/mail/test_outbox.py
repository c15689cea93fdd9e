"""mail.outbox and mail.base: the dev outbox's line format, file mode, and concurrent appends."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from updown.clock import FrozenClock
from updown.core.codes import MAX_TTL
from updown.errors import ServerError, ServiceUnavailable
from updown.mail.base import MailMessage, code_message, describe_lifetime
from updown.mail.outbox import Outbox


def test_outbox_send_appends_one_json_line(tmp_path: Path) -> None:
    clock = FrozenClock(1_700_000_000.25)
    outbox = Outbox(tmp_path / "data", clock)
    outbox.send(code_message(to="alice@example.com", code="123456", purpose="confirm", lifetime=86400))
    clock.advance(60)
    outbox.send(MailMessage(to="bob@example.com", subject="Hello", body="no code"))
    lines = outbox.path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "to": "alice@example.com",
            "subject": "Your updown confirmation code",
            "code": "123456",
            "sentAt": "2023-11-14T22:13:20.250Z",
        },
        {"to": "bob@example.com", "subject": "Hello", "code": None, "sentAt": "2023-11-14T22:14:20.250Z"},
    ]
    assert outbox.read() == [json.loads(line) for line in lines]


def test_outbox_file_mode_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        outbox = Outbox(tmp_path, FrozenClock())
        outbox.send(MailMessage(to="a@example.com", subject="s", body="b"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(outbox.path.stat().st_mode) == 0o600


def test_outbox_read_missing_file_empty(tmp_path: Path) -> None:
    assert Outbox(tmp_path, FrozenClock()).read() == []


def test_outbox_read_skips_broken_lines(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, FrozenClock())
    outbox.send(MailMessage(to="a@example.com", subject="s", body="b", code="111111"))
    with outbox.path.open("a") as f:
        f.write('{"to": "cut sho\n[1, 2]\n')
    outbox.send(MailMessage(to="b@example.com", subject="s", body="b", code="222222"))
    assert [r["code"] for r in outbox.read()] == ["111111", "222222"]


def test_outbox_refuses_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    (tmp_path / "outbox.jsonl").symlink_to(target)
    with pytest.raises(ServiceUnavailable, match="outbox cannot be written"):
        Outbox(tmp_path, FrozenClock()).send(MailMessage(to="a@example.com", subject="s", body="b"))


def _append_many(data_dir: str, worker: int, count: int) -> None:
    outbox = Outbox(data_dir, FrozenClock())
    body = "x" * 5000  # not recorded, but long subjects make torn writes likelier if locking broke
    for i in range(count):
        outbox.send(MailMessage(to=f"w{worker}@example.com", subject=f"{i:04d}" + "y" * 4000, body=body))


def test_outbox_concurrent_appends_from_processes_stay_whole(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers, count = 4, 100
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w, count)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    lines = (tmp_path / "outbox.jsonl").read_text().splitlines()
    assert len(lines) == workers * count
    records = [json.loads(line) for line in lines]  # every line parses: none torn or interleaved
    for w in range(workers):
        mine = [r["subject"][:4] for r in records if r["to"] == f"w{w}@example.com"]
        assert mine == [f"{i:04d}" for i in range(count)]  # each writer's order kept


@pytest.mark.parametrize(("purpose", "words"), [("confirm", "24 hours"), ("reset", "1 hour")])
def test_code_message_says_code_and_lifetime(purpose: str, words: str) -> None:
    message = code_message(to="a@example.com", code="987654", purpose=purpose, lifetime=MAX_TTL[purpose])  # type: ignore[index]
    assert "987654" in message.body
    assert f"expires in {words}" in message.body
    assert (message.code, message.purpose) == ("987654", purpose)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(86400, "24 hours"), (3600, "1 hour"), (900, "15 minutes"), (60, "1 minute"), (90, "90 seconds"), (1, "1 second")],
)
def test_describe_lifetime(seconds: int, text: str) -> None:
    assert describe_lifetime(seconds) == text


@pytest.mark.parametrize("field", ["to", "subject"])
def test_mail_message_refuses_header_line_breaks(field: str) -> None:
    values = {"to": "a@example.com", "subject": "s", "body": "line one\nline two"}
    values[field] = values[field] + "\r\nBcc: victim@example.com"
    with pytest.raises(ServerError):
        MailMessage(**values)
