"""Servers the benchmarks measure against: a real `updown serve`, nginx with its own config and a
bare granian app, all on free loopback ports, started and always stopped by the benchmark; plus their RSS."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - a loopback URL we built
                r.read()
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer in {timeout}s:\n{log.read_text(errors='replace')}")


def _launch(
    cmd: list[str], log: Path, health_url: str, *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Starts ``cmd`` in its own session with output to ``log``; waits for ``health_url``; stops it on failure."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
    try:
        _wait_http(health_url, proc, log)
    except BaseException:
        _stop(proc)
        raise
    return proc


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # its own session: the workers stop too
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class _Running:
    """``stop()`` and the context manager for a server process that ``start()`` launches."""

    proc: subprocess.Popen[bytes] | None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        _stop(self.proc)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Updown(_Running):
    """`updown serve` with a throwaway data dir under ``root``."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def start(self) -> Self:
        env = {k: v for k, v in os.environ.items() if not k.startswith("UPDOWN_")}
        env.update(self.env)
        cmd = [sys.executable, "-m", "updown", "serve", "--port", str(self.port), "--data", str(self.data_dir)]
        self.proc = _launch(cmd, self.root / "updown.log", f"{self.url}/healthz", env=env, cwd=self.root)
        return self

    def worker_pids(self) -> list[int]:
        """The server's worker processes (children of the main process)."""
        assert self.proc is not None
        return children(self.proc.pid)


@dataclass
class GranianFloor(_Running):
    """granian running `bench.granian_floor` (a bare ASGI app streaming ``path``), with the HTTP/1
    settings of `updown serve`: the ceiling our GETs are measured against besides nginx."""

    root: Path
    path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        from updown.cli.serve import HTTP1_BUFFER

        env = dict(os.environ, BENCH_FILE=str(self.path))
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
        cmd = [
            sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", "1", "--no-ws", "--http", "1",
            "--http1-buffer-size", str(HTTP1_BUFFER), "--no-log", "bench.granian_floor:app",
        ]  # fmt: skip
        self.proc = _launch(cmd, self.root / "granian-floor.log", f"http://127.0.0.1:{self.port}/ping", env=env)
        return self


def find_nginx() -> str:
    """The nginx binary; installed from Debian's packages when absent (needs root and apt)."""
    for candidate in (shutil.which("nginx"), *NGINX_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return candidate
    for package in ("nginx-light", "nginx"):
        done = subprocess.run(["apt-get", "install", "-y", package], capture_output=True, check=False)
        if done.returncode == 0:
            for candidate in (shutil.which("nginx"), *NGINX_CANDIDATES):
                if candidate and Path(candidate).is_file():
                    return candidate
    raise RuntimeError("nginx is not installed and apt-get could not install it")


@dataclass
class Nginx(_Running):
    """nginx with its own config under ``root``: static files from ``docroot`` at ``/files/``, and
    WebDAV ``PUT`` into ``root/put/`` at ``/put/`` (body size unlimited). One worker, loopback only."""

    root: Path
    docroot: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        binary = find_nginx()
        for sub in ("logs", "put", "body"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        conf = self.root / "nginx.conf"
        # As root, nginx's workers would drop to "nobody", who cannot read our private temp dir.
        user = "user root;" if os.geteuid() == 0 else ""
        conf.write_text(
            f"""
{user}
worker_processes 1;
daemon off;
pid {self.root}/nginx.pid;
error_log {self.root}/logs/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {self.root}/body;
    server {{
        listen 127.0.0.1:{self.port};
        location = /ping {{ return 200 "ok"; }}
        location /files/ {{ alias {self.docroot}/; }}
        location /put/ {{
            alias {self.root}/put/;
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
            client_body_buffer_size 1m;
        }}
    }}
}}
"""
        )
        cmd = [binary, "-p", str(self.root), "-c", str(conf), "-e", str(self.root / "logs" / "error.log")]
        self.proc = _launch(cmd, self.root / "logs" / "stdout.log", f"{self.url}/ping")
        return self


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


def rss_mib(pids: list[int]) -> float:
    """Summed resident memory (VmRSS) of ``pids`` in MiB; vanished processes count 0."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024
