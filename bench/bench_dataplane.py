"""The data plane moving 1 GiB (quick: 256 MiB) beside nginx and granian on loopback, in one run.

Downloads, as pairs measured back to back in 9 rounds, which side goes first alternating
(`bench.common.back_to_back`): a presigned GET through `updown serve` (200) beside a bare ASGI app
streaming the file under granian (`bench.granian_floor`: the most any app served by granian can do
here); a presigned GET through nginx in front of a second `updown serve` with
``storage.offload = "x-accel-redirect"`` (updown decides, nginx sends the bytes) beside nginx serving
the file directly; the first GET as a ranged request (``Range: bytes=0-``, 206) beside the bare app
again. Uploads, interleaved in rounds with the order rotated (`bench.common.interleaved`): a
presigned PUT (stored with its MD5 ETag and fsynced), one single-core MD5 pass over the same bytes,
nginx accepting the same PUT (WebDAV, no fsync; its dirty pages synced untimed), and the disk
writing and fsyncing the same bytes; a PUT is held to MD5 (the issue's goal) and to the slower of
MD5 and the disk in its round (its ceiling). One raw-socket client for everything (``sendfile``
up, ``recv_into`` down); each ratio is the median of the rounds' ratios; the plain
server's worker memory is sampled throughout.
"""

from __future__ import annotations

import hashlib
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from bench.common import Row, back_to_back, interleaved, paired
from bench.servers import GranianFloor, Nginx, OffloadFront, Server, clean_env, rss_mib
from updown.core.sigv4 import Credentials, Signer, object_url

MIB = 1024 * 1024
ROUNDS = 5
GET_ROUNDS = 9
ACCESS_KEY = "AKIABENCHDATAPLANE01"
SECRET_KEY = "bench-dataplane-secret-0123456789abcdef"
# Streaming holds a transfer to its buffers: one 16 MiB hash/write ring and 2 MiB receive buffers
# for a PUT, 256 KiB pieces for a GET. The worker's resting RSS (~100 MiB, the frameworks) is
# held by tests/e2e/test_serve_memory.py, not here.
RSS_RISE_GOAL_MIB = 32.0


