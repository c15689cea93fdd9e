"""The one process launcher of the tests and the benchmarks: `updown serve`, `updown worker` (and
any other server) on a free loopback port, in its own session, waited for, always stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without UPDOWN_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPDOWN_")}
    env.update(extra or {})
    return env


def launch(
    cmd: list[str],
    log: Path,
    health_url: str | None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 30.0,
    ready: Callable[[], bool] | None = None,
) -> subprocess.Popen[bytes]:
    """Starts ``cmd`` in its own session with output to ``log``, waits until ``health_url``
    answers 200 (or, for a process without one, until ``ready()`` is true), and stops it again if
    that never happens."""
    if health_url is not None:
        url = health_url

        def answers() -> bool:
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        ready = answers
    if ready is None:
        raise ValueError("launch() needs a health_url or a ready() check")
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[:4]!r} exited with {proc.returncode}:\n{tail(log)}")
        if ready():
            return proc
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError(f"{cmd[:4]!r} was not ready in {timeout}s:\n{tail(log)}")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM to the process's whole session (its workers too); SIGKILL after 10 s."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def kill(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL to the process's whole session: a crash, nothing gets to clean up."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def tail(log: Path, lines: int = 60) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (a /proc scan)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


class Running:
    """``stop()`` and the context manager of a server that ``start()`` launches into ``proc``."""

    proc: subprocess.Popen[bytes] | None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        stop(self.proc)

    def kill(self) -> None:
        """kill -9 of the whole process session."""
        kill(self.proc)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Server(Running):
    """`updown serve` with the data dir ``data_dir`` (its parent holds the log); ``url`` is its base
    URL. ``env`` is the whole environment of the server (see `clean_env`)."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=clean_env)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.data_dir.parent / f"serve-{self.port}.log"

    def start(self, *args: str, timeout: float = 30.0) -> Self:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "updown", "serve", "--port", str(self.port), "--data", str(self.data_dir), *args]
        self.proc = launch(
            cmd, self.log, f"{self.url}/healthz", env=self.env, cwd=self.data_dir.parent, timeout=timeout
        )
        return self

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log, lines)

    def cli(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Runs an `updown` command against this server's data dir and settings."""
        return subprocess.run(
            [sys.executable, "-m", "updown", *args, "--data", str(self.data_dir)],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.data_dir.parent,
            check=check,
            input=input,
            timeout=60,
        )

    def worker_pids(self) -> list[int]:
        """The server's worker processes (children of the main process)."""
        assert self.proc is not None
        return children(self.proc.pid)


@dataclass
class Worker(Running):
    """`updown worker` with the data dir ``data_dir`` (its parent holds the log ``<name>.log``),
    its health listener on ``port``. ``env`` is the whole environment of the worker (see `clean_env`)."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=clean_env)
    name: str = "worker"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    def start(self, *args: str, timeout: float = 30.0) -> Self:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "updown", "worker", "--data", str(self.data_dir)]
        cmd += ["--health-port", str(self.port), *args]
        self.proc = launch(
            cmd, self.log, f"{self.url}/healthz", env=self.env, cwd=self.data_dir.parent, timeout=timeout
        )
        return self

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log, lines)
