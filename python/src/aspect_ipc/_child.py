"""A worker's operating-system process: started off the event loop, signalled, reaped safely.

Theory of operation. A pid, and a process group id, are numbers the kernel hands out again once
nobody holds them. Signalling a worker by number after it was reaped can therefore reach an
unrelated process that got the same number meanwhile (with ``os.killpg``, a whole unrelated
group). This module rules that out by owning the child's whole life:

- **Nobody else reaps it.** The child is started with :class:`subprocess.Popen` (in a worker
  thread: fork/exec of a large parent must not hold the event loop), but its exit is watched
  through a *pidfd* (``os.pidfd_open``), which becomes readable when the child exits, and the
  exit status is read with ``waitid(..., WNOWAIT)``: the child stays a zombie, unreaped. The
  ``Popen`` object is kept until we reap, so that its ``__del__`` never hands the pid to
  ``subprocess``'s own clean-up, which would reap it behind our back.
- **The group is signalled only while its leader is unreaped.** A zombie leader keeps its pid
  allocated, and with it the process group id: while we have not reaped the leader, the number
  ``pgid`` can name no group but the worker's (and only the worker's session can join it).
  :meth:`ChildProcess.signal_group` refuses once :meth:`ChildProcess.reap` has run. Where the
  kernel offers it (Linux 6.9+), the group is signalled through the pidfd itself
  (``PIDFD_SIGNAL_PROCESS_GROUP``), which names the group by the kernel's pid object rather than
  by number: race-free even if some other code in the process reaped our child.
- **Reaping comes last.** The incarnation first sends SIGKILL to the group (stragglers the worker
  started), then reaps the leader, then closes the pidfd.

The leader alone is signalled through the pidfd (``pidfd_send_signal``), which never reaches
another process. Without pidfds (not Linux, or a kernel before 5.3) the exit is polled with
``waitid(WNOHANG | WNOWAIT)``, which keeps the same "never reaped before the last signal"
order.

Why no ``PR_SET_PDEATHSIG`` for the worker: it can only be set by the child itself, before
``exec`` (a ``preexec_fn``, unsafe in a threaded parent), and it fires when the *thread* that
forked the child exits: our spawns run in a thread pool whose idle threads exit, which would kill
healthy workers. Workers notice a dead parent by their stdin reaching EOF (spec 8.3).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal as signals
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence

import anyio

from . import _fork

__all__ = ["UNKNOWN_STATUS", "ChildProcess", "returncode_text"]

UNKNOWN_STATUS = -(1 << 16)
"""The return code of a worker whose exit status nobody can know: another part of the program
reaped it first (SIGCHLD ignored, which has the kernel reap every child at once, or a SIGCHLD
handler that waits for any child). Neither an exit code nor a signal."""

# include/uapi/linux/pidfd.h: signal the process group the pidfd's process leads (Linux 6.9).
_PIDFD_SIGNAL_PROCESS_GROUP = 1 << 2
_POLL_INTERVAL = 0.02  # without pidfds: how often the exit is polled


class ChildProcess:
    """One started worker process; see the module docstring for the signalling rules."""

    def __init__(self, popen: subprocess.Popen[bytes], pidfd: int | None) -> None:
        self._popen = popen
        self.pid = popen.pid
        self._pidfd = pidfd
        self._group_by_pidfd = pidfd is not None
        self.returncode: int | None = None  # known at exit, before the reap
        self.reaped = False
        self.exited = anyio.Event()
        self._generation = _fork.generation  # a forked child never signals it (see _fork)

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        stdin: int,
        stdout: int,
        stderr: int,
        cwd: str | None,
        env: Mapping[bytes, bytes],
    ) -> ChildProcess:
        """Start ``argv`` in a new session (its own process group), in a worker thread.

        The thread is not abandoned when the caller is cancelled: the process it starts is
        always returned, so that the caller's clean-up can stop and reap it.

        Raises:
            OSError: the process could not be started, or its pidfd not opened.
            ValueError: an argument or the environment holds a NUL byte.
        """

        def start_in_thread() -> ChildProcess:
            popen = subprocess.Popen(
                list(argv),
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                cwd=cwd,
                env=dict(env),
                start_new_session=True,
                close_fds=True,
                preexec_fn=_fresh_signals if _signals_inherited() else None,
            )
            try:
                pidfd = _open_pidfd(popen.pid)
            except OSError:
                with contextlib.suppress(OSError):
                    os.kill(popen.pid, signals.SIGKILL)  # not reaped yet: the pid is ours
                popen.wait()
                raise
            return cls(popen, pidfd)

        return await anyio.to_thread.run_sync(start_in_thread)

    # -- exit ---------------------------------------------------------------------------------

    async def watch(self) -> None:
        """Wait for the exit, record :attr:`returncode` and set :attr:`exited`; never reaps."""
        while self.returncode is None:
            status = self._peek()
            if status is not None:
                self.returncode = status
                break
            if self._pidfd is not None:
                try:
                    await anyio.wait_readable(self._pidfd)
                except (anyio.ClosedResourceError, OSError):
                    return  # reaped and closed under us: reap() set the code
            else:
                await anyio.sleep(_POLL_INTERVAL)
        self.exited.set()

    def _peek(self) -> int | None:
        """The exit status if the child has exited, without reaping it (WNOWAIT)."""
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        try:
            if self._pidfd is not None:
                result = os.waitid(os.P_PIDFD, self._pidfd, flags)
            else:
                result = os.waitid(os.P_PID, self.pid, flags)
        except ChildProcessError:  # somebody else reaped it: we cannot know the status
            return UNKNOWN_STATUS if self.returncode is None else self.returncode
        if result is None or result.si_pid == 0:
            return None
        if result.si_code == os.CLD_EXITED:
            return result.si_status
        return -result.si_status

    # -- signals ------------------------------------------------------------------------------

    def signal(self, sig: signals.Signals) -> None:
        """Send ``sig`` to the worker process alone; nothing if it is gone, or from a forked
        child of the parent (its clean-up must not stop the parent's workers)."""
        if self._generation != _fork.generation:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            if self._pidfd is not None:
                signals.pidfd_send_signal(self._pidfd, sig)
            elif not self.reaped:
                os.kill(self.pid, sig)

    def signal_group(self, sig: signals.Signals) -> None:
        """Send ``sig`` to the worker's process group, only while its leader is unreaped (and
        never from a forked child of the parent)."""
        if self.reaped or self._generation != _fork.generation:
            return
        if self._group_by_pidfd and self._pidfd is not None:
            try:
                signals.pidfd_send_signal(self._pidfd, sig, None, _PIDFD_SIGNAL_PROCESS_GROUP)
                return
            except ProcessLookupError:
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    return
                self._group_by_pidfd = False  # an older kernel: the unreaped leader guards us
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    # -- the end ------------------------------------------------------------------------------

    def reap(self) -> None:
        """Collect the exited child and close its pidfd. After this, nothing is signalled.

        Called only once :attr:`exited` is set. A child that has not exited is handed to a
        daemon thread that reaps it whenever it does (it was sent SIGKILL; only a process stuck
        in the kernel outlives that for long).
        """
        if self.reaped:
            return
        self.reaped = True
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by somebody else (see UNKNOWN_STATUS)
            if self.returncode is None:
                self.returncode = UNKNOWN_STATUS
            self._popen.returncode = self.returncode  # nothing left for its __del__ to reap
            self._close_pidfd()
            return
        if pid == 0:
            threading.Thread(target=self._reap_later, daemon=True).start()
        else:
            self._settle(status)
        self._close_pidfd()

    def _reap_later(self) -> None:
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(self.pid, 0)
            self._settle(status)

    def _settle(self, status: int) -> None:
        code = os.waitstatus_to_exitcode(status) if status else 0
        if self.returncode is None:
            self.returncode = code
        self._popen.returncode = self.returncode  # its __del__ must not reap the pid again

    def _close_pidfd(self) -> None:
        fd, self._pidfd = self._pidfd, None
        if fd is not None:
            anyio.notify_closing(fd)
            os.close(fd)


def _signals_inherited() -> bool:
    """Whether a worker started from this thread would inherit SIGTERM or SIGINT ignored, or
    signals blocked: all survive exec, and a worker that ignores or blocks them without asking
    for it does not end on them (spec 8.4: a Python worker did not end on SIGTERM, Python and Go
    workers on SIGINT, which a parent started in the background by a shell, `cmd &`, ignores).
    Rare, so the usual start (vfork, no Python in the child) stays the rule."""
    if not hasattr(signals, "pthread_sigmask"):
        return False
    return bool(signals.pthread_sigmask(signals.SIG_BLOCK, ())) or any(
        signals.getsignal(sig) == signals.SIG_IGN for sig in (signals.SIGTERM, signals.SIGINT)
    )


def _fresh_signals() -> None:
    # In the child, between fork and exec: SIGTERM's and SIGINT's default actions, nothing
    # blocked, as a process started from a shell gets them.
    signals.signal(signals.SIGTERM, signals.SIG_DFL)
    signals.signal(signals.SIGINT, signals.SIG_DFL)
    signals.pthread_sigmask(signals.SIG_SETMASK, ())


def _open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid``, or None where the system has none (not Linux, or Linux < 5.3)."""
    if not hasattr(os, "pidfd_open") or not sys.platform.startswith("linux"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EPERM):
            return None
        raise


def returncode_text(code: int) -> str:
    """``exit code N`` or ``signal NAME`` for a Popen-style return code."""
    if code == UNKNOWN_STATUS:
        return (
            "exit status unknown: another part of this program reaped the process first "
            "(SIGCHLD is ignored, or a SIGCHLD handler waits for any child); give SIGCHLD its "
            "default action back (signal.signal(signal.SIGCHLD, signal.SIG_DFL))"
        )
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {signals.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"
