"""What the foreign-parent test modules share: a worker kept for a module, and the clean-up check.

A module's read-only cases reuse one worker per language (start-up is the slow part); cases that
kill, close or shut down something start their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from foreign_parent.channels import Via
from foreign_parent.data import DataConnection
from foreign_parent.process import ForeignWorker, unstopped

__all__ = [
    "SharedWorker",
    "channel",
    "kept_for_module",
    "no_leftovers",
    "shared_worker",
]

_SHARED: dict[int, str] = {}  # pid of each module-wide worker -> its directory


class SharedWorker:
    """A worker of ``language`` with an authenticated data connection, shared by a module's
    cases. A case that kills it or loses its data connection fails, and the next case gets a
    new one (so that one broken case does not fail all the others)."""

    def __init__(self, language: str, **options: Any) -> None:
        self.language = language
        self.options = options
        self._worker: ForeignWorker | None = None
        self._connection: DataConnection | None = None

    def current(self) -> tuple[ForeignWorker, DataConnection]:
        worker, connection = self._worker, self._connection
        if worker is None or connection is None or self.broken() is not None:
            self.close()
            worker = ForeignWorker(self.language, **self.options)
            self._worker = worker
            _SHARED[worker.process.pid] = worker.directory
            worker.ready()
            connection = self._connection = worker.open_data()
        return worker, connection

    def broken(self) -> str | None:
        """Why the worker can no longer be shared (None: it can)."""
        worker, connection = self._worker, self._connection
        if worker is None or connection is None:
            return None
        if worker.process.poll() is not None:
            return (
                f"the worker exited (code {worker.process.returncode}) during this case; "
                f"stderr: {worker.stderr()[-1500:]}"
            )
        connection.drain_now()
        if connection.inbox.closed_at is not None:
            return (
                "the worker closed the authenticated data connection during this case"
            )
        return None

    def close(self) -> None:
        if self._worker is not None:
            _SHARED.pop(self._worker.process.pid, None)
            self._worker.stop()
        self._worker = self._connection = None


@contextmanager
def shared_worker(language: str, **options: Any) -> Iterator[SharedWorker]:
    """A module-wide worker, stopped at the end."""
    holder = SharedWorker(language, **options)
    try:
        holder.current()  # now, so that the per-case checks do not see it appear
        yield holder
    finally:
        holder.close()


@contextmanager
def kept_for_module(worker: ForeignWorker) -> Iterator[ForeignWorker]:
    """Declares ``worker`` (started, and stopped by the caller) as outliving each case."""
    _SHARED[worker.process.pid] = worker.directory
    try:
        yield worker
    finally:
        del _SHARED[worker.process.pid]


def _children() -> set[int]:
    me = str(os.getpid()).encode()
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me and fields[0] != b"Z":
                found.add(int(entry))
    return found


def no_leftovers() -> Iterator[None]:
    """A fixture body: after the test, no process, directory or descriptor of its own is left
    (the module's shared workers excepted)."""
    fds = len(os.listdir("/proc/self/fd"))
    yield
    assert _children() <= set(_SHARED), "child processes left behind"
    left = unstopped() - set(_SHARED.values())
    assert not left, f"temporary directories left: {sorted(left)}"
    assert len(os.listdir("/proc/self/fd")) <= fds, "file descriptors leaked"


def channel(name: str, holder: SharedWorker) -> Iterator[Via]:
    """A fixture body: ``control`` or ``data`` of a module's shared worker, with what earlier
    cases left forgotten; fails the case if the worker died or dropped the connection in it."""
    worker, connection = holder.current()
    via = Via(name, worker, connection)
    via.forget_earlier()
    yield via
    broken = holder.broken()
    assert broken is None, broken
