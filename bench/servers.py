"""Servers the benchmarks measure against: a real `updown serve`, nginx with its own config (and
nginx in front of `updown serve` with download offload, `tests.support.nginx`) and a bare granian
app, all on free loopback ports, started and always stopped by the benchmark; plus their RSS."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from tests.support.nginx import OffloadFront, find_nginx
from tests.support.processes import Running, Server, children, clean_env, free_port, launch

__all__ = ["GranianFloor", "Nginx", "OffloadFront", "Server", "children", "clean_env", "rss_mib"]


@dataclass
class GranianFloor(Running):
    """granian running a bare floor app with the HTTP/1 settings of `updown serve`: by default
    `bench.granian_floor` (streaming ``path``), the ceiling our GETs are measured against besides
    nginx; `bench.fastapi_floor` for initiation."""

    root: Path
    path: Path
    app: str = "bench.granian_floor:app"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        from updown.web.supervisor import HTTP1_BUFFER

        env = dict(os.environ, BENCH_FILE=str(self.path))
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
        cmd = [
            sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", "1", "--no-ws", "--http", "1",
            "--http1-buffer-size", str(HTTP1_BUFFER), "--no-log", self.app,
        ]  # fmt: skip
        log = self.root / f"floor-{self.port}.log"
        self.proc = launch(cmd, log, f"http://127.0.0.1:{self.port}/ping", env=env)
        return self


@dataclass
class Nginx(Running):
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
        self.proc = launch(cmd, self.root / "logs" / "stdout.log", f"{self.url}/ping")
        return self


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
