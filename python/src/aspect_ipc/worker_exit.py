"""Making sure a worker exits in time (spec 8.3, 8.4): signals, parent death, a watchdog.

Theory of operation: the event loop exits the worker in the ordinary way (handlers cancelled,
socket file removed, exit code 0). What it cannot do alone is exit while a handler holds the loop
(synchronous code, or a loop that swallows cancellation), or notice the parent's death while it
does. So an :class:`ExitGuard` runs a daemon thread beside it that

- watches stdin for a hang-up (the parent closed it, or died) and the parent pid for a change
  (the worker was re-parented: its parent died), without reading a byte of stdin;
- once an exit is due (that, a signal, or the ``$/shutdown`` result written) gives the loop
  ``budget`` seconds, then removes the socket file, kills the rest of the process group if the
  parent died, and ends the process with ``os._exit(0)``.

Signals SIGTERM and SIGINT (when the program has not installed its own handlers) are caught by a
plain Python handler, which runs even while a handler sleeps or computes, so the deadline starts
at the signal, not when the loop gets to it; SIGINT is never a ``KeyboardInterrupt``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from types import FrameType

import anyio

from .shutdown import ShutdownReason

__all__ = ["DEFAULT_EXIT_BUDGET", "ExitGuard", "group_members"]

DEFAULT_EXIT_BUDGET = 0.15
"""Seconds the loop gets to exit by itself; the spec's bound is 0.2 s from the event."""
_POLL_INTERVAL = 0.1  # how often the parent pid is compared (ParentPollerUnix does the same)
_CAUGHT = ((signal.SIGTERM, signal.SIG_DFL), (signal.SIGINT, signal.default_int_handler))


