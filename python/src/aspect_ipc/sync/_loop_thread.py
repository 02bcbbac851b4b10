"""The blocking API's event loop: a thread of its own, the anyio portal into it, and the task that
hosts the async manager there.

Starting and stopping it are the two moments a Ctrl-C in the main thread must not break, and
neither waits on anything a KeyboardInterrupt can leave broken:

- anyio's ``start_blocking_portal``, which this replaces, waited for the loop in a call a
  KeyboardInterrupt cuts short, and its clean-up then joined a loop thread nobody asked to stop,
  for ever (the realistic-apps drill: Ctrl-C 8-12 ms after ``with ProcessManager()`` began hung
  5 of 5 scripts on asyncio, 18 of 18 from 8 to 80 ms on trio);
- a ``threading.Event``, a ``Condition`` or a ``concurrent.futures.Future`` (the portal's calls)
  waited on in the main thread can be left with its lock held by a KeyboardInterrupt that lands
  between taking the lock and the ``with`` block around it; the loop thread then blocks for
  ever on that lock as it sets the result (the leaks drill: a SIGINT per cycle, hung within a
  few hundred cycles).

So the loop thread starts the host itself and hands over what the starter needs in a list, with
a wake-up through a :class:`queue.SimpleQueue` (written in C: an interrupted ``get`` leaves it
whole); the stop is a byte written to a socket the loop watches, and its end is a flag the loop
thread sets last, with a wake-up through another queue (``is_alive()`` and ``join()``, interrupted,
can mark the thread ended while it runs, or raise RuntimeError: see :func:`_join`). A Ctrl-C
meanwhile is held until the loop has started or stopped (milliseconds; the workers' stop takes
its grace), then raised.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskStatus
from anyio.from_thread import BlockingPortal

__all__ = ["Host", "LoopThread", "hold_sigint", "keep_sigint", "note_sigint", "release_sigint"]

Host = Callable[..., Awaitable[None]]
"""``host(portal, stopping, *, task_status)``: runs until ``stopping`` is set; what it gives
``task_status.started(value)`` is what :meth:`LoopThread.start` returns with the portal."""

_WAIT, _CANCEL = b"w", b"c"  # stop: let the portal's tasks end, or cancel them
_LOOK_AGAIN = 0.05  # seconds between two looks at what the loop thread handed over


class LoopThread:
    """An event loop of ``backend`` in a daemon thread, with a portal and a host task."""

    def __init__(self, backend: str, name: str) -> None:
        self._backend = backend
        self._name = name
        self._thread: threading.Thread | None = None
        self._stop_reader, self._stop_writer = socket.socketpair()
        self.host_error: BaseException | None = None
        """What the host raised after it started (its start's failure is raised by start)."""
        self.host_done = False
        """Whether the host has returned (or failed)."""
        self.running = False
        """Whether the thread is started and not yet stopped by :meth:`stop` (an attribute, not
        a property: reading it is no call, where a KeyboardInterrupt could be raised)."""
        # Set by the loop thread as it ends: an interrupted join() can leave the thread marked
        # stopped while it runs on (the main thread then went on with the workers still
        # stopping), so the end is waited for here, join() only after it.
        self._ended: list[bool] = []
        self._end: queue.SimpleQueue[None] = queue.SimpleQueue()

    def start(self, host: Host) -> tuple[BlockingPortal, Any]:
        """Start the thread; return the portal and what ``host`` started with, once it has.

        Ctrl-C is held from the first line (noted, not raised) and still held on return: the
        caller keeps this object where its clean-up finds it, then calls :func:`release_sigint`
        and raises a Ctrl-C that came meanwhile once it has stopped the loop. Held until then,
        no KeyboardInterrupt can land between the start and the moment the caller owns it.

        Raises:
            KeyboardInterrupt: a Ctrl-C came while it started; the loop is stopped again.
            BaseException: what the host raised before it started, or whatever ended the loop
                (an unknown backend...).
        """
        # What the loop thread hands over goes in a list, ``ready`` or ``failed``; ``handed`` only
        # wakes the starter: a KeyboardInterrupt as get() returns loses what it returns (raised
        # before the assignment), and a wake-up lost is found again by the next look, an item
        # would not be. Once the host has started, the starter makes no call until it returns:
        # a call is where a KeyboardInterrupt is raised, and one there would leave the loop and
        # its workers running with nobody to stop them.
        # Ctrl-C is held from here until the caller releases it (see the docstring), written
        # out, not a call: a KeyboardInterrupt lands as a call to a function of ours begins.
        try:
            previous = signal.signal(signal.SIGINT, note_sigint)
        except ValueError:  # not the main thread, which alone gets KeyboardInterrupt
            previous = None
        keep_sigint(previous)
        ready: list[tuple[BlockingPortal, Any]] = []
        failed: list[BaseException] = []
        handed: queue.SimpleQueue[None] = queue.SimpleQueue()

        def hand_over(outcome: tuple[BlockingPortal, Any] | BaseException) -> None:
            (failed if isinstance(outcome, BaseException) else ready).append(outcome)  # type: ignore[arg-type]
            handed.put(None)

        async def serve() -> None:
            async with BlockingPortal() as portal:
                stopping = anyio.Event()
                try:
                    async with anyio.create_task_group() as task_group:
                        started = await task_group.start(self._host, host, portal, stopping)
                        hand_over((portal, started))
                        await anyio.wait_readable(self._stop_reader)
                        how = self._stop_reader.recv(1)
                        stopping.set()
                except BaseException as exc:
                    hand_over(exc)  # read only if the host had not started
                    raise
                if how == _CANCEL:
                    await portal.stop(cancel_remaining=True)

        def run() -> None:
            try:
                anyio.run(serve, backend=self._backend)
            except BaseException as exc:  # the host's failure or the loop's: for the starter
                hand_over(exc)
            finally:
                self._ended.append(True)
                self._end.put(None)

        thread = threading.Thread(target=run, name=self._name, daemon=True)
        interrupted: list[KeyboardInterrupt] = []
        try:
            thread.start()
        except KeyboardInterrupt as exc:
            # Thread.start() waits for the thread to run: a Ctrl-C there may come before the
            # thread is launched (then nothing is to be stopped) or after.
            if not _launched(thread):
                self._close_sockets()
                release_sigint([])  # a program's own handler raised it: nothing was held
                raise
            interrupted.append(exc)
        self._thread = thread
        self.running = True
        while not (ready or failed):  # written out: a Ctrl-C entering a call would escape
            try:
                hold_sigint()  # as stop() does: a storm is noted, not raised
                handed.get(timeout=_LOOK_AGAIN)
            except queue.Empty:
                if not (ready or failed) and self._ended:  # not is_alive(): see _join
                    failed.append(RuntimeError("the event loop thread ended before it started"))
            except KeyboardInterrupt as exc:
                if not interrupted:
                    interrupted.append(exc)
        if not ready:
            self._wait_for_the_end(thread, interrupted)
            self.running = False
            self._close_sockets()
            release_sigint(interrupted)
            raise failed[0]
        if interrupted or _sigints_held:
            # Still held: the stop starts with no SIGINT able to raise at its first line.
            self.stop(cancel_remaining=True)
            raise interrupted[0] if interrupted else KeyboardInterrupt()
        return ready[0]  # Ctrl-C still held: the caller releases it once it holds the thread

    async def _host(
        self,
        host: Host,
        portal: BlockingPortal,
        stopping: anyio.Event,
        *,
        task_status: TaskStatus[Any],
    ) -> None:
        started = False

        def started_with(value: Any = None) -> None:
            nonlocal started
            started = True
            task_status.started(value)

        status = _Status(started_with)
        try:
            await host(portal, stopping, task_status=status)
        except BaseException as exc:
            if not started:
                raise
            self.host_error = exc
        finally:
            self.host_done = True

    def stop(self, *, cancel_remaining: bool) -> None:
        """Stop the host (it sees ``stopping``), then the portal (cancelling the tasks it still
        runs if ``cancel_remaining``, else waiting for them), and wait for the thread's end; a
        Ctrl-C meanwhile is raised once it is done (one, however many came)."""
        thread = self._thread
        if thread is None:
            self.running = False
            return
        interrupted: list[KeyboardInterrupt] = []
        sent = False
        while not (sent and self._ended):
            # Python raises a KeyboardInterrupt at any call, a handler's included, and a storm
            # of Ctrl-Cs (the last drill's) met one there: it escaped, the workers still
            # running. While the stop runs, SIGINT is only noted (Python's own handler in the
            # main thread: see hold_sigint); what lands before that is caught here, and the
            # loop goes on.
            try:
                hold_sigint()
                if not sent:
                    with contextlib.suppress(OSError):  # the loop is gone already: its end says
                        self._stop_writer.send(_CANCEL if cancel_remaining else _WAIT)
                    sent = True
                self._wait_for_the_end(thread, interrupted)
            except KeyboardInterrupt as exc:
                if not interrupted:
                    interrupted.append(exc)
        # Everything that says "stopped" is set before Python's SIGINT handler is back: a
        # KeyboardInterrupt that lands after it must find the stop done (one that landed here,
        # before, left the thread looking alive, and close() calling stop() for ever).
        self._thread = None
        self.running = False
        self._close_sockets()
        release_sigint(interrupted)
        if interrupted:
            raise interrupted[0]

    def _wait_for_the_end(
        self, thread: threading.Thread, interrupted: list[KeyboardInterrupt]
    ) -> None:
        while not self._ended:  # written out, as in start()
            try:
                self._end.get(timeout=_LOOK_AGAIN)
            except queue.Empty:
                pass
            except KeyboardInterrupt as exc:
                if not interrupted:
                    interrupted.append(exc)
        _join(thread, interrupted)  # it is past its last line of ours

    def _close_sockets(self) -> None:
        self._stop_reader.close()
        self._stop_writer.close()


_sigints_held: list[int] = []  # the SIGINTs noted while a stop held them (main thread only)


def note_sigint(signum: int, frame: object) -> None:
    """The SIGINT handler while a stop holds Ctrl-C: the signal is noted, not raised."""
    _sigints_held.append(signum)


def keep_sigint(previous: Any) -> None:
    """After ``previous = signal.signal(signal.SIGINT, note_sigint)``, written out as the first
    statement where a stop begins (a call to any function of ours is itself a point where a
    KeyboardInterrupt lands, before its first line): the hold stays over Python's own handler
    only. A program's own handler, or SIGINT ignored, is put back, and a SIGINT noted meanwhile
    raised again for it. (None: not the main thread, where nothing was swapped; or a handler
    not set from Python, which cannot be put back: the hold stays, as for Python's.)"""
    if previous is None or previous is signal.default_int_handler or previous is note_sigint:
        return
    signal.signal(signal.SIGINT, previous)
    if _sigints_held:
        _sigints_held.clear()
        signal.raise_signal(signal.SIGINT)


def hold_sigint() -> None:
    """In the main thread, while Python's own SIGINT handler is in place: note SIGINTs instead
    of raising KeyboardInterrupt, until :func:`_release_sigint`. A program's own handler, or a
    SIGINT ignored, is left as it is; so is any other thread (it gets no KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, note_sigint)


def release_sigint(interrupted: list[KeyboardInterrupt]) -> None:
    """Python's SIGINT handler back (see :func:`hold_sigint`); a SIGINT noted meanwhile, or a
    KeyboardInterrupt that lands as this returns (a call is where one is raised), is kept in
    ``interrupted``, to be raised once the caller is done."""
    try:
        came = _restore_sigint()
    except KeyboardInterrupt as exc:
        came = False
        if not interrupted:
            interrupted.append(exc)
    if came and not interrupted:
        interrupted.append(KeyboardInterrupt())


def _restore_sigint() -> bool:
    """Python's handler back, if :func:`hold_sigint` had put ours; whether a SIGINT came."""
    if signal.getsignal(signal.SIGINT) is not note_sigint:
        return False
    signal.signal(signal.SIGINT, signal.default_int_handler)
    came = bool(_sigints_held)
    _sigints_held.clear()
    return came


def _join(thread: threading.Thread, interrupted: list[KeyboardInterrupt]) -> None:
    """``thread.join()``, to its end. Interrupted, CPython 3.11's join may release the thread's
    lock itself, racing the thread that releases it as it ends: "RuntimeError: release unlocked
    lock", raised instead of the KeyboardInterrupt (the leaks drill saw it leave a loop thread
    running); the thread has ended then, and the interrupt is kept."""
    while True:
        try:
            thread.join()
            return
        except KeyboardInterrupt as exc:
            if not interrupted:
                interrupted.append(exc)
        except RuntimeError as exc:
            if not isinstance(exc.__context__, KeyboardInterrupt):
                raise
            if not interrupted:
                interrupted.append(exc.__context__)
            return


class _Status:
    """The ``task_status`` the host gets: anyio's, and a note that it was used."""

    def __init__(self, started: Callable[[Any], None]) -> None:
        self.started = started


def _launched(thread: threading.Thread) -> bool:
    """Whether ``thread.start()``, cut short, launched the thread: it is in threading's limbo
    until it runs, and has its ident from then on."""
    return thread.ident is not None or thread in getattr(threading, "_limbo", {})
