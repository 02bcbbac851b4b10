"""Small pieces of a handle's calls: argument checks and errors that say who and why."""

from __future__ import annotations

import math

from .errors import IpcError, RemoteError, RemoteTraceback, fresh

__all__ = ["annotated", "check_grace", "check_timeout"]


def check_timeout(name: str, value: float | None) -> None:
    """Refuse a timeout that is not a positive number of seconds (``math.inf``: no limit)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(
            f"{name} must be a positive number of seconds (or math.inf for no limit), not {value!r}"
        )


def check_grace(name: str, value: float | None) -> None:
    """Refuse a grace period that is not a finite number of seconds >= 0."""
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not value >= 0
        or math.isinf(value)
    ):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r}")


def annotated(error: RemoteError, worker_id: str, channel: str, method: str) -> IpcError:
    """A copy of ``error`` whose text names the worker, the channel, the method and the remote
    type, and whose ``__cause__`` is the remote stack (a :class:`RemoteTraceback`) if it came.

    ``code``, ``message`` and ``data`` are the worker's, unchanged; ``worker_id``, ``channel``
    and ``method`` are set. Raise it ``from copy.__cause__``.
    """
    copy = fresh(error)
    assert isinstance(copy, RemoteError)
    copy.worker_id, copy.channel, copy.method = worker_id, channel, method
    remote_type = f"{error.remote_type}: " if error.remote_type else ""
    copy.args = (
        f"worker {worker_id}: {method!r} on the {channel} channel failed: "
        f"{remote_type}{error.message} (code {error.code})",
    )
    remote_traceback = error.remote_traceback
    copy.__cause__ = RemoteTraceback(remote_traceback) if remote_traceback else None
    return copy
