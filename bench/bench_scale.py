"""Scale-out: upload initiation and small GETs through 1, 2 and 3 `updown serve` processes on one
PostgreSQL database, as ratios to 1 process.

Three `updown serve` processes (one server worker each, ``processing.embedded_worker = false``,
as deploy/updown.toml runs them) share a fresh PostgreSQL database (`updown migrate` first, then
the processes; dropped after) and one local storage root. Two workloads, each measured with the
load on the first 1, 2 and 3 processes' ports, interleaved in rounds with the order rotated
(`bench.common.interleaved`): the extra processes stay up, idle, while fewer take the load.

* ``initiate``: ``POST /storage/uploads`` (PUT-mode intents, public/protected/private in turn, as
  `bench.bench_initiate` sends them) with a bearer token signed in on the first process;
* ``cdn GET``: ``GET /cdn/bench/small.bin``, a 4 KiB public file (stored once through a presigned
  ``/s3`` PUT on one process, so it has its ready row), anonymous: what a deployment serves most.

The load is `bench.bench_initiate`'s raw asyncio HTTP/1.1 client in this process: 48 keep-alive
connections in all whatever the number of processes, dealt round-robin over their ports, a few
thousand requests a round (or a few seconds, whichever ends first); every answer is checked (201
with an ``uploadId``; 200 and the file's last 64 bytes). Each ratio is the median of the rounds' ratios.
On a machine with 2 cores shared by the client, PostgreSQL and the servers, a second process can
at most take the idle share of the cores, and a third mostly adds contention: expect a curve.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from bench.bench_initiate import LEVELS, Result, Target, _failures, _raw_round, _sign_in, _target
from bench.bench_jobs import _pg_database
from bench.common import Row, interleaved, paired
from bench.servers import Server, clean_env
from updown.core.sigv4 import Credentials, Signer, object_url

PROCESSES = 3
CONCURRENCY = 48  # in all, dealt over the ports: 48, 24 + 24, 16 + 16 + 16
SMALL = 4096
ACCESS_KEY = "AKIABENCHSCALEOUT001"
SECRET_KEY = "bench-scale-secret-0123456789abcdefghij"


@contextmanager
def _cluster(root: Path, database_url: str) -> Iterator[list[Server]]:
    """PROCESSES `updown serve`s on ``database_url`` (migrated first) and one storage root."""
    env = clean_env(
        {
            "UPDOWN_DATABASE__URL": database_url,
            "UPDOWN_STORAGE__BACKEND": "local",
            "UPDOWN_STORAGE__ROOT": str(root / "objects"),
            "UPDOWN_PROCESSING__EMBEDDED_WORKER": "false",
            "UPDOWN_AUTH__KEY_ENCRYPTION_KEY": secrets.token_hex(32),
            "UPDOWN_S3__ACCESS_KEY_ID": ACCESS_KEY,
            "UPDOWN_S3__SECRET_ACCESS_KEY": SECRET_KEY,
        }
    )
    servers = [Server(root / f"api-{i + 1}" / "data", env=env) for i in range(PROCESSES)]
    # One public URL for all, as behind a front: the tokens' issuer and the presigned URLs agree.
    env["UPDOWN_SERVER__PUBLIC_URL"] = servers[0].url
    servers[0].data_dir.parent.mkdir(parents=True)
    migrated = servers[0].cli("migrate", check=False)
    if migrated.returncode != 0:
        raise RuntimeError(f"updown migrate failed:\n{migrated.stdout}{migrated.stderr}")
    with ExitStack() as stack:
        with ThreadPoolExecutor(PROCESSES) as pool:
            started = [pool.submit(s.start) for s in servers]
            for server in servers:
                stack.callback(server.stop)  # every one, even if another failed to start
            for future in started:
                future.result()
        yield servers


def _put_small(server: Server, key: str, body: bytes) -> None:
    """``key`` stored through a presigned /s3 PUT with the service's credentials (a ready row)."""
    signer = Signer(Credentials(ACCESS_KEY, SECRET_KEY), "us-east-1")
    url = signer.presign("PUT", object_url(f"{server.url}/s3", "files", key), expires=600, now=time.time())
    r = httpx.put(url, content=body, timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"PUT {key} answered {r.status_code}: {r.text[:300]}")


