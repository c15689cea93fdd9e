"""What `updown serve` becomes once the data dir is ready: granian's supervisor, and nothing else.

``serve`` (cli/serve.py) loads the settings, migrates in a child process, pins the settings for the
server workers in the environment, then replaces itself (``os.execv``) with
``python -m updown.web.supervisor HOST PORT WORKERS``. The supervisor only starts, watches and
restarts the workers (each builds the app in ``updown.web.asgi:factory``), so it imports granian
alone: not click, not the CLI's commands, not the settings (measured: 21 MiB resident instead of
33 MiB when the CLI process itself ran granian). Same process id, so a signal sent to the process
`updown serve` started reaches granian.
"""

from __future__ import annotations

import sys
from typing import Final

# Uploads reach Python in chunks of up to this buffer's size. With the ring pipeline
# (storage/local/ring.py) 256 KiB is as fast as 1 MiB (1 GiB PUT 0.93-1.01x MD5 vs 0.91-0.97x) and
# keeps the worker's peak RSS ~4 MiB lower; 128 KiB was slower (0.80-0.85x).
HTTP1_BUFFER: Final = 256 * 1024


def command(host: str, port: int, workers: int) -> list[str]:
    """The argv ``serve`` execs into."""
    return [sys.executable, "-m", "updown.web.supervisor", host, str(port), str(workers)]


def main(argv: list[str]) -> None:
    if len(argv) != 3 or not argv[1].isdigit() or not argv[2].isdigit():
        raise SystemExit("usage: python -m updown.web.supervisor HOST PORT WORKERS (started by `updown serve`)")
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    Granian(
        "updown.web.asgi:factory",
        factory=True,
        address=argv[0],
        port=int(argv[1]),
        workers=int(argv[2]),
        interface=Interfaces.ASGI,
        log_access=False,
        http1_settings=HTTP1Settings(max_buffer_size=HTTP1_BUFFER),
    ).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
