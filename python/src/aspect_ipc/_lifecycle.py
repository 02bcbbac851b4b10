"""The life cycle of a supervised worker, as a table. Pure.

Theory of operation: a :class:`~aspect_ipc.ProcessHandle` is ``starting`` while an incarnation
starts (the first, or after a restart's backoff), ``running`` once the handshake is done,
``restarting`` during the backoff after a crash, ``stopping`` from the moment ``stop()`` is called,
and ends ``stopped`` (a clean exit, or a stop) or ``failed`` (crashed, and the restart policy
gives up): the error state. The two end states are final, and so is a stop: from ``stopping``
only an end follows. A move the table does not allow is refused: the state stays as it is.
"""

from __future__ import annotations

from .options import WorkerState

__all__ = ["ENDED", "allowed"]

_S = WorkerState
_ALLOWED: dict[WorkerState, frozenset[WorkerState]] = {
    _S.STARTING: frozenset(
        {_S.STARTING, _S.RUNNING, _S.RESTARTING, _S.STOPPING, _S.STOPPED, _S.FAILED}
    ),
    _S.RUNNING: frozenset({_S.RESTARTING, _S.STOPPING, _S.STOPPED, _S.FAILED}),
    _S.RESTARTING: frozenset({_S.STARTING, _S.STOPPING, _S.STOPPED, _S.FAILED}),
    _S.STOPPING: frozenset({_S.STOPPED, _S.FAILED}),  # a stop is final
    _S.STOPPED: frozenset(),
    _S.FAILED: frozenset(),
}

ENDED = frozenset({_S.STOPPED, _S.FAILED})
"""The end states: nothing can be sent to such a worker, and nothing follows them."""


def allowed(current: WorkerState, wanted: WorkerState) -> bool:
    """Whether a worker in state ``current`` may move to ``wanted``."""
    return wanted in _ALLOWED[current]
