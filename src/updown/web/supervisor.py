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

import importlib.util
import sys
from typing import Final

# Uploads reach Python in chunks of up to this buffer's size: each chunk is one receive() and one
# cross-thread wakeup of the loop; the buffer only grows to it for a body that arrives faster than
# it is read. 1 GiB PUTs through `updown serve` against one MD5 pass right before each (4 servers
# side by side, rotated, 9 rounds, 16 MiB ring): 1 MiB 0.918x median, 2 MiB 0.961x, 4 MiB 0.966x,
# 8 MiB 0.955x; the worker's RSS after them 108, 111, 119, 125 MiB. An earlier run had 1 MiB 0.89x
# against 256 KiB 0.81x.
HTTP1_BUFFER: Final = 2 * 1024 * 1024


def command(host: str, port: int, workers: int) -> list[str]:
    """The argv ``serve`` execs into."""
    return [sys.executable, "-m", "updown.web.supervisor", host, str(port), str(workers)]


def main(argv: list[str]) -> None:
    if len(argv) != 3 or not argv[1].isdigit() or not argv[2].isdigit():
        raise SystemExit("usage: python -m updown.web.supervisor HOST PORT WORKERS (started by `updown serve`)")
    from granian import Granian
    from granian.constants import Interfaces, Loops
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
        loop=Loops(event_loop()),
    ).serve()


def event_loop() -> str:
    """uvloop where it is installed (a dependency except on Windows), else asyncio's own loop.

    Measured with `python -m bench --quick initiate` (two runs each): 338 and 351 req/s with uvloop
    against 292 and 310 with asyncio's loop, and /healthz 8.4k-11.8k against 4.8k-6.8k req/s; 1 GiB
    PUTs 0.90x one MD5 pass against 0.89x. Named, not granian's "auto", which would take rloop too.
    """
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


if __name__ == "__main__":
    main(sys.argv[1:])