def _request(port: int, head: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(head.encode())
    return s


def _read_head(s: socket.socket, buf: bytearray) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError(f"connection closed before the response head: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, rest


def download(port: int, target: str, extra: str = "") -> float:
    """GET ``target``; returns bytes per second of the whole exchange."""
    buf = bytearray(4 * MIB)
    view = memoryview(buf)
    t0 = time.perf_counter()
    with _request(port, f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n") as s:
        status, headers, rest = _read_head(s, buf)
        if status not in (200, 206):
            raise RuntimeError(f"GET {target} answered {status}")
        left = int(headers["content-length"]) - len(rest)
        total = int(headers["content-length"])
        while left > 0:
            n = s.recv_into(view, min(left, len(buf)))
            if n == 0:
                raise RuntimeError("download cut short")
            left -= n
    return total / (time.perf_counter() - t0)


def upload(port: int, target: str, path: Path) -> tuple[float, dict[str, str]]:
    """PUT the file at ``path`` (sent with sendfile); returns bytes per second and the answer's headers."""
    size = path.stat().st_size
    t0 = time.perf_counter()
    head = f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    with _request(port, head) as s, path.open("rb") as f:
        s.sendfile(f)
        status, headers, _ = _read_head(s, bytearray())
    if status not in (200, 201, 204):
        raise RuntimeError(f"PUT {target} answered {status}")
    return size / (time.perf_counter() - t0), headers


def md5_rate(path: Path) -> tuple[float, str]:
    """Single-core MD5 over the file (read from the page cache); bytes per second and the digest."""
    md5 = hashlib.md5(usedforsecurity=False)
    buf = bytearray(MIB)
    view = memoryview(buf)
    t0 = time.perf_counter()
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            md5.update(view[:n])
    return path.stat().st_size / (time.perf_counter() - t0), md5.hexdigest()


def disk_rate(source: Path, target: Path) -> float:
    """Write the file's bytes to ``target`` and fsync: the disk's durable write rate, bytes per second."""
    buf = bytearray(MIB)
    t0 = time.perf_counter()
    with source.open("rb", buffering=0) as src, target.open("wb", buffering=0) as dst:
        while n := src.readinto(buf):
            dst.write(memoryview(buf)[:n])
        os.fsync(dst.fileno())
    rate = source.stat().st_size / (time.perf_counter() - t0)
    target.unlink()
    return rate


@contextmanager
def peak_rss(pids: list[int]) -> Iterator[list[float]]:
    """Samples the summed RSS of ``pids`` every 10 ms; the yielded list ends as [baseline, peak]."""
    result = [rss_mib(pids), 0.0]
    result[1] = result[0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            result[1] = max(result[1], rss_mib(pids))
            time.sleep(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()


def _make_file(path: Path, size: int) -> None:
    block = os.urandom(MIB)
    with path.open("wb") as f:
        for i in range(size // MIB):
            # Every MiB differs a little, so nothing along the way can dedupe or compress it.
            f.write(i.to_bytes(8, "little") + block[8:])
        # Flushed now, so its writeback does not land in the middle of the timed uploads.
        f.flush()
        os.fsync(f.fileno())


def run(quick: bool = False) -> list[Row]:
    size = (256 if quick else 1024) * MIB
    label = "256 MiB" if quick else "1 GiB"
    rounds = 3 if quick else ROUNDS
    get_rounds = 3 if quick else GET_ROUNDS
    creds = Credentials(ACCESS_KEY, SECRET_KEY)
    signer = Signer(creds, "us-east-1")
    env = {"UPDOWN_S3__ACCESS_KEY_ID": ACCESS_KEY, "UPDOWN_S3__SECRET_ACCESS_KEY": SECRET_KEY}
    offload_env = {**env, "UPDOWN_STORAGE__OFFLOAD": "x-accel-redirect"}
    with tempfile.TemporaryDirectory(prefix="bench-dataplane-") as tmp:
        root = Path(tmp)
        (root / "www").mkdir()
        source = root / "www" / "file.bin"
        _make_file(source, size)
        with (
            Server(root / "plain" / "data", env=clean_env(env)) as ours,
            Server(root / "offload" / "data", env=clean_env(offload_env)) as offloading,
            OffloadFront(root / "front", offloading.port, offloading.data_dir / "objects" / "objects") as front,
            Nginx(root / "nginx", root / "www") as nginx,
            GranianFloor(root, source) as floor,
        ):

            def target(port: int, method: str, key: str) -> str:
                url = signer.presign(
                    method, object_url(f"http://127.0.0.1:{port}/s3", "files", key), expires=3600, now=time.time()
                )
                return url.split(str(port), 1)[1]

            workers = ours.worker_pids()
            upload(ours.port, target(ours.port, "PUT", "bench/file.bin"), source)  # what the GETs read
            upload(front.port, target(front.port, "PUT", "bench/file.bin"), source)
            get_target = target(ours.port, "GET", "bench/file.bin")  # valid for an hour
            ours_get = partial(download, ours.port, get_target)
            ranged_get = partial(download, ours.port, get_target, "Range: bytes=0-\r\n")
            floor_get = partial(download, floor.port, "/file.bin")
            nginx_get = partial(download, nginx.port, "/files/file.bin")
            offload_get = partial(download, front.port, target(front.port, "GET", "bench/file.bin"))
            # One untimed read of each first: the upload drops its pages from the cache (O_DIRECT),
            # while nginx's file is warm; every side is then measured from the page cache.
            for fn in (ours_get, ranged_get, floor_get, nginx_get, offload_get):
                fn()
            # Each goal's two sides back to back (a 1 GiB GET is ~0.4 s, and one GET alone varies
            # by +-20% here, so sides far apart in a round pick up different noise).
            with peak_rss(workers) as get_rss:
                (ours_g, granian_g), (offload_g, nginx_g), (ranged_g, granian_r) = back_to_back(
                    [(ours_get, floor_get), (offload_get, nginx_get), (ranged_get, floor_get)], get_rounds
                )

            # Uploads against one MD5 pass over the same bytes, interleaved, and nginx's WebDAV PUT.
            etags: list[str] = []
            digest = md5_rate(source)[1]

            def put_once() -> float:
                rate, headers = upload(ours.port, target(ours.port, "PUT", "bench/upload.bin"), source)
                etags.append(headers.get("etag", ""))
                return rate

            def nginx_put() -> float:
                rate = upload(nginx.port, "/put/upload.bin", source)[0]
                # Untimed: nginx does not fsync, and its 1 GiB of dirty pages would otherwise be
                # written back during whichever upload comes next (ours fsyncs inside its time).
                os.sync()
                return rate

            uploads: dict[str, Callable[[], float]] = {
                "ours": put_once,
                "md5": lambda: md5_rate(source)[0],
                "nginx": nginx_put,
                "disk": lambda: disk_rate(source, root / "disk-probe.bin"),
            }
            with peak_rss(workers) as put_rss:
                put = dict(zip(uploads, interleaved(list(uploads.values()), rounds), strict=True))
            if set(etags) != {f'"{digest}"'}:
                raise RuntimeError(f"upload ETags {etags} are not the MD5 {digest}")

    def rss_note(r: list[float]) -> str:
        rise = r[1] - r[0]
        verdict = "ok" if rise < RSS_RISE_GOAL_MIB else "ABOVE GOAL"
        return f"rise {rise:+.0f} MiB over {r[0]:.0f} MiB at rest, goal < {RSS_RISE_GOAL_MIB:g} MiB {verdict}"

    gib, mib = 1024 * MIB, MIB
    ceiling = [min(m, d) for m, d in zip(put["md5"], put["disk"], strict=True)]
    return [
        paired(f"dataplane GET {label} vs bare granian app", ours_g, granian_g, "GiB/s", "granian",
               scale=gib, goal=0.9, note="granian's ceiling: a 20-line ASGI app streaming the file"),
        paired(f"dataplane GET {label} nginx+offload vs nginx", offload_g, nginx_g, "GiB/s", "nginx",
               scale=gib, goal=0.9, note="X-Accel-Redirect; nginx serving the file directly"),
        paired(f"dataplane GET {label} vs nginx", ours_g, nginx_g, "GiB/s", "nginx", scale=gib),
        paired(f"dataplane GET {label} ranged (bytes=0-) vs granian", ranged_g, granian_r, "GiB/s",
               "granian", scale=gib),
        paired(f"dataplane PUT {label} (MD5 ETag, fsync)", put["ours"], put["md5"], "MiB/s", "md5 1 core",
               scale=mib, goal=0.9, note=f"disk write+fsync {statistics.median(put['disk']) / mib:,.0f} MiB/s"),
        paired(f"dataplane PUT {label} vs its ceiling", put["ours"], ceiling, "MiB/s", "min(md5, disk)", scale=mib,
               note="per round, the slower of one MD5 pass and the disk's write+fsync of the same bytes"),
        paired(f"dataplane PUT {label} vs nginx PUT (no fsync)", put["ours"], put["nginx"], "MiB/s", "nginx",
               scale=mib),
        Row("dataplane peak worker RSS during GETs", get_rss[1], None, "MiB", note=rss_note(get_rss)),
        Row("dataplane peak worker RSS during PUTs", put_rss[1], None, "MiB", note=rss_note(put_rss)),
    ]  # fmt: skip


if __name__ == "__main__":
    for row in run(quick=bool(os.environ.get("BENCH_QUICK"))):
        print(row.line())
