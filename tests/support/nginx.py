"""nginx for tests and benchmarks: finding (or installing) the binary, and nginx in front of
`updown serve` with download offload, from the config template ``nginx_offload.conf``."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from tests.support.processes import Running, free_port, launch

TEMPLATE = Path(__file__).with_name("nginx_offload.conf")
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


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


def render(*, run: Path, listen: str, upstream: str, prefix: str, objects: Path) -> str:
    """The offload config for these places (see the template's header)."""
    # As root, nginx's workers would drop to "nobody", who cannot read a private data dir.
    user = "user root;" if os.geteuid() == 0 else ""
    values = {
        "@USER@": user,
        "@RUN@": str(run),
        "@LISTEN@": listen,
        "@UPSTREAM@": upstream,
        "@PREFIX@": prefix,
        "@OBJECTS@": str(objects).rstrip("/"),
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(name, value)
    return text


@dataclass
class OffloadFront(Running):
    """nginx on a free loopback port in front of ``upstream_port``, serving offloaded GETs from
    ``objects`` (the local backend's ``<root>/objects``); its files live under ``run``."""

    run: Path
    upstream_port: int
    objects: Path
    prefix: str = "/_updown_objects/"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        binary = find_nginx()
        for sub in ("body", "proxy"):
            (self.run / sub).mkdir(parents=True, exist_ok=True)
        conf = self.run / "nginx.conf"
        conf.write_text(
            render(
                run=self.run,
                listen=f"127.0.0.1:{self.port}",
                upstream=f"127.0.0.1:{self.upstream_port}",
                prefix=self.prefix,
                objects=self.objects,
            )
        )
        cmd = [binary, "-p", str(self.run), "-c", str(conf), "-e", str(self.run / "error.log")]
        self.proc = launch(cmd, self.run / "stdout.log", f"{self.url}/healthz")
        return self
