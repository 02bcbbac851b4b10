"""What an incarnation's end means: crashed or exited, and the errors that say so."""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from ._child import UNKNOWN_STATUS, ChildProcess, returncode_text
from ._stderr import StderrPump
from .errors import (
    AddressInUse,
    ChannelClosed,
    DataChannelTimeout,
    IpcError,
    ProtocolVersionMismatch,
    StartupError,
    StartupTimeout,
    Unauthorized,
    WorkerCrashed,
    WorkerExitedDuringStartup,
    with_stderr,
)

__all__ = ["Outcome", "exit_first", "outcome_of", "split", "with_tail"]


@dataclass
class Outcome:
    """How one incarnation of a worker ended."""

    exit_code: int | None
    signal: int | None
    crashed: bool
    uptime: float
    error: IpcError


def split(returncode: int) -> tuple[int | None, int | None]:
    """(exit code, signal) from a Popen-style return code; neither for UNKNOWN_STATUS."""
    if returncode == UNKNOWN_STATUS:
        return None, None
    return (returncode, None) if returncode >= 0 else (None, -returncode)


def outcome_of(
    worker_id: str,
    returncode: int,
    uptime: float,
    stderr: StderrPump,
    cause: str | None,
    *,
    stopped: bool,
) -> Outcome:
    """The outcome of a worker that served; ``cause``: why the parent killed it, if it did.

    A non-zero exit, a signal or a broken channel is a crash (spec 8.5); its error is
    ``WorkerCrashed`` with the stderr tail, unless the worker was being stopped. So is an end
    whose status cannot be known (UNKNOWN_STATUS): whether it failed, nobody can tell, and a
    restart policy had better act on it.
    """
    exit_code, signal = split(returncode)
    crashed = exit_code != 0 or cause is not None
    how = returncode_text(returncode)
    if cause is not None:  # the parent killed it: say why
        how = f"{how}, killed by the parent after its channel broke: {cause}"
    if crashed and not stopped:
        tail = stderr.tail()
        text = f"worker {worker_id} crashed ({how})"
        error: IpcError = WorkerCrashed(
            f"{text}; last lines of its stderr:\n{tail}" if tail else text,
            exit_code=exit_code,
            signal=signal,
            stderr_tail=tail,
        )
    elif stopped:
        error = ChannelClosed(
            f"worker {worker_id} was stopped (stop(), restart() or the manager closing) before "
            f"it answered; it exited ({how})"
        )
    else:
        error = ChannelClosed(f"worker {worker_id} exited on its own ({how})")
    return Outcome(exit_code, signal, crashed, uptime, error)


def with_tail(exc: IpcError, stderr: StderrPump, returncode: int | None) -> IpcError:
    """A start-up error with the worker's stderr tail (and its exit status if it exited)."""
    if not isinstance(exc, StartupError):
        return exc
    text = str(exc).split("\n--- last lines", 1)[0]
    if isinstance(exc, WorkerExitedDuringStartup) and returncode is not None:
        exit_code, signal = split(returncode)
        return WorkerExitedDuringStartup(
            f"{text} ({returncode_text(returncode)})",
            exit_code=exit_code,
            signal=signal,
            stderr_tail=stderr.tail(),
        )
    # The error itself, so that its own attributes (a path, a code) and cause stay.
    tail = stderr.tail()
    exc.args = (with_stderr(text, tail),)
    exc.stderr_tail = tail
    return exc


# Start-up errors that say why on their own, whether or not the worker then exits.
_SAYS_WHY = (
    WorkerExitedDuringStartup,
    DataChannelTimeout,
    StartupTimeout,
    AddressInUse,
    Unauthorized,
    ProtocolVersionMismatch,
)
_EXIT_NEWS = 0.5  # a handshake lost with the worker: how long its exit may take to be seen


async def exit_first(worker_id: str, failure: IpcError, child: ChildProcess) -> IpcError:
    """A handshake that failed because the worker went away (its data channel closed, its
    socket refused) is its exit, which the pidfd tells a moment after the socket does:
    WorkerExitedDuringStartup (its status added by :func:`with_tail`), not a closed channel."""
    if not isinstance(failure, StartupError) or isinstance(failure, _SAYS_WHY):
        return failure
    with anyio.move_on_after(_EXIT_NEWS):
        await child.exited.wait()
    if not child.exited.is_set():
        return failure  # alive: the failure is what it says
    return WorkerExitedDuringStartup(
        f"worker {worker_id} exited during start-up", exit_code=None, signal=None
    )
