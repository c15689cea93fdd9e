"""A worker's stop request: set from any thread, awaited on the worker's own event loop.

Both queue workers (`worker.Worker`, `queue_procrastinate`) run on a loop of their own, in a
thread of `updown serve` or as `updown worker`, and are stopped from another thread (the server
shutting down) or from a task on that loop (the worker's signal handler). Their waits (the next
poll, the next periodic run, the stop itself) end the moment `set` is called, through an event on
the loop, instead of each looking at a flag every 50 ms: that was 40 wakeups a second with one
lane, each taking the GIL from the request loop, and 1.9% of a core in an idle `updown serve`
worker (0.5% since).
"""

from __future__ import annotations

import threading

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.lowlevel import EventLoopToken


class Stopping:
    """The stop flag, plus the event that wakes the loop currently `attach`ed to it."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._event: anyio.Event | None = None
        self._token: EventLoopToken | None = None
        self._loop_thread = 0

    def is_set(self) -> bool:
        return self._flag.is_set()

    def attach(self) -> None:
        """Called on the worker's loop before it waits: `set` wakes this loop from now on."""
        self._event = anyio.Event()
        self._token = anyio.lowlevel.current_token()
        self._loop_thread = threading.get_ident()
        if self._flag.is_set():  # set before there was a loop to wake
            self._event.set()

    def set(self) -> None:
        """Asks the worker to stop, from any thread; wakes its loop's waits at once."""
        self._flag.set()
        event, token = self._event, self._token
        if event is None or token is None:
            return  # not attached yet: `attach` sees the flag
        if threading.get_ident() == self._loop_thread:
            event.set()  # on the worker's own loop (`updown worker`'s signal handler)
            return
        try:
            anyio.from_thread.run_sync(event.set, token=token)
        except RuntimeError:
            event.set()  # the loop has ended: nothing waits on it

    async def wait(self) -> None:
        """Returns once `set` is called (`attach` first, on this loop)."""
        assert self._event is not None, "attach() first"
        await self._event.wait()

    async def sleep(self, seconds: float) -> None:
        """Sleeps ``seconds``, or until `set` is called."""
        with anyio.move_on_after(seconds):
            await self.wait()