def _scale_rows(what: str, per_n: dict[int, list[Result]], failed: str, note: str, setup: str) -> list[Row]:
    rates = {n: [r.rate for r in results] for n, results in per_n.items()}
    one = statistics.median(rates[1])
    rows = [Row(f"scale {what}: 1 process", 0.0 if failed else one, None, "req/s", note=failed or note)]
    for n in range(2, PROCESSES + 1):
        rows.append(
            paired(
                f"scale {what}: {n} processes vs 1",
                [0.0] * len(rates[n]) if failed else rates[n],
                rates[1],
                "req/s",
                "1 process",
                note=failed or setup,
            )
        )
    return rows


def _measure(targets: list[tuple[int, Target]], rounds: int, total: int, seconds: float) -> dict[int, list[Result]]:
    """Rounds of the load on the first 1, 2 … PROCESSES ``targets``, interleaved; ``[0]`` holds the
    warm-up round over all of them (which checks every process's answers once)."""
    per_n: dict[int, list[Result]] = {
        0: [asyncio.run(_raw_round(targets, total=300, seconds=seconds, concurrency=CONCURRENCY))]
    }

    def side(n: int) -> Callable[[], float]:
        per_n[n] = []

        def once() -> float:
            result = asyncio.run(_raw_round(targets[:n], total=total, seconds=seconds, concurrency=CONCURRENCY))
            per_n[n].append(result)
            return result.rate

        return once

    interleaved([side(n) for n in range(1, PROCESSES + 1)], rounds)
    return per_n


def run(quick: bool = False) -> list[Row]:
    rounds, total, seconds = (3, 1500, 1.5) if quick else (5, 3000, 3.0)
    load = os.getloadavg()[0]
    setup = f"{CONCURRENCY} keep-alive in all, {os.cpu_count()} cores shared with client + PostgreSQL, load {load:.1f}"
    with (
        tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp,
        _pg_database("bench_scale") as database_url,
    ):
        if database_url is None:
            return [Row("scale: no PostgreSQL (UPDOWN_TEST_DATABASE_URL or 127.0.0.1:5432)", 0.0, None, "req/s")]
        with _cluster(Path(tmp), database_url) as servers:
            auth = {"Authorization": f"Bearer {_sign_in(servers[0])}"}
            body = os.urandom(SMALL)
            _put_small(servers[-1], "public/bench/small.bin", body)
            intents: list[tuple[str, str, dict[str, str], object]] = [
                ("POST", "/storage/uploads", auth, {"accessLevel": level, "contentType": "image/jpeg", "size": 1 << 20})
                for level in LEVELS
            ]
            workloads = {
                "initiate": [(s.port, _target(s.port, "initiate", intents, 201, b'"uploadId"')) for s in servers],
                "cdn GET 4 KiB": [
                    (s.port, _target(s.port, "cdn", [("GET", "/cdn/bench/small.bin", {}, None)], 200, body[-64:]))
                    for s in servers
                ],
            }
            measured = {what: _measure(targets, rounds, total, seconds) for what, targets in workloads.items()}
    rows: list[Row] = []
    for what, per_n in measured.items():
        everything = [r for results in per_n.values() for r in results]
        timed = {n: results for n, results in per_n.items() if n}
        sent = sum(r.ok for n, results in timed.items() for r in results)
        note = f"{sent:,} requests in {rounds} rounds x {PROCESSES} sides, all checked"
        rows += _scale_rows(what, timed, _failures(everything), note, setup)
    return rows


if __name__ == "__main__":
    for row in run(quick=bool(os.environ.get("BENCH_QUICK"))):
        print(row.line())
