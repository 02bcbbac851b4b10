"""The blocking API's event loop: a thread of its own, and the anyio portal into it.

anyio's ``start_blocking_portal``, which this replaces, waits for the loop to start in a call a
KeyboardInterrupt can cut short; its clean-up then joins a loop thread nobody asked to stop, for
ever (the realistic-apps drill: Ctrl-C 8-12 ms after ``with ProcessManager()`` began hung 5 of 5
scripts on asyncio, and 18 of 18 from 8 to 80 ms on trio). Here a Ctrl-C while the loop starts or
stops is held until it has (milliseconds), then raised.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import anyio
from anyio.from_thread import BlockingPortal

__all__ = ["LoopThread", "uninterrupted"]


def uninterrupted(step: Callable[[], object], interrupted: list[KeyboardInterrupt]) -> None:
    """Run ``step`` to its end: a Ctrl-C while it waits is kept for later, and it waits on."""
    while True:
        try:
            step()
            return
        except KeyboardInterrupt as exc:
            interrupted.append(exc)


class LoopThread:
    """An event loop of ``backend`` running a :class:`BlockingPortal` in a daemon thread."""

    def __init__(self, backend: str, name: str) -> None:
        self._backend = backend
        self._name = name
        self._thread: threading.Thread | None = None
        self.portal: BlockingPortal | None = None

    def start(self) -> BlockingPortal:
        """Start the thread and return its portal once the loop runs.

        Raises:
            KeyboardInterrupt: a Ctrl-C came while it started; the loop is stopped again.
            BaseException: whatever ended the loop before it ran (an unknown backend...).
        """
        ready = threading.Event()
        started: list[BlockingPortal] = []
        failed: list[BaseException] = []

        async def serve() -> None:
            async with BlockingPortal() as portal:
                started.append(portal)
                ready.set()
                await portal.sleep_until_stopped()

        def run() -> None:
            try:
                anyio.run(serve, backend=self._backend)
            except BaseException as exc:  # reported to the starter, which raises it
                failed.append(exc)
            finally:
                ready.set()

        thread = threading.Thread(target=run, name=self._name, daemon=True)
        interrupted: list[KeyboardInterrupt] = []
        try:
            thread.start()
        except KeyboardInterrupt as exc:
            # Thread.start() waits for the thread to run: a Ctrl-C there may come before the
            # thread is launched (then nothing is to be stopped) or after.
            if not _launched(thread):
                raise
            interrupted.append(exc)
        self._thread = thread
        while True:  # written out: a Ctrl-C as uninterrupted() is entered would escape it
            try:
                ready.wait()
                break
            except KeyboardInterrupt as exc:
                interrupted.append(exc)
        if not started:
            uninterrupted(thread.join, interrupted)
            raise failed[0] if failed else RuntimeError("the event loop thread did not start")
        self.portal = started[0]
        if interrupted:
            self.stop(cancel_remaining=True)
            raise interrupted[0]
        return self.portal

    def stop(self, *, cancel_remaining: bool) -> None:
        """Stop the portal (cancelling the tasks it still runs if ``cancel_remaining``, else
        waiting for them) and join the thread; a Ctrl-C meanwhile is raised once it is done."""
        portal, thread = self.portal, self._thread
        self.portal = self._thread = None
        interrupted: list[KeyboardInterrupt] = []
        if portal is not None:

            def stop_portal() -> None:
                with contextlib.suppress(RuntimeError):  # not running any more
                    portal.call(portal.stop, cancel_remaining)

            uninterrupted(stop_portal, interrupted)
        if thread is not None:
            uninterrupted(thread.join, interrupted)
        if interrupted:
            raise interrupted[0]


def _launched(thread: threading.Thread) -> bool:
    """Whether ``thread.start()``, cut short, launched the thread: it is in threading's limbo
    until it runs, and has its ident from then on."""
    return thread.ident is not None or thread in getattr(threading, "_limbo", {})