class ExitGuard:
    """The watchdog of one worker process; :meth:`start` it once, before serving."""

    def __init__(self, budget: float = DEFAULT_EXIT_BUDGET) -> None:
        self.budget = budget
        self.reason: str | None = None  # why the worker is exiting; None while it serves
        self.cause: ShutdownReason | None = None  # the same, as the shutting_down hook says it
        self.parent_gone = False
        self._deadline: float | None = None
        # Reentrant: the signal handler runs in the main thread, maybe while it holds the lock.
        self._lock = threading.RLock()
        self._wake_loop, self._loop_wakes = socket.socketpair()
        self._loop_wakes.setblocking(False)
        self._wake_loop.setblocking(False)
        self._cleanups: list[Callable[[], None]] = []
        self._parent = os.getppid()
        self._stdin = 0  # watched for a hang-up; see watch_stdin
        self._thread: threading.Thread | None = None
        self._installed = False
        self._alarm = False  # SIGALRM is ours: the hard exit's second trigger

    def install_signals(self) -> None:
        """Catch SIGTERM and SIGINT unless the program handles them (main thread only)."""
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._installed = True
        for sig, default in _CAUGHT:
            if signal.getsignal(sig) is default:  # a program's own handler or SIG_IGN wins
                signal.signal(sig, self._on_signal)
        # The watchdog thread needs the GIL to act, and a handler spinning in Python code (one
        # that swallows every cancellation, say) can starve it for a second. A timer signal's
        # handler runs in the main thread at its next bytecode instead, so the budget holds.
        if signal.getsignal(signal.SIGALRM) is signal.SIG_DFL:
            signal.signal(signal.SIGALRM, self._on_alarm)
            self._alarm = True

    def start(self) -> None:
        """Install the signal handlers and start the watchdog thread (once the worker has
        started: a refusal to start must keep its own exit code)."""
        if self._thread is not None:
            return
        self.install_signals()
        self._thread = threading.Thread(target=self._watch, name="aspect-ipc-exit", daemon=True)
        self._thread.start()

    def watch_stdin(self, fd: int) -> None:
        """Watch ``fd``, the protocol's copy of stdin, for a hang-up instead of descriptor 0 (which
        the control channel's transport points at /dev/null, PROTOCOL.md 1.5). Call it before
        :meth:`start`. The guard keeps a duplicate of its own, open until the process ends, so
        that the channel closing its copy at exit cannot put another file under the watch."""
        self._stdin = os.dup(fd)

    def on_hard_exit(self, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup`` (e.g. remove the socket file) if the watchdog has to end the process."""
        self._cleanups.append(cleanup)

    def exit_due(self, reason: str, cause: ShutdownReason, *, parent_gone: bool = False) -> None:
        """An exit is due: the loop has ``budget`` seconds from now. Safe from any thread and
        from signal handlers. ``parent_gone`` also sends SIGTERM to the process group's others."""
        with self._lock:
            first = self.reason is None
            if first:
                self.reason = reason
                self.cause = cause
                self._deadline = time.monotonic() + self.budget
            kill_group = parent_gone and not self.parent_gone
            self.parent_gone = self.parent_gone or parent_gone
        if first and self._alarm:  # armed first: listing the group below can be slow
            signal.setitimer(signal.ITIMER_REAL, self.budget)
        if kill_group:
            _signal_group_members(signal.SIGTERM)
        if first:
            with contextlib.suppress(OSError):
                self._wake_loop.send(b"x")

    async def wait(self) -> str:
        """Wait (in the event loop) until an exit is due; return why."""
        while self.reason is None:
            await anyio.wait_readable(self._loop_wakes)
            with contextlib.suppress(OSError):
                self._loop_wakes.recv(64)
        return self.reason

    def finish(self) -> None:
        """The loop has exited by itself: SIGKILL what is left of the group if the parent died.
        The signal handlers stay: a late SIGINT must not become a KeyboardInterrupt at exit."""
        if self._alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)  # in time: no hard exit after all
        if self.parent_gone:
            _signal_group_members(signal.SIGKILL)

    def ignore_signals_at_exit(self) -> None:
        """From here the process only exits: a SIGTERM or SIGINT that comes now (a service
        manager signals every process of the group, then the parent escalates) is ignored.
        Python's finalization puts the signals it handles back to their default, and a second
        SIGTERM within its few milliseconds killed the worker by the signal: a crash to the
        parent, which restarted it. An ignored signal stays ignored through finalization."""
        if not self._installed:
            return
        for sig, _ in _CAUGHT:
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, signal.SIG_IGN)

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        deadline = self._deadline
        if deadline is not None and time.monotonic() >= deadline - 0.005:
            self._hard_exit()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.exit_due(f"signal {signal.Signals(signum).name}", ShutdownReason.SIGNAL)

    def _watch(self) -> None:
        poller = select.poll()
        stdin_open = True
        try:
            poller.register(self._stdin, 0)  # no events asked: only a hang-up or an error
        except (OSError, ValueError):
            stdin_open = False
        while True:
            deadline = self._deadline
            timeout = _POLL_INTERVAL
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - time.monotonic()))
            events = poller.poll(timeout * 1000) if stdin_open else _sleep(timeout)
            for _, mask in events:
                stdin_open = False  # a hang-up stays reported: stop asking
                poller.unregister(self._stdin)
                if mask & (select.POLLHUP | select.POLLERR):
                    self.exit_due("stdin closed", ShutdownReason.STDIN_EOF, parent_gone=True)
            if os.getppid() != self._parent:
                self.exit_due(
                    "the parent process died", ShutdownReason.PARENT_EXITED, parent_gone=True
                )
            deadline = self._deadline
            if deadline is not None and time.monotonic() >= deadline:
                self._hard_exit()

    def _hard_exit(self) -> None:
        with contextlib.suppress(OSError):
            os.write(
                2,
                f"aspect-ipc worker: still running {self.budget:g} s after {self.reason} "
                "(a handler ignores cancellation or blocks the event loop, or a thread that "
                "is not a daemon is still running); exiting now\n".encode(),
            )
        for cleanup in self._cleanups:
            with contextlib.suppress(Exception):
                cleanup()
        if self.parent_gone:
            _signal_group_members(signal.SIGKILL)
        os._exit(0)


def _sleep(seconds: float) -> list[tuple[int, int]]:
    time.sleep(seconds)
    return []


def group_members() -> list[int]:
    """Pids in this process's group other than itself, if it leads the group; else none.

    A worker leads its group when the parent started it in a session of its own; one that
    does not (started from a shell, say) must not signal a group that is not its own.
    """
    me = os.getpid()
    group = os.getpgrp()
    if group != me:
        return []
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return _group_members_by_ps(group, me)
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group:
            members.append(int(entry))
    return members


def _group_members_by_ps(group: int, me: int) -> list[int]:
    try:
        out = subprocess.run(
            ["ps", "-A", "-o", "pid=,pgid="], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return []
    pairs = (line.split() for line in out.splitlines())
    return [int(p[0]) for p in pairs if len(p) == 2 and int(p[1]) == group and int(p[0]) != me]


def _signal_group_members(sig: int) -> None:
    for pid in group_members():
        with contextlib.suppress(OSError):
            os.kill(pid, sig)
